"""One log stream with no secrets in it: the realtime socket's ?apikey=, tokens in query
strings and bearer headers never reach the log; health and readiness polls stay at debug."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from ops.logged_server import LoggedServer

from pocketbizz.logging import redact


@pytest.fixture(scope="module")
def logged(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    proc = LoggedServer(owner_dsn, tmp_path_factory.mktemp("logged"))
    proc.start()
    yield proc
    proc.stop()


def _log_lines(server: LoggedServer) -> list[dict[str, object]]:
    text = server.log_path.read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_no_key_or_token_reaches_the_log(logged: LoggedServer) -> None:
    signed_up = httpx.post(
        f"{logged.url}/auth/v1/signup",
        headers={"apikey": logged.anon_key},
        json={"email": "logs@example.com", "password": "secret123"},
    ).json()
    token = signed_up["access_token"]
    refresh = signed_up["refresh_token"]

    async def connect() -> None:
        url = (
            f"ws://127.0.0.1:{logged.port}/realtime/v1/websocket?apikey={logged.anon_key}&vsn=1.0.0"
        )
        async with websockets.connect(url) as ws:
            await ws.send(
                json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"})
            )
            await ws.recv()

    asyncio.run(connect())
    # Keys and tokens in query strings and headers of plain HTTP requests too.
    httpx.get(
        f"{logged.url}/rest/v1/products?apikey={logged.service_key}&token={token}",
        headers={"Authorization": f"Bearer {token}"},
    )
    httpx.get(f"{logged.url}/rest/v1/nope?access_token={refresh}", headers={"apikey": "bad"})
    logged.stop()  # flush: everything the server wrote is in the file now
    logged.start()

    text = logged.log_path.read_text()
    for secret in (logged.anon_key, logged.service_key, token, refresh, "test-authenticator"):
        assert secret not in text
    lines = _log_lines(logged)  # every line is one JSON object: one structured stream
    websocket_lines = [line for line in lines if "WebSocket" in str(line["event"])]
    assert websocket_lines, "uvicorn's websocket line is in the stream, redacted"
    assert all("apikey=[redacted]" in str(line["event"]) for line in websocket_lines)
    assert any(
        line["event"] == "websocket" and line["route"] == "/realtime/v1/websocket" for line in lines
    )
    assert any(line["event"] == "request" and line["route"] == "/rest/v1/{table}" for line in lines)


def test_health_and_ready_polls_are_debug(logged: LoggedServer) -> None:
    for _ in range(3):
        assert httpx.get(f"{logged.url}/health").status_code == 200
        assert httpx.get(f"{logged.url}/ready").status_code == 200
    httpx.get(f"{logged.url}/auth/v1/settings", headers={"apikey": logged.anon_key})
    logged.stop()
    logged.start()
    requests = [line for line in _log_lines(logged) if line["event"] == "request"]
    assert any(line["route"] == "/auth/v1/settings" for line in requests)
    assert not any(line["route"] in ("/health", "/ready") for line in requests)


def test_a_secret_named_field_is_redacted_whatever_its_value() -> None:
    # In a process of its own: configuring logging is global.
    script = (
        "import structlog\n"
        "from pocketbizz.logging import configure_logging\n"
        "from pocketbizz.settings import Settings\n"
        "configure_logging(Settings(log_format='json', log_level='info'))\n"
        "structlog.get_logger('t').info('signed in', password='plain words', user='u1')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["password"] == "[redacted]" and line["user"] == "u1"


@pytest.mark.parametrize("log_level", ["info", "debug"])
def test_chatty_libraries_info_is_debug_child_loggers_included(log_level: str) -> None:
    script = (
        "import logging\n"
        "from pocketbizz.logging import configure_logging\n"
        "from pocketbizz.settings import Settings\n"
        f"configure_logging(Settings(log_format='json', log_level='{log_level}'))\n"
        "logging.getLogger('procrastinate.worker').info('job ended')\n"
        "logging.getLogger('pgserver').info('pg_ctl said')\n"
        "logging.getLogger('procrastinate.worker').warning('job failed')\n"
        "logging.getLogger('pocketbizz.db.migrate').info('applied migration')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in done.stderr.strip().splitlines()]
    seen = [(line["event"], line["level"]) for line in lines]
    demoted = [("job ended", "debug"), ("pg_ctl said", "debug")]
    kept = [("job failed", "warning"), ("applied migration", "info")]
    if log_level == "info":
        assert seen == kept
    else:
        assert seen == [demoted[0], demoted[1], *kept]


def test_redaction_covers_query_tokens_jwts_and_dsn_passwords() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLWJ5dGVz"
    assert redact("GET /x?apikey=abc&vsn=1.0.0") == "GET /x?apikey=[redacted]&vsn=1.0.0"
    assert redact("/object/sign/b/f?token=t0k3n") == "/object/sign/b/f?token=[redacted]"
    assert redact(f"Bearer {jwt}") == "Bearer [redacted]"
    assert (
        redact("postgresql://owner:hunter2@db:5432/app")
        == "postgresql://owner:[redacted]@db:5432/app"
    )
    assert redact("GET /rest/v1/products?select=id") == "GET /rest/v1/products?select=id"


def test_text_format_when_asked(tmp_path: Path, owner_dsn: str) -> None:
    proc = LoggedServer(owner_dsn, tmp_path, env_overrides={"PB_LOG_FORMAT": "text"})
    proc.start()
    proc.stop()
    text = proc.log_path.read_text()
    assert "Application startup complete" in text
    assert not text.lstrip().startswith("{")
