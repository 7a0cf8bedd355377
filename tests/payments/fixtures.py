"""The payments tests' processes (tests/payments and the app's subscription and payment-link
tests): the fake ToyyibPay, a server whose ToyyibPay is that fake, and a signed-in client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import ServerProcess
from payments.fake_toyyibpay import FakeToyyibPay
from supabase import Client, create_client


@contextmanager
def running_fake() -> Iterator[FakeToyyibPay]:
    fake = FakeToyyibPay()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@contextmanager
def payments_server(
    owner_dsn: str, fake: FakeToyyibPay, data_dir: Path, *, queue: str, **env: str
) -> Iterator[ServerProcess]:
    """A server whose ToyyibPay is `fake`, its worker on `queue` alone (it takes no other
    test's jobs), with `env` (PB_ settings) on top."""
    server = ServerProcess(owner_dsn, data_dir)
    server.env_overrides = {
        "PB_PUBLIC_URL": server.url,
        "PB_TOYYIBPAY_URL": fake.url,
        "PB_JOBS_QUEUES": queue,
        "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",  # the session's (tests/conftest.py)
        **env,
    }
    server.start()
    try:
        yield server
    finally:
        server.stop()


def signed_in(server: ServerProcess, user: Any) -> Client:
    """The official client, signed in as `user` (a make_user user) on `server`."""
    client = create_client(server.url, server.anon_key)
    client.auth.sign_in_with_password({"email": user.email, "password": user.password})
    return client
