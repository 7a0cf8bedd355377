"""The official client drives sign-up, sign-in, user read/update, refresh and sign-out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from harness import TEST_JWT_SECRET, ServerProcess
from supabase import create_client
from supabase_auth.errors import AuthApiError


def _email() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(scope="module")
def short_reuse_server(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server whose refresh-token reuse interval is 1 s, so the test need not wait 10 s."""
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("auth-data"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_REFRESH_TOKEN_REUSE_INTERVAL_SECONDS": "1",
        },
    )
    proc.start()
    yield proc
    proc.stop()


def test_two_users_full_session_lifecycle(server: ServerProcess) -> None:
    clients = []
    for full_name in ("Kedai Ali", "Kuih Siti"):
        client = create_client(server.url, server.anon_key)
        email, password = _email(), "s3cret-pass"
        res = client.auth.sign_up(
            {
                "email": email.upper(),
                "password": password,
                "options": {"data": {"full_name": full_name}},
            }
        )
        assert res.session is not None and res.user is not None
        assert res.user.email == email  # normalised to lower case
        assert res.user.user_metadata == {"full_name": full_name}
        assert res.session.expires_in == 3600
        clients.append((client, email, password, res.user.id))

    (a, a_email, a_password, a_id), (b, _, _, b_id) = clients
    assert a_id != b_id

    signed_in = a.auth.sign_in_with_password({"email": a_email, "password": a_password})
    assert signed_in.user is not None and signed_in.user.id == a_id
    claims = jwt.decode(
        signed_in.session.access_token,
        TEST_JWT_SECRET,
        algorithms=["HS256"],
        audience="authenticated",
    )
    assert claims["sub"] == a_id and claims["role"] == "authenticated"
    assert claims["aal"] == "aal1" and claims["session_id"]
    for key in ("iat", "exp", "email", "app_metadata", "user_metadata", "amr"):
        assert key in claims
    assert claims["exp"] - claims["iat"] == 3600

    got = a.auth.get_user()
    assert got is not None and got.user.id == a_id

    updated = a.auth.update_user({"data": {"business": "Ali Burger"}})
    assert updated.user.user_metadata == {"full_name": "Kedai Ali", "business": "Ali Burger"}

    old_refresh = a.auth.get_session().refresh_token
    refreshed = a.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != old_refresh
    assert a.auth.get_user().user.id == a_id

    a.auth.sign_out()
    assert a.auth.get_session() is None
    # B's session is untouched by A's sign-out.
    assert b.auth.get_user().user.id == b_id


def test_password_change_and_email_change(server: ServerProcess) -> None:
    client = create_client(server.url, server.anon_key)
    email = _email()
    client.auth.sign_up({"email": email, "password": "first-pass"})
    client.auth.update_user({"password": "second-pass"})
    new_email = _email()
    res = client.auth.update_user({"email": new_email})
    assert res.user.email == new_email
    client.auth.sign_out()

    other = create_client(server.url, server.anon_key)
    with pytest.raises(AuthApiError):
        other.auth.sign_in_with_password({"email": new_email, "password": "first-pass"})
    assert other.auth.sign_in_with_password({"email": new_email, "password": "second-pass"}).user


def test_wrong_password_and_unknown_email_answer_the_same(server: ServerProcess) -> None:
    client = create_client(server.url, server.anon_key)
    email = _email()
    client.auth.sign_up({"email": email, "password": "right-pass"})
    errors = []
    for attempt in (
        {"email": email, "password": "wrong-pass"},
        {"email": _email(), "password": "wrong-pass"},
    ):
        with pytest.raises(AuthApiError) as info:
            create_client(server.url, server.anon_key).auth.sign_in_with_password(attempt)
        errors.append((info.value.status, info.value.code, info.value.message))
    assert errors[0] == errors[1] == (400, "invalid_credentials", "Invalid login credentials")


def test_duplicate_sign_up_is_refused(server: ServerProcess) -> None:
    email = _email()
    create_client(server.url, server.anon_key).auth.sign_up(
        {"email": email, "password": "pass-one"}
    )
    with pytest.raises(AuthApiError) as info:
        create_client(server.url, server.anon_key).auth.sign_up(
            {"email": email, "password": "pass-two"}
        )
    assert (info.value.status, info.value.code) == (422, "user_already_exists")


def _refresh(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/v1/token?grant_type=refresh_token",
        json={"refresh_token": token},
        headers={"apikey": server.anon_key},
    )


def test_refresh_rotation_reuse_interval_and_revocation(short_reuse_server: ServerProcess) -> None:
    server = short_reuse_server
    client = create_client(server.url, server.anon_key)
    res = client.auth.sign_up({"email": _email(), "password": "rotate-me"})
    first = res.session.refresh_token

    second = _refresh(server, first)
    assert second.status_code == 200
    second_token = second.json()["refresh_token"]
    assert second_token != first

    # A concurrent refresh replaying the spent token within the interval still gets a session.
    replay = _refresh(server, first)
    assert replay.status_code == 200, replay.text
    live_token = replay.json()["refresh_token"]
    access = replay.json()["access_token"]

    time.sleep(1.6)
    late = _refresh(server, first)
    assert late.status_code == 400
    assert late.json()["code"] == "refresh_token_already_used"
    assert late.headers["x-supabase-api-version"] == "2024-01-01"

    # The whole session is gone: its live refresh token and /user both fail now.
    dead = _refresh(server, live_token)
    assert dead.status_code == 400 and dead.json()["code"] == "refresh_token_not_found"
    user = httpx.get(
        f"{server.url}/auth/v1/user",
        headers={"apikey": server.anon_key, "Authorization": f"Bearer {access}"},
    )
    assert user.status_code == 403 and user.json()["code"] == "session_not_found"


def test_official_client_refresh_after_reuse_interval_is_refused(
    short_reuse_server: ServerProcess,
) -> None:
    server = short_reuse_server
    client = create_client(server.url, server.anon_key)
    email = _email()
    res = client.auth.sign_up({"email": email, "password": "rotate-me"})
    spent = res.session.refresh_token
    client.auth.refresh_session()
    time.sleep(1.6)
    with pytest.raises(AuthApiError) as info:
        client.auth.refresh_session(spent)
    assert info.value.code == "refresh_token_already_used"
    # ...and the session the client held is revoked with it.
    with pytest.raises(AuthApiError):
        client.auth.refresh_session()


def test_logout_scopes(server: ServerProcess) -> None:
    email, password = _email(), "many-devices"
    phone = create_client(server.url, server.anon_key)
    phone.auth.sign_up({"email": email, "password": password})
    tablet = create_client(server.url, server.anon_key)
    tablet.auth.sign_in_with_password({"email": email, "password": password})
    laptop = create_client(server.url, server.anon_key)
    laptop.auth.sign_in_with_password({"email": email, "password": password})

    laptop.auth.sign_out({"scope": "local"})
    assert phone.auth.get_user() is not None and tablet.auth.get_user() is not None

    tablet_token = tablet.auth.get_session().access_token
    phone.auth.sign_out({"scope": "others"})
    assert phone.auth.get_user() is not None
    with pytest.raises(AuthApiError):
        tablet.auth.get_user(tablet_token)

    phone_refresh = phone.auth.get_session().refresh_token
    phone.auth.sign_out({"scope": "global"})
    assert _refresh(server, phone_refresh).json()["code"] == "refresh_token_not_found"


def test_secret_file_is_private(tmp_path: Path) -> None:
    from pocketbizz.settings import Settings

    settings = Settings(data_dir=tmp_path, jwt_secret=None)
    secret = settings.secret
    path = tmp_path / "jwt_secret"
    assert path.read_text() == secret and len(secret) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path, jwt_secret=None).secret == secret
