"""The app tests' own processes: a `pocketbizz serve` to stop and restart, and the app run
alone (`pocketbizz app --backend URL`) as on a device."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from harness import ServerProcess, free_port


@contextmanager
def own_server(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, to stop and start (the session's `server` stays up for
    other tests), with its data dir in `tmp_path`/server."""
    (tmp_path / "server").mkdir()
    proc = ServerProcess(
        owner_dsn,
        tmp_path / "server",
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator"},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


class AppProcess:
    """`pocketbizz app --backend URL --port P` as a subprocess (the anon key is read from the
    backend's /app/config.json, as a device would)."""

    def __init__(self, backend: str, data_dir: Path) -> None:
        self.backend = backend
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        env = {**os.environ, "PB_APP_DATA_DIR": str(self.data_dir)}
        log = open(self.data_dir / f"app-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pocketbizz",
                "app",
                "--backend",
                self.backend,
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the app exited; see {log.name}"
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the app did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None
