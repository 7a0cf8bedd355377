"""Bad input to /auth/v1 gets a JSON 4xx in GoTrue's shape, never a 500, and the server lives."""

from __future__ import annotations

import httpx
import pytest
from harness import ServerProcess
from supabase import create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError


def _post(server: ServerProcess, path: str, content: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/v1{path}",
        content=content,
        headers={"apikey": server.anon_key, "Content-Type": "application/json", **headers},
    )


CASES = [
    ("/signup", b"{not json", 400, "bad_json"),
    ("/signup", b"[1, 2]", 400, "bad_json"),
    ("/signup", b'{"email": "x@example.com"}', 400, "validation_failed"),
    ("/signup", b'{"email": 12, "password": "secret123"}', 400, "validation_failed"),
    (
        "/signup",
        b'{"email": "not-an-email", "password": "secret123"}',
        400,
        "email_address_invalid",
    ),
    ("/signup", b'{"email": "a@b", "password": "secret123"}', 400, "email_address_invalid"),
    ("/signup", b'{"email": "short@example.com", "password": "123"}', 422, "weak_password"),
    ("/signup", b'{"password": "secret123"}', 400, "validation_failed"),
    ("/token?grant_type=password", b"{oops", 400, "bad_json"),
    ("/token?grant_type=password", b'{"email": "x@example.com"}', 400, "invalid_credentials"),
    ("/token?grant_type=password", b'{"email": ["x"], "password": 1}', 400, "validation_failed"),
    ("/token?grant_type=magic", b"{}", 400, "invalid_credentials"),
    ("/token", b"{}", 400, "invalid_credentials"),
    ("/token?grant_type=refresh_token", b"{}", 400, "validation_failed"),
    (
        "/token?grant_type=refresh_token",
        b'{"refresh_token": "nope"}',
        400,
        "refresh_token_not_found",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), CASES)
def test_bad_input_gets_gotrue_error(
    server: ServerProcess, path: str, body: bytes, status: int, code: str
) -> None:
    res = _post(server, path, body)
    assert res.status_code == status, res.text
    payload = res.json()
    assert payload["code"] == code and payload["error_code"] == code
    assert isinstance(payload["msg"], str) and payload["msg"] == payload["message"]
    assert res.headers["x-supabase-api-version"] == "2024-01-01"


def test_five_megabyte_body_is_refused_and_server_keeps_serving(server: ServerProcess) -> None:
    huge = b'{"email": "big@example.com", "password": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    res = _post(server, "/signup", huge)
    assert res.status_code == 413
    assert res.json()["code"] == "request_too_large"
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_weak_password_is_a_typed_client_error(server: ServerProcess) -> None:
    client = create_client(server.url, server.anon_key)
    with pytest.raises(AuthWeakPasswordError) as info:
        client.auth.sign_up({"email": "weak@example.com", "password": "12345"})
    assert info.value.reasons == ["length"]


def test_missing_bearer_and_bad_jwt_on_user(server: ServerProcess) -> None:
    no_bearer = httpx.get(f"{server.url}/auth/v1/user", headers={"apikey": server.anon_key})
    assert no_bearer.status_code == 401 and no_bearer.json()["code"] == "no_authorization"
    forged = httpx.get(
        f"{server.url}/auth/v1/user",
        headers={"apikey": server.anon_key, "Authorization": "Bearer a.b.c"},
    )
    assert forged.status_code == 403 and forged.json()["code"] == "bad_jwt"


def test_auth_needs_the_api_key(server: ServerProcess) -> None:
    res = httpx.post(
        f"{server.url}/auth/v1/signup", json={"email": "k@example.com", "password": "secret123"}
    )
    assert res.status_code == 401
    assert res.json()["code"] == "no_api_key"
    with pytest.raises(AuthApiError):
        create_client(server.url, "not-our-key").auth.sign_up(
            {"email": "k@example.com", "password": "secret123"}
        )


def test_expired_access_token_is_ignored_by_token_endpoint(server: ServerProcess) -> None:
    """Auto-refresh sends the (expired) old token as bearer; /token must not look at it."""
    from harness import TEST_JWT_SECRET

    from pocketbizz.gateway.tokens import encode_token

    expired = encode_token({"sub": "x", "role": "authenticated", "exp": 1}, TEST_JWT_SECRET)
    client = create_client(server.url, server.anon_key)
    res = client.auth.sign_up({"email": "expired-bearer@example.com", "password": "secret123"})
    refreshed = _post(
        server,
        "/token?grant_type=refresh_token",
        f'{{"refresh_token": "{res.session.refresh_token}"}}',
        Authorization=f"Bearer {expired}",
    )
    assert refreshed.status_code == 200
