"""PocketBizz as a newcomer gets it: `pip install .` into a fresh virtualenv, then the installed
`pocketbizz` command on a fresh data dir, with no DATABASE_URL (embedded PostgreSQL).

Nothing is downloaded: the wheel is built with the test environment's setuptools (from the
lock file), from a copy of the work tree so no build output lands in it; the fresh virtualenv
takes its runtime dependencies from the test environment through one `.pth` line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
_COPY_IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    ".pocketbizz",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
)
_RUNTIME_IMPORTS = "import asyncpg, pgserver, starlette, uvicorn, limits, argon2, jwt, structlog"


@dataclass
class Installed:
    venv: Path
    pocketbizz: Path
    build_notes: list[str]


@dataclass
class Server:
    installed: Installed
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    keys: dict[str, str]
    ready_seconds: float

    @property
    def url(self) -> str:
        return self.keys["url"]

    @property
    def anon_key(self) -> str:
        return self.keys["anon_key"]

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload,no-any-return]


def _clean_env() -> dict[str, str]:
    """The environment of a newcomer: no DATABASE_URL, no PB_* settings, no Redis."""
    drop = {"DATABASE_URL", "REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PB_")}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _install(tmp: Path) -> Installed:
    """Build the wheel as `pip install .` would, then install it into a fresh virtualenv."""
    notes: list[str] = []
    src = tmp / "pocketbizz-src"
    shutil.copytree(REPO, src, ignore=_COPY_IGNORE)
    # The build backend (setuptools, wheel) comes from the test environment's lock file.
    wheels = tmp / "wheels"
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(wheels),
            str(src),
        ]
    )
    assert built.returncode == 0, f"wheel build failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = wheels.glob("pocketbizz-*.whl")

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    py, pip = venv / "bin" / "python", venv / "bin" / "pip"
    env = _clean_env()
    # Runtime dependencies: the test environment's site-packages, after the venv's own (so the
    # installed pocketbizz wins) — nothing is downloaded.
    deps = sysconfig.get_paths()["purelib"]
    site = _run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env
    ).stdout.strip()
    Path(site, "_pocketbizz_e2e_deps.pth").write_text(deps + "\n")
    notes.append(f"runtime dependencies from {deps} via a .pth line")
    check = _run([str(py), "-c", _RUNTIME_IMPORTS], env=env)
    assert check.returncode == 0, check.stderr

    result = _run([str(pip), "install", "--no-deps", "--no-index", str(wheel)], env=env)
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"

    located = _run([str(py), "-c", "import pocketbizz; print(pocketbizz.__file__)"], env=env)
    assert located.returncode == 0, located.stderr
    assert Path(located.stdout.strip()).is_relative_to(venv), located.stdout
    pocketbizz = venv / "bin" / "pocketbizz"
    assert pocketbizz.exists()
    return Installed(venv, pocketbizz, notes)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("newcomer")
    installed = _install(tmp)
    data_dir, port, env = tmp / "data", _free_port(), _clean_env()
    # Before the first `serve` there is no data dir: `keys` says so instead of inventing keys.
    early = _run([str(installed.pocketbizz), "keys", "--data-dir", str(data_dir)], env=env, cwd=tmp)
    assert early.returncode == 2 and "no PocketBizz data dir" in early.stderr, early.stderr
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(installed.pocketbizz), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    srv = Server(installed, data_dir, port, proc, log, {}, ready_seconds=-1)
    try:
        while time.monotonic() - started < 30:
            assert proc.poll() is None, f"serve exited with {proc.returncode}:\n{srv.log_tail()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    srv.ready_seconds = time.monotonic() - started
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert srv.ready_seconds >= 0, f"/ready not 200 within 30 s:\n{srv.log_tail()}"
        keys_run = _run(
            [str(installed.pocketbizz), "keys", "--json", "--data-dir", str(data_dir)], env=env
        )
        assert keys_run.returncode == 0, keys_run.stderr  # the running server's URL and keys
        srv.keys = json.loads(keys_run.stdout)
        yield srv
    finally:
        if proc.poll() is None:  # the last test stops it with SIGTERM; this is only a safety net
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
