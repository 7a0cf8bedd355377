"""The embedded PostgreSQL that `pocketbizz serve` starts when no DATABASE_URL is given.

The binaries come from the `pgserver` wheel; the cluster lives under the data dir and listens
only on a Unix socket inside it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the cluster and return an owner DSN."""
        import pgserver

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _forget_dead_handles(self) -> None:
        # pgserver keeps the pids of processes using the cluster and stops it when the last one
        # leaves; a crashed process would otherwise stay listed and keep it running forever.
        handles = self.pgdata / ".handle_pids.json"
        if not handles.exists():
            return
        try:
            pids = json.loads(handles.read_text())
        except ValueError:
            pids = []
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            log.info("embedded postgres: forgetting dead handles %s", set(pids) - set(alive))
            handles.write_text(json.dumps(alive))
