"""A still-valid access token stops working on every surface once its session is signed out,
in this process and in another one serving the same database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from auth.support import headers, surfaces
from harness import ServerProcess
from supabase import create_client

from pocketbizz.auth import token_is_revoked
from pocketbizz.db import Database


@pytest.fixture(scope="module")
def second_server(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("second"),
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator"},
    )
    proc.start()
    yield proc
    proc.stop()


def test_signed_out_session_is_refused_everywhere(
    server: ServerProcess, second_server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    other = create_client(server.url, server.anon_key)
    kept = other.auth.sign_in_with_password({"email": user.email, "password": user.password})
    assert kept.session is not None
    token = user.access_token
    assert set(surfaces(server, token, user.id).values()) == {200}

    user.client.auth.sign_out({"scope": "local"})

    for srv in (server, second_server):  # the other process learns of it by NOTIFY
        deadline = time.monotonic() + 5
        statuses = surfaces(srv, token, user.id)
        while statuses["rest"] != 401 and time.monotonic() < deadline:
            time.sleep(0.05)
            statuses = surfaces(srv, token, user.id)
        assert statuses == {
            "rest": 401,
            "rpc": 401,
            "storage": 401,
            "functions": 401,
            "user": 403,
        }
    body = httpx.get(f"{server.url}/rest/v1/products", headers=headers(server, token)).json()
    assert body["code"] == "PGRST303"
    assert body["message"] == "Session from session_id claim in JWT does not exist"
    gotrue = httpx.get(f"{server.url}/auth/v1/user", headers=headers(server, token)).json()
    assert gotrue["code"] == "session_not_found"

    # The other session of the same user is untouched.
    assert set(surfaces(second_server, kept.session.access_token, user.id).values()) == {200}


async def test_token_is_revoked_asks_the_database_without_a_registry(
    server: ServerProcess, owner_dsn: str, make_user: Callable[..., Any]
) -> None:
    import jwt
    from harness import TEST_JWT_SECRET

    user = make_user()
    claims = jwt.decode(
        user.access_token, TEST_JWT_SECRET, algorithms=["HS256"], audience="authenticated"
    )
    db = Database(owner_dsn, user="authenticator", password="test-authenticator", min_size=1)
    await db.open()
    try:
        assert await token_is_revoked(db, claims) is False
        assert await token_is_revoked(db, {"role": "anon"}) is False
        user.client.auth.sign_out({"scope": "global"})
        assert await token_is_revoked(db, claims) is True
        # A token of a never-deleted user with no session claim is not revoked.
        assert (
            await token_is_revoked(db, {"role": "authenticated", "sub": str(uuid.uuid4())}) is False
        )
    finally:
        await db.close()
