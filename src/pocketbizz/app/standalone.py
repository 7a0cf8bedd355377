"""`pocketbizz app --backend URL`: the app alone, against any PocketBizz server, as on a device.

It serves the same web build on its own port; its sessions reach the backend only over HTTP.
"""

from __future__ import annotations

import sys
import urllib.error

from pocketbizz.app.config import AppConfig, fetch_config

DEFAULT_PORT = 8550


def run(
    backend: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, anon_key: str | None = None
) -> int:
    import logging

    import uvicorn

    from pocketbizz.app.web import create_web_app

    backend = backend.rstrip("/")
    if anon_key:
        config = AppConfig(backend_url=backend, anon_key=anon_key)
    else:
        try:
            config = fetch_config(backend)
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            print(
                f"pocketbizz app: could not read {backend}/app/config.json ({exc}); "
                "pass --anon-key",
                file=sys.stderr,
            )
            return 2
    # Warnings and errors (the realtime client's reconnection among them) on stderr.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    print(f"PocketBizz app on http://{host}:{port}/ (backend {config.backend_url})", flush=True)
    uvicorn.run(
        create_web_app(config), host=host, port=port, log_level="warning", ws="websockets-sansio"
    )
    return 0
