"""Sentry (issue 11.4): with SENTRY_DSN an unexpected error in a request reaches the ingestion
endpoint — here a local HTTP server speaking Sentry's envelope endpoint — scrubbed of every
token, key and password; without it nothing is sent."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pgserver
import pytest
import sentry_sdk
from harness import TEST_JWT_SECRET, ServerProcess

from pocketbizz.db import apply_migrations
from pocketbizz.jobs.repository import enqueue
from pocketbizz.logging import REDACTED
from pocketbizz.observability import Scrubber, configure
from pocketbizz.settings import Settings

AUTHENTICATOR_PASSWORD = "sentry-test-authenticator-pw"
DB_PASSWORD = "db-hunter2-password"
WHATSAPP_TOKEN = "EAAG-whatsapp-token-secret-0001"
METRICS_TOKEN = "metrics-token-secret-0002"


class Ingestion:
    """Sentry's ingestion endpoint: keeps every envelope posted to /api/<project>/envelope/."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        self.paths: list[str] = []
        received = self.envelopes
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                paths.append(self.path)
                received.append(body)
                answer = json.dumps({"id": uuid.uuid4().hex}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        """The error events among the envelopes' items (an envelope is JSON lines: a header,
        then per item a header line and a payload line)."""
        found = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header and json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found


@pytest.fixture(scope="module")
def ingestion() -> Iterator[Ingestion]:
    sink = Ingestion()
    sink.thread.start()
    yield sink
    sink.server.shutdown()


@pytest.fixture(scope="module")
async def sentry_dsn_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database of its own: the test breaks it on purpose."""
    pg = pgserver.get_server(tmp_path_factory.mktemp("sentry-pg"), cleanup_mode="delete")
    dsn = str(pg.get_uri())
    await apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD)
    yield dsn
    pg.cleanup()


def _server(dsn: str, data_dir: Path, **env: str) -> ServerProcess:
    # The embedded server trusts local logins: a password in the URL is accepted and unused,
    # which is enough to check that it never reaches Sentry.
    with_password = dsn.replace("postgres:@", f"postgres:{DB_PASSWORD}@", 1)
    return ServerProcess(
        with_password,
        data_dir,
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
            "PB_WHATSAPP_TOKEN": WHATSAPP_TOKEN,
            "PB_METRICS_TOKEN": METRICS_TOKEN,
            "PB_LOG_LEVEL": "info",
            **env,
        },
    )


async def _failing_sign_in(server: ServerProcess, dsn: str) -> dict[str, Any]:
    """Sign up, break the refresh-token table, then sign in with every credential a client
    sends (key, bearer token, cookie, password): the server answers 500. What was sent, and
    the request id, are returned."""
    email, password = f"sentry-{uuid.uuid4().hex[:10]}@example.com", "very secret password 9"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        keys = {"apikey": server.anon_key}
        up = await http.post(
            "/auth/v1/signup", json={"email": email, "password": password}, headers=keys
        )
        assert up.status_code == 200, up.text
        session = up.json()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("alter table auth.refresh_tokens rename to refresh_tokens_gone")
            failed = await http.post(
                "/auth/v1/token",
                params={"grant_type": "password", "apikey": server.anon_key},
                json={"email": email, "password": password},
                headers={
                    "apikey": server.anon_key,
                    "Authorization": f"Bearer {session['access_token']}",
                    "Cookie": f"sb-refresh-token={session['refresh_token']}",
                },
            )
        finally:
            await conn.execute("alter table auth.refresh_tokens_gone rename to refresh_tokens")
            await conn.close()
    assert failed.status_code == 500
    return {
        "request_id": failed.headers["x-request-id"],
        "secrets": [
            password,
            session["access_token"],
            session["refresh_token"],
            server.anon_key,
            server.service_key,
            TEST_JWT_SECRET,
            AUTHENTICATOR_PASSWORD,
            DB_PASSWORD,
            WHATSAPP_TOKEN,
            METRICS_TOKEN,
        ],
    }


async def test_a_request_error_reaches_sentry_without_secrets(
    ingestion: Ingestion, sentry_dsn_db: str, tmp_path: Path
) -> None:
    server = _server(sentry_dsn_db, tmp_path, SENTRY_DSN=ingestion.dsn)
    server.start(timeout=60)
    try:
        sent = await _failing_sign_in(server, sentry_dsn_db)
        deadline = time.monotonic() + 15
        while not [e for e in ingestion.events() if e.get("tags", {}).get("request_id")]:
            assert time.monotonic() < deadline, "no event reached the ingestion endpoint"
            await asyncio.sleep(0.1)
    finally:
        server.stop()  # the SDK flushes what it still holds on exit

    assert all(path == "/api/1/envelope/" for path in ingestion.paths)
    [event] = [e for e in ingestion.events() if e.get("tags", {}).get("request_id")]
    assert event["tags"]["request_id"] == sent["request_id"]
    assert event["tags"]["component"] == "server"
    assert event["tags"]["path"] == "/auth/v1/token"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "UndefinedTableError"
    assert "refresh_tokens" in exception["value"]
    assert exception["stacktrace"]["frames"]  # the stack, without its local variables
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    everything = b"\n".join(ingestion.envelopes).decode()
    for secret in sent["secrets"]:
        assert secret not in everything


async def test_without_a_dsn_nothing_is_sent(
    ingestion: Ingestion, sentry_dsn_db: str, tmp_path: Path
) -> None:
    assert configure(Settings(data_dir=tmp_path), "server") is False
    assert not sentry_sdk.get_client().is_active()
    before = len(ingestion.envelopes)
    server = _server(sentry_dsn_db, tmp_path)
    server.start(timeout=60)
    try:
        await _failing_sign_in(server, sentry_dsn_db)
    finally:
        server.stop()
    assert len(ingestion.envelopes) == before
    log = (tmp_path / f"server-{server.port}.log").read_text()
    assert "unhandled error" in log  # the error happened, and was only logged


def _start_worker(dsn: str, data_dir: Path, sentry_dsn: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PB_", "DATABASE_", "SENTRY_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pocketbizz", "worker", "--data-dir", str(data_dir)],
        env={
            **env,
            "DATABASE_URL": dsn,
            "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
            "PB_JOBS_QUEUES": "sentry-test",
            "PB_LOG_LEVEL": "warning",
            "SENTRY_DSN": sentry_dsn,
        },
        stdout=subprocess.DEVNULL,
        stderr=(data_dir / "worker.log").open("wb"),
    )


async def test_a_failed_job_of_the_worker_reaches_sentry(
    ingestion: Ingestion, sentry_dsn_db: str, tmp_path: Path
) -> None:
    """`pocketbizz worker` reports a job that failed for good (here: a task this worker does
    not know, which is not retried) with the worker's tag."""
    worker = _start_worker(sentry_dsn_db, tmp_path, ingestion.dsn)
    try:
        conn = await asyncpg.connect(sentry_dsn_db)
        try:
            # The worker applies the queue's schema at start; enqueue once it is there.
            deadline = time.monotonic() + 60
            while not await conn.fetchval(
                "select to_regclass('procrastinate.procrastinate_jobs') is not null"
            ):
                assert time.monotonic() < deadline and worker.poll() is None
                await asyncio.sleep(0.2)
            async with conn.transaction():
                job = await enqueue(conn, "no.such.task", {"n": 1}, queue="sentry-test")
        finally:
            await conn.close()

        def from_worker() -> list[dict[str, Any]]:
            return [e for e in ingestion.events() if e.get("tags", {}).get("component") == "worker"]

        deadline = time.monotonic() + 60
        while not from_worker():
            assert time.monotonic() < deadline, "no event from the worker"
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            await asyncio.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    [event] = from_worker()
    assert event["logger"].startswith("procrastinate")
    assert event["exception"]["values"][-1]["type"] == "TaskNotFound"
    assert (event["extra"]["job"]["id"], event["extra"]["job"]["task_name"]) == (
        job,
        "no.such.task",
    )
    assert AUTHENTICATOR_PASSWORD not in json.dumps(event)


def test_the_scrubber_removes_every_kind_of_credential() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
    scrubber = Scrubber(["setting-secret-value"])
    event: dict[str, Any] = {
        "message": f"token {jwt} refused",
        "request": {
            "url": "http://localhost/rest/v1/products",
            "query_string": "apikey=abc123def&select=*",
            "headers": {"Authorization": f"Bearer {jwt}", "apikey": jwt, "X-Request-Id": "r1"},
            "cookies": {"sb-access-token": jwt},
            "data": {"password": "hunter2hunter2"},
        },
        "extra": {
            "dsn": "postgresql://owner:pg-password@db:5432/app",
            "password": "hunter2hunter2",
            "note": "uses setting-secret-value inside",
            "nested": [{"refresh_token": "r-123456"}, ("access_token=xyz789",)],
        },
    }
    scrubbed = scrubber.event(event, {})
    text = json.dumps(scrubbed)
    for secret in (jwt, "abc123def", "pg-password", "hunter2hunter2", "setting-secret-value"):
        assert secret not in text
    for secret in ("r-123456", "xyz789"):
        assert secret not in text
    assert scrubbed["request"]["headers"] == {
        "Authorization": REDACTED,
        "apikey": REDACTED,
        "X-Request-Id": "r1",
    }
    assert "cookies" not in scrubbed["request"] and "data" not in scrubbed["request"]
    assert scrubbed["extra"]["dsn"] == f"postgresql://owner:{REDACTED}@db:5432/app"
    crumb = scrubber.breadcrumb({"message": "connect password=s3cr3t-pw", "data": {}}, {})
    assert crumb["message"] == f"connect password={REDACTED}"
