"""The gateway: API keys and tokens to roles, refusals, request ids, health and metrics."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from harness import TEST_JWT_SECRET, ServerProcess

from pocketbizz.errors import Unauthorized
from pocketbizz.gateway import identify
from pocketbizz.gateway.tokens import api_keys, encode_token

KEYS = api_keys(TEST_JWT_SECRET)


# Parameters are built at collection, maybe minutes before a slow suite runs them: cases about
# role or audience pass an expiry far ahead so they never turn into "JWT expired".
def _user_token(**overrides: object) -> str:
    claims = {
        "sub": "11111111-1111-1111-1111-111111111111",
        "role": "authenticated",
        "aud": "authenticated",
        "exp": int(time.time()) + 60,
        **overrides,
    }
    return encode_token(claims, TEST_JWT_SECRET)


def test_key_alone_gives_its_role() -> None:
    assert identify({"apikey": KEYS["anon_key"]}, {}, TEST_JWT_SECRET).role == "anon"
    service = identify({"apikey": KEYS["service_role_key"]}, {}, TEST_JWT_SECRET)
    assert service.role == "service_role"
    # The key as bearer, or a bearer that is not a JWT, means the key's role.
    same = identify(
        {"apikey": KEYS["anon_key"], "authorization": f"Bearer {KEYS['anon_key']}"},
        {},
        TEST_JWT_SECRET,
    )
    assert same.role == "anon"
    plain = identify(
        {"apikey": KEYS["anon_key"], "authorization": "Bearer plain"}, {}, TEST_JWT_SECRET
    )
    assert plain.role == "anon"
    assert identify({}, {"apikey": KEYS["anon_key"]}, TEST_JWT_SECRET).role == "anon"


def test_user_token_gives_authenticated_with_claims() -> None:
    who = identify(
        {"apikey": KEYS["anon_key"], "authorization": f"Bearer {_user_token()}"},
        {},
        TEST_JWT_SECRET,
    )
    assert who.role == "authenticated"
    assert str(who.user_id) == "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "no_api_key"),
        ({"apikey": "not-a-key"}, "invalid_api_key"),
        (
            {"apikey": encode_token({"role": "anon", "exp": 4102444800}, "another-secret")},
            "invalid_api_key",
        ),
        # a user token is not an API key
        ({"apikey": _user_token()}, "invalid_api_key"),
        ({"apikey": KEYS["anon_key"], "authorization": f"Bearer {_user_token(exp=1)}"}, "PGRST303"),
        (
            {
                "apikey": KEYS["anon_key"],
                "authorization": "Bearer "
                + jwt.encode(
                    {"sub": "x", "role": "authenticated", "exp": 4102444800},
                    "wrong-secret",
                    algorithm="HS256",
                ),
            },
            "PGRST301",
        ),
        (
            {
                "apikey": KEYS["anon_key"],
                "authorization": "Bearer "
                + jwt.encode(
                    {"sub": "x", "role": "service_role", "exp": 4102444800}, None, algorithm="none"
                ),
            },
            "PGRST301",
        ),
        (
            {
                "apikey": KEYS["anon_key"],
                "authorization": f"Bearer {_user_token(role='postgres', exp=4102444800)}",
            },
            "PGRST301",
        ),
        (
            {
                "apikey": KEYS["anon_key"],
                "authorization": f"Bearer {_user_token(aud='other', exp=4102444800)}",
            },
            "PGRST301",
        ),
    ],
)
def test_refused_credentials(headers: dict[str, str], code: str) -> None:
    with pytest.raises(Unauthorized) as info:
        identify(headers, {}, TEST_JWT_SECRET)
    assert info.value.code == code and info.value.status == 401


def test_request_id_health_ready_metrics(server: ServerProcess) -> None:
    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert len(health.headers["x-request-id"]) == 36
    echoed = httpx.get(f"{server.url}/health", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}

    httpx.post(
        f"{server.url}/auth/v1/token?grant_type=password",
        json={"email": "m@example.com", "password": "x"},
        headers={"apikey": KEYS["anon_key"]},
    )
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "pocketbizz_http_request_duration_seconds_bucket{" in metrics
    assert 'route="/auth/v1/token"' in metrics and 'status="400"' in metrics
    assert 'pocketbizz_db_pool_connections{state="in_use"}' in metrics


def test_unexpected_path_is_json_404_and_server_keeps_serving(server: ServerProcess) -> None:
    res = httpx.get(f"{server.url}/nope", headers={"apikey": KEYS["anon_key"]})
    assert res.status_code == 404
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_gateway_answers_carry_request_id_and_limits(server: ServerProcess) -> None:
    """The gateway's own refusals pass through the outer layers: a 413 from the body limit has
    the request id (request context) and the RateLimit headers (rate limit) like any answer."""
    too_big = httpx.post(
        f"{server.url}/rest/v1/products",
        headers={"apikey": KEYS["anon_key"], "X-Request-Id": "big-1"},
        content=b"x" * (1024 * 1024 + 1),
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "request_too_large"
    assert too_big.headers["x-request-id"] == "big-1"
    assert int(too_big.headers["ratelimit-limit"]) > 0
    # Health probes are neither limited nor identified: no RateLimit headers.
    assert "ratelimit-limit" not in httpx.get(f"{server.url}/health").headers
