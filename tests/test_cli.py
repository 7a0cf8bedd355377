"""`pocketbizz` as a newcomer runs it: embedded PostgreSQL, keys, clean stop, crash recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from harness import free_port
from supabase import create_client


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "PB_JWT_SECRET", "PB_DATABASE_URL"}
    }
    env["PB_LOG_LEVEL"] = "warning"
    return env


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pocketbizz",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir.parent / f"serve-{port}.log", "ab"),
    )


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("not ready in time")


def _postgres_running(pgdata: Path) -> bool:
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(cmd):
            return True
    return False


def test_serve_on_fresh_data_dir_stop_and_crash_recovery(tmp_path: Path) -> None:
    data_dir = tmp_path / "pb"
    port = free_port()
    keys = json.loads(
        subprocess.check_output(
            [
                sys.executable,
                "-m",
                "pocketbizz",
                "keys",
                "--json",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=_env(),
        )
    )
    assert set(keys) == {"url", "anon_key", "service_role_key"}
    assert keys["url"] == f"http://127.0.0.1:{port}"
    assert (data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600

    proc = _serve(data_dir, port)
    try:
        _wait_ready(port, proc)
        # `keys` without --port now reports the port this data dir is served on.
        reported = json.loads(
            subprocess.check_output(
                [sys.executable, "-m", "pocketbizz", "keys", "--json", "--data-dir", str(data_dir)],
                env=_env(),
            )
        )
        assert reported == keys
        client = create_client(keys["url"], keys["anon_key"])
        res = client.auth.sign_up({"email": "first@example.com", "password": "secret123"})
        assert res.session is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    pgdata = (data_dir / "pgdata").resolve()
    assert not _postgres_running(pgdata), "embedded postgres left running after SIGTERM"

    # A crash (SIGKILL) leaves postgres and its pid files behind; the next start recovers.
    proc = _serve(data_dir, port)
    _wait_ready(port, proc)
    proc.kill()
    proc.wait()
    proc = _serve(data_dir, port)
    try:
        _wait_ready(port, proc)
        again = create_client(keys["url"], keys["anon_key"])
        signed_in = again.auth.sign_in_with_password(
            {"email": "first@example.com", "password": "secret123"}
        )
        assert signed_in.user is not None  # data survived both restarts
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert not _postgres_running(pgdata)


def test_serve_with_two_worker_processes(owner_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**_env(), "DATABASE_URL": owner_dsn, "PB_AUTHENTICATOR_PASSWORD": "test-authenticator"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pocketbizz",
            "serve",
            "--data-dir",
            str(tmp_path / "pb"),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port, proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = [
            c
            for c in children
            if "pocketbizz" in " ".join(c.cmdline()) or c.name().startswith("python")
        ]
        assert len(workers) >= 2
        keys = json.loads(
            subprocess.check_output(
                [
                    sys.executable,
                    "-m",
                    "pocketbizz",
                    "keys",
                    "--json",
                    "--data-dir",
                    str(tmp_path / "pb"),
                ],
                env=env,
            )
        )
        # Both processes verify the same keys and serve the same database.
        for _ in range(6):
            res = httpx.post(
                f"http://127.0.0.1:{port}/auth/v1/signup",
                headers={"apikey": keys["anon_key"]},
                json={"email": f"w{_}-{port}@example.com", "password": "secret123"},
            )
            assert res.status_code == 200, res.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
