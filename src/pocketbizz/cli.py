"""The `pocketbizz` command: serve, migrate, keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from pocketbizz.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


class _Database:
    """The owner DSN: DATABASE_URL, or the embedded server under the data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: Any = None

    def __enter__(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        from pocketbizz.db.embedded import EmbeddedPostgres

        self.embedded = EmbeddedPostgres(self.settings.data_dir / "pgdata")
        return str(self.embedded.start())

    def __exit__(self, *exc: object) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def _migrate(settings: Settings, dsn: str) -> list[str]:
    from pocketbizz.db import apply_migrations

    return asyncio.run(apply_migrations(dsn, authenticator_password=settings.authenticator_secret))


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _Database(settings) as dsn:
        applied = _migrate(settings, dsn)
    print(json.dumps({"applied": applied}))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from pocketbizz.gateway.tokens import api_keys

    settings = _settings(args)
    url = settings.url
    recorded = settings.data_dir / "instance.json"
    # Without --host/--port, report the URL the last `serve` of this data dir listened on.
    if args.host is None and args.port is None and not settings.public_url and recorded.exists():
        url = json.loads(recorded.read_text()).get("url", url)
    payload = {"url": url, **api_keys(settings.secret)}
    if args.json:
        print(json.dumps(payload))
    else:
        for key, value in payload.items():
            print(f"{key}: {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pocketbizz.server import create_app, runtime_database
    from pocketbizz.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _ = settings.secret  # create the JWT secret on first start, before serving
    (settings.data_dir / "instance.json").write_text(json.dumps({"url": settings.url}))
    with _Database(settings) as dsn:
        _migrate(settings, dsn)
        options: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "log_config": None,
            "access_log": False,
            "lifespan": "on",
            "ws": "websockets-sansio",
            "proxy_headers": bool(settings.trusted_proxies),
            "forwarded_allow_ips": settings.trusted_proxies or None,
        }
        # uvicorn turns SIGTERM/SIGINT into a graceful shutdown and then re-raises the signal
        # to the handler it found; this one turns it into a normal exit so the block below
        # still stops the embedded database.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        if settings.workers > 1:
            return _serve_workers(settings, dsn, options)
        app = create_app(settings, runtime_database(settings, dsn))
        server = uvicorn.Server(uvicorn.Config(app, **options))
        with suppress(KeyboardInterrupt, SystemExit):
            server.run()
    return 0 if server.started else 1


def _serve_workers(settings: Settings, dsn: str, options: dict[str, Any]) -> int:
    """Several server processes on one port. They share nothing but PostgreSQL (and Redis for
    rate limits: without REDIS_URL each process counts on its own)."""
    import uvicorn

    if not settings.redis_url:
        logging.getLogger("pocketbizz").warning(
            "%d workers without REDIS_URL: rate limits are counted per process",
            settings.workers,
        )
    # Workers build their app from the environment (see app.app_from_environment).
    os.environ.update(
        {
            "DATABASE_URL": dsn,
            "PB_JWT_SECRET": settings.secret,
            "PB_AUTHENTICATOR_PASSWORD": settings.authenticator_secret,
            "PB_DATA_DIR": str(settings.data_dir.resolve()),
            "PB_HOST": settings.host,
            "PB_PORT": str(settings.port),
        }
    )
    with suppress(KeyboardInterrupt, SystemExit):
        uvicorn.run(
            "pocketbizz.server:app_from_environment",
            factory=True,
            workers=settings.workers,
            **options,
        )
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_app(args: argparse.Namespace) -> int:
    from pocketbizz.app.standalone import run

    return run(args.backend, host=args.host, port=args.port, anon_key=args.anon_key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pocketbizz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="where the embedded database, secrets and files live (default ./.pocketbizz)",
        )

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None, help="server processes (default 1)")
    common(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply pending migrations and exit")
    common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="print the URL and API keys of this instance")
    keys.add_argument("--json", action="store_true")
    keys.add_argument("--host", default=None)
    keys.add_argument("--port", type=int, default=None)
    common(keys)
    keys.set_defaults(func=cmd_keys)

    app = sub.add_parser("app", help="run the PocketBizz app alone against a PocketBizz server")
    app.add_argument("--backend", required=True, help="the server's URL, e.g. http://host:8000")
    app.add_argument("--host", default="127.0.0.1")
    app.add_argument("--port", type=int, default=8550)
    app.add_argument("--anon-key", default=None, help="default: the server's /app/config.json")
    app.set_defaults(func=cmd_app)

    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("PB_LOG_LEVEL", "INFO").upper(), stream=sys.stderr)
    sys.exit(args.func(args))
