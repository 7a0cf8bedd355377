"""Where the app finds its backend: the API URL and the public (anon) key."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass

# The web app publishes its backend's public settings here (relative to its mount), so a
# standalone app given only `--backend URL` can learn the anon key the way a device would.
CONFIG_PATH = "/app/config.json"


@dataclass(frozen=True)
class AppConfig:
    backend_url: str
    anon_key: str

    def public(self) -> dict[str, str]:
        """What any visitor may read: the anon key is public by design (it ships in every app)."""
        return {"backend_url": self.backend_url, "anon_key": self.anon_key}


def fetch_config(backend_url: str, timeout: float = 10) -> AppConfig:
    """The anon key published by a PocketBizz server that mounts the app."""
    url = backend_url.rstrip("/") + CONFIG_PATH
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload = json.loads(response.read())
    return AppConfig(backend_url=backend_url.rstrip("/"), anon_key=str(payload["anon_key"]))
