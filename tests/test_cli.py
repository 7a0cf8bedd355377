"""`pocketbizz` as a newcomer runs it: embedded PostgreSQL, keys from anywhere, clean stop,
crash recovery, and one clear line (exit 2) for every mistake it can diagnose."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from harness import free_port
from supabase import create_client

from pocketbizz import __version__


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A user of their own: the default data dir and the running-server records under `home`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "PB_JWT_SECRET", "PB_DATABASE_URL", "PB_DATA_DIR"}
    }
    env.update(
        {
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "PB_LOG_LEVEL": "warning",
            "PB_LOG_FORMAT": "json",
            **extra,
        }
    )
    return env


def _pocketbizz(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pocketbizz", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _serve(env: dict[str, str], port: int, log: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pocketbizz", "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(log, "a"),
        text=True,
    )


def _wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("not ready in time")


def _banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The lines `serve` prints once it listens: 'API URL: …', 'anon key: …'."""
    assert proc.stdout is not None
    fields: dict[str, str] = {}
    for line in proc.stdout:
        if not line.strip():
            if fields:
                break
            continue
        name, sep, value = line.strip().partition(": ")
        if sep:
            fields[name] = value
    return fields


def _postgres_running(pgdata: Path) -> bool:
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(cmd):
            return True
    return False


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_keys_never_invents_a_secret(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = _pocketbizz("keys", "--json", env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no PocketBizz data dir" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing created, least of all a secret


def test_serve_keys_from_anywhere_stop_and_crash_recovery(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, PB_LOG_LEVEL="info")
    log = tmp_path / "serve.log"
    data_dir = (tmp_path / "data" / "pocketbizz").resolve()  # the default: $XDG_DATA_HOME/…
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)

    proc = _serve(env, port, log)
    try:
        banner = _banner(proc)
        _wait_ready(port, proc)
        assert banner["API URL"] == f"http://127.0.0.1:{port}"
        assert banner["data dir"] == str(data_dir)
        # From another directory, without --data-dir: the running server's URL and keys.
        keys = json.loads(_pocketbizz("keys", "--json", env=env, cwd=elsewhere).stdout)
        assert keys == {
            "url": banner["API URL"],
            "anon_key": banner["anon key"],
            "service_role_key": banner["service_role key"],
        }
        assert (data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600
        client = create_client(keys["url"], keys["anon_key"])
        res = client.auth.sign_up({"email": "first@example.com", "password": "secret123"})
        assert res.session is not None
    finally:
        _stop(proc)
    assert not _postgres_running(data_dir / "pgdata"), "embedded postgres left running"
    assert list((tmp_path / "state" / "pocketbizz" / "servers").iterdir()) == []

    # One log stream: every line is JSON, the embedded PostgreSQL's chatter (pgserver logs
    # each pg_ctl run at INFO) is demoted to debug, migrations and uvicorn share the format.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    loggers = {line.get("logger") for line in lines}
    assert {"pocketbizz.db.migrate", "uvicorn.error"} <= loggers
    assert "pgserver" not in loggers
    assert keys["anon_key"] not in log.read_text()

    # Stopped: `keys` still answers for the data dir, and says no server is running.
    stopped = _pocketbizz("keys", "--json", env=env, cwd=elsewhere)
    assert stopped.returncode == 0 and "no server is running" in stopped.stderr
    assert json.loads(stopped.stdout)["anon_key"] == keys["anon_key"]

    # A crash (SIGKILL) leaves postgres, pid files and the server record behind; the next
    # start recovers, and `keys` ignores the dead server's record.
    proc = _serve(env, port, log)
    _wait_ready(port, proc)
    proc.kill()
    proc.wait()
    after_crash = _pocketbizz("keys", "--json", env=env, cwd=elsewhere)
    assert "no server is running" in after_crash.stderr
    proc = _serve(env, port, log)
    try:
        _wait_ready(port, proc)
        again = create_client(keys["url"], keys["anon_key"])
        signed_in = again.auth.sign_in_with_password(
            {"email": "first@example.com", "password": "secret123"}
        )
        assert signed_in.user is not None  # data survived both restarts
    finally:
        _stop(proc)
    assert not _postgres_running(data_dir / "pgdata")


def test_keys_follows_an_explicit_data_dir_from_another_directory(tmp_path: Path) -> None:
    """`make run` serves ./.pocketbizz; `keys` run from anywhere finds that running server."""
    port = free_port()
    env = _env(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pocketbizz", "serve", "--port", str(port), "--data-dir", ".pb"],
        env=env,
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "a"),  # noqa: SIM115
        text=True,
    )
    try:
        _wait_ready(port, proc)  # type: ignore[arg-type]
        keys = json.loads(_pocketbizz("keys", "--json", env=env, cwd=tmp_path).stdout)
        assert keys["url"] == f"http://127.0.0.1:{port}"
        live = httpx.get(
            f"{keys['url']}/rest/v1/products", headers={"apikey": keys["service_role_key"]}
        )
        assert live.status_code == 200, live.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_port_in_use_fails_before_the_database_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = _pocketbizz("serve", "--port", str(port), env=_env(tmp_path))
        elapsed = time.monotonic() - started
    assert done.returncode == 2
    assert done.stderr == f"pocketbizz: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert not (tmp_path / "data" / "pocketbizz" / "pgdata").exists()
    assert elapsed < 20  # no database was started (that alone takes seconds)


@pytest.mark.parametrize(
    ("args", "extra", "expected"),
    [
        (["serve"], {"PB_PORT": "eighty"}, "pocketbizz: invalid setting PB_PORT: Input should"),
        (["serve", "--port", "x"], {}, "pocketbizz serve: argument --port: invalid int value"),
        (["serve", "--port", "70000"], {}, "pocketbizz: invalid setting --port: Input should"),
        (["serve"], {"PB_STATEMENT_TIMEOUT": "soon"}, "pocketbizz: invalid setting PB_STATEMENT_"),
        (["serve"], {"PB_POOL_MIN_SIZE": "50"}, "pocketbizz: invalid settings: PB_POOL_MIN_SIZE"),
        (["serve"], {"PB_LOG_LEVEL": "loud"}, "pocketbizz: invalid setting PB_LOG_LEVEL"),
        (["migrate"], {"PB_WORKERS": "0"}, "pocketbizz: invalid setting PB_WORKERS"),
        (
            ["serve"],
            {"PB_ENVIRONMENT": "production", "PB_JWT_SECRET": "hunter2"},
            "pocketbizz: invalid settings: PB_JWT_SECRET must be at least 32 characters",
        ),
        (
            ["serve"],
            {"DATABASE_URL": "postgresql://owner:hunter2@127.0.0.1:{closed}/db"},
            "pocketbizz: cannot connect to DATABASE_URL: ",
        ),
        (["frobnicate"], {}, "pocketbizz: argument command: invalid choice"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    tmp_path: Path, args: list[str], extra: dict[str, str], expected: str
) -> None:
    extra = {k: v.replace("{closed}", str(free_port())) for k, v in extra.items()}
    # A free port, so a server a developer runs on the default one cannot change the answer.
    extra = {"PB_PORT": str(free_port()), **extra}
    done = _pocketbizz(*args, env=_env(tmp_path, **extra))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(expected), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr  # a DSN's password is never echoed
    assert not (tmp_path / "data").exists()


def test_version_and_help_list_the_environment(tmp_path: Path) -> None:
    version = _pocketbizz("--version", env=_env(tmp_path))
    assert version.returncode == 0 and version.stdout == f"pocketbizz {__version__}\n"
    helped = _pocketbizz("--help", env=_env(tmp_path))
    assert helped.returncode == 0
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "PB_DATA_DIR",
        "PB_JWT_SECRET",
        "PB_METRICS_TOKEN",
        "PB_LOG_FORMAT",
        "PB_POOL_ACQUISITION_TIMEOUT",
    ):
        assert f"  {name}" in helped.stdout
    assert f"PB_DATA_DIR (default {tmp_path / 'data' / 'pocketbizz'})" in helped.stdout
