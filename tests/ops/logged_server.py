"""Servers whose stderr (the log stream) is kept apart from stdout (the start-up banner)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import TEST_JWT_SECRET, ServerProcess


@dataclass
class LoggedServer(ServerProcess):
    workers: int = 1

    @property
    def args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), "--workers", str(self.workers)]

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"stderr-{self.port}.log"

    def start(self, timeout: float = 30) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.owner_dsn,
            "PB_JWT_SECRET": TEST_JWT_SECRET,
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_ENVIRONMENT": "test",
            "PB_LOG_LEVEL": "info",
            "PB_LOG_FORMAT": "json",
            **self.env_overrides,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocketbizz", "serve", "--port", str(self.port), *self.args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")
