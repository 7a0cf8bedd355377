"""The client IP behind a trusted proxy (PB_TRUSTED_PROXIES): the right-most X-Forwarded-For
address that is not itself trusted, for every per-IP limit; from any other peer the header is
ignored, so a client cannot pick its own bucket. Webhook senders have a bucket of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import ServerProcess, early_in_a_rate_window
from pydantic import ValidationError

from pocketbizz.settings import Settings

LIMITS = {
    "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
    "PB_RATE_LIMIT_PER_MINUTE": "3",
    "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "2",
    "PB_RATE_LIMIT_WEBHOOKS_PER_MINUTE": "4",
}


def _start(owner_dsn: str, data_dir: Path, **extra: str) -> ServerProcess:
    proc = ServerProcess(owner_dsn, data_dir, env_overrides={**LIMITS, **extra})
    proc.start()
    return proc


@pytest.fixture
def behind_proxy(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """The default: loopback is a trusted proxy (the test client connects over loopback)."""
    proc = _start(owner_dsn, tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def direct(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """Only 10.0.0.0/8 is trusted: the loopback test client is an ordinary, untrusted peer."""
    proc = _start(owner_dsn, tmp_path, PB_TRUSTED_PROXIES="10.0.0.0/8")
    yield proc
    proc.stop()


def _anon_get(server: ServerProcess, http: httpx.Client, forwarded_for: str | None) -> int:
    headers = {"apikey": server.anon_key}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return http.get(f"{server.url}/auth/v1/settings", headers=headers).status_code


def test_behind_a_trusted_proxy_each_client_ip_has_its_bucket(
    behind_proxy: ServerProcess,
) -> None:
    early_in_a_rate_window(10)
    with httpx.Client() as http:
        first = [_anon_get(behind_proxy, http, "203.0.113.7") for _ in range(4)]
        assert first == [200, 200, 200, 429]
        # Another client behind the same proxy is not refused with the first.
        assert _anon_get(behind_proxy, http, "203.0.113.8") == 200
        # A trusted hop after the client is skipped: the client is the right-most untrusted.
        assert _anon_get(behind_proxy, http, "198.51.100.5, 127.0.0.1") == 200
        # What a client writes to the left of the address the proxy saw does not change its
        # bucket: 203.0.113.7 is still refused.
        assert _anon_get(behind_proxy, http, "192.0.2.99, 203.0.113.7") == 429


def test_from_an_untrusted_peer_forwarded_for_is_ignored(direct: ServerProcess) -> None:
    early_in_a_rate_window(10)
    with httpx.Client() as http:
        statuses = [
            _anon_get(direct, http, f"203.0.113.{n}") for n in range(1, 5)
        ]  # a new spoofed address each time: one bucket all the same, the peer's
        assert statuses == [200, 200, 200, 429]
        assert _anon_get(direct, http, None) == 429


def _sign_in(server: ServerProcess, http: httpx.Client, forwarded_for: str) -> int:
    # A new e-mail each time, so only the per-IP sign-in bucket can refuse.
    return http.post(
        f"{server.url}/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": server.anon_key, "X-Forwarded-For": forwarded_for},
        json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-pw"},
    ).status_code


def test_sign_in_attempts_are_counted_per_forwarded_client(
    behind_proxy: ServerProcess,
) -> None:
    """The web app mounted in-process signs its users in over loopback, passing on each
    browser's address: one shop's failed attempts must not lock every shop out."""
    early_in_a_rate_window(10)
    with httpx.Client() as http:
        shop_a = [_sign_in(behind_proxy, http, "203.0.113.20") for _ in range(3)]
        assert shop_a == [400, 400, 429]
        assert _sign_in(behind_proxy, http, "203.0.113.21") == 400


def test_webhooks_have_their_own_bucket(direct: ServerProcess) -> None:
    early_in_a_rate_window(10)
    with httpx.Client() as http:
        # The API's bucket for this IP is used up…
        assert [_anon_get(direct, http, None) for _ in range(4)][-1] == 429
        # …and a webhook sender from the same IP still gets through, up to its own limit.
        url = f"{direct.url}/webhooks/toyyibpay"
        statuses = [http.post(url, data={"billcode": "none"}).status_code for _ in range(5)]
        assert 429 not in statuses[:4]
        assert statuses[4] == 429
        # Its own limit did not spend the API's: both stay refused, each on its own count.
        assert _anon_get(direct, http, None) == 429


def test_trusted_proxies_setting_is_checked_at_start() -> None:
    assert Settings(trusted_proxies="10.0.0.0/8, 192.0.2.1,::1/128").trusted_proxies
    assert Settings(trusted_proxies="").trusted_proxies == ""
    for bad in ("10.0.0.1/8", "proxy.internal", "300.1.1.1"):
        with pytest.raises(ValidationError):
            Settings(trusted_proxies=bad)
