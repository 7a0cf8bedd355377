"""Where the app finds its backend: the API URL and the public (anon) key."""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# The web app publishes its backend's public settings here (relative to its mount), so a
# standalone app given only `--backend URL` can learn the anon key the way a device would.
CONFIG_PATH = "/app/config.json"


def _default_data_dir() -> Path:
    """Where the app keeps its offline data on this device."""
    env = os.environ.get("PB_APP_DATA_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "pocketbizz-app"


@dataclass(frozen=True)
class AppConfig:
    backend_url: str
    anon_key: str
    data_dir: Path = field(default_factory=_default_data_dir)

    def public(self) -> dict[str, str]:
        """What any visitor may read: the anon key is public by design (it ships in every app)."""
        return {"backend_url": self.backend_url, "anon_key": self.anon_key}


def fetch_config(backend_url: str, timeout: float = 10) -> AppConfig:
    """The anon key published by a PocketBizz server that mounts the app, kept on the device
    so the app also starts while the server is unreachable (and sells offline)."""
    backend_url = backend_url.rstrip("/")
    data_dir = _default_data_dir()
    kept = data_dir / "backend.json"
    try:
        # An http(s) URL the operator gave on the command line.
        with urllib.request.urlopen(backend_url + CONFIG_PATH, timeout=timeout) as response:
            anon_key = str(json.loads(response.read())["anon_key"])
    except OSError:
        if not kept.exists():
            raise
        saved = json.loads(kept.read_text())
        if saved.get("backend_url") != backend_url:
            raise
        anon_key = str(saved["anon_key"])
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps({"backend_url": backend_url, "anon_key": anon_key}))
    return AppConfig(backend_url=backend_url, anon_key=anon_key, data_dir=data_dir)
