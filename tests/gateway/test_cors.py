"""CORS: what a browser on another origin needs from every surface, errors included."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from harness import TEST_JWT_SECRET, ServerProcess, early_in_a_rate_window

from pocketbizz.gateway.tokens import encode_token

ORIGIN = "https://shop.example.com"
OTHER_ORIGIN = "https://evil.example.net"

# One URL of each surface, with the method the browser asks to use.
SURFACES = [
    ("POST", "/auth/v1/token?grant_type=password"),
    ("GET", "/auth/v1/user"),
    ("POST", "/rest/v1/products"),
    ("PATCH", "/rest/v1/products?id=eq.1"),
    ("POST", "/rest/v1/rpc/create_sale"),
    ("POST", "/storage/v1/object/product-images/a/b.png"),
    ("POST", "/functions/v1/analytics"),
    ("POST", "/realtime/v1/api/broadcast/room/events/ping"),
]
SDK_HEADERS = "authorization, apikey, x-client-info, content-type, prefer, accept-profile"


def _preflight(url: str, method: str, origin: str = ORIGIN, **extra: str) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": method, **extra}
    return httpx.options(url, headers=headers)


@pytest.mark.parametrize(("method", "path"), SURFACES)
def test_preflight_is_answered_without_an_api_key(
    server: ServerProcess, method: str, path: str
) -> None:
    res = _preflight(
        f"{server.url}{path}", method, **{"Access-Control-Request-Headers": SDK_HEADERS}
    )
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == "*"
    allowed_methods = [m.strip() for m in res.headers["access-control-allow-methods"].split(",")]
    assert method in allowed_methods
    assert res.headers["access-control-allow-headers"] == SDK_HEADERS
    assert res.headers["access-control-max-age"] == "86400"
    assert "access-control-allow-credentials" not in res.headers


def test_preflight_without_requested_headers_lists_every_sdk_header(server: ServerProcess) -> None:
    res = _preflight(f"{server.url}/rest/v1/products", "GET")
    assert res.status_code == 200
    allowed = {h.strip() for h in res.headers["access-control-allow-headers"].split(",")}
    assert {
        "authorization",
        "apikey",
        "x-client-info",
        "content-type",
        "accept",
        "accept-profile",
        "content-profile",
        "prefer",
        "range",
        "x-upsert",
        "x-metadata",
        "cache-control",
        "x-supabase-api-version",
        "x-region",
        "baggage",
        "sentry-trace",
    } <= allowed


def test_malformed_requested_headers_are_not_reflected(server: ServerProcess) -> None:
    res = _preflight(
        f"{server.url}/rest/v1/products",
        "GET",
        **{"Access-Control-Request-Headers": "apikey, <script>"},
    )
    assert res.status_code == 200
    assert "<script>" not in res.headers["access-control-allow-headers"]
    assert "apikey" in res.headers["access-control-allow-headers"]


def _exposed(res: httpx.Response) -> set[str]:
    return {h.strip().lower() for h in res.headers["access-control-expose-headers"].split(",")}


def test_a_successful_read_carries_cors_and_exposes_what_clients_read(
    server: ServerProcess,
) -> None:
    res = httpx.get(
        f"{server.url}/rest/v1/plans?select=code",
        headers={"Origin": ORIGIN, "apikey": server.anon_key, "Prefer": "count=exact"},
    )
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == "*"
    assert "content-range" in res.headers
    assert {
        "content-range",
        "content-location",
        "content-profile",
        "preference-applied",
        "location",
        "x-supabase-api-version",
        "x-request-id",
        "retry-after",
    } <= _exposed(res)
    # With any origin allowed, the answer does not depend on the origin.
    assert "origin" not in res.headers.get("vary", "").lower()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/rest/v1/products", 401),  # no apikey
        ("GET", "/auth/v1/user", 401),
        ("GET", "/rest/v1/no_such_table", 404),
        ("POST", "/functions/v1/no_such_function", 404),
        ("GET", "/storage/v1/object/no-such-bucket/x.png", 404),
    ],
)
def test_error_responses_carry_cors(
    server: ServerProcess, method: str, path: str, status: int
) -> None:
    headers = {"Origin": ORIGIN}
    if not path.startswith(("/rest/v1/products", "/auth/v1/user")):
        headers["apikey"] = server.anon_key
    res = httpx.request(method, f"{server.url}{path}", headers=headers)
    assert res.status_code == status
    assert res.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in _exposed(res)


def test_paths_outside_the_api_get_no_cors(server: ServerProcess) -> None:
    res = httpx.get(f"{server.url}/health", headers={"Origin": ORIGIN})
    assert res.status_code == 200
    assert "access-control-allow-origin" not in res.headers
    assert _preflight(f"{server.url}/metrics", "GET").status_code != 200


@pytest.fixture(scope="module")
def restricted(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("cors"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_CORS_ALLOWED_ORIGINS": f"{ORIGIN}, http://localhost:3000/",
            "PB_RATE_LIMIT_PER_MINUTE": "30",
        },
    )
    proc.start()
    yield proc
    proc.stop()


def test_restricted_origins_echo_the_matching_origin(restricted: ServerProcess) -> None:
    for origin in (ORIGIN, "http://localhost:3000"):
        pre = _preflight(f"{restricted.url}/rest/v1/products", "POST", origin=origin)
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == origin
        assert "Origin" in pre.headers["vary"]
        res = httpx.get(
            f"{restricted.url}/rest/v1/plans",
            headers={"Origin": origin, "apikey": restricted.anon_key},
        )
        assert res.status_code == 200
        assert res.headers["access-control-allow-origin"] == origin
        assert "origin" in res.headers["vary"].lower()


def test_restricted_origins_refuse_other_origins(restricted: ServerProcess) -> None:
    pre = _preflight(f"{restricted.url}/rest/v1/products", "POST", origin=OTHER_ORIGIN)
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-methods" not in pre.headers
    res = httpx.get(
        f"{restricted.url}/rest/v1/plans",
        headers={"Origin": OTHER_ORIGIN, "apikey": restricted.anon_key},
    )
    # The server answers; the browser withholds the body from a page on that origin.
    assert res.status_code == 200
    assert "access-control-allow-origin" not in res.headers
    assert "origin" in res.headers["vary"].lower()


def test_rate_limited_answer_carries_cors(restricted: ServerProcess) -> None:
    # A user of its own (the limit counts per JWT subject), so other tests' requests do not count.
    token = encode_token(
        {
            "role": "authenticated",
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "exp": int(time.time()) + 3600,
        },
        TEST_JWT_SECRET,
    )
    headers = {"Origin": ORIGIN, "apikey": restricted.anon_key, "Authorization": f"Bearer {token}"}
    early_in_a_rate_window(10)
    with httpx.Client() as http:
        statuses = [
            http.get(f"{restricted.url}/rest/v1/plans", headers=headers).status_code
            for _ in range(30)
        ]
        refused = http.get(f"{restricted.url}/rest/v1/plans", headers=headers)
    assert 429 not in statuses
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in refused.headers
    assert "retry-after" in _exposed(refused)


def test_preflights_do_not_count_against_the_rate_limit(restricted: ServerProcess) -> None:
    # More preflights than the per-IP limit allows requests: none is counted, none refused.
    with httpx.Client() as http:
        for _ in range(35):
            pre = http.options(
                f"{restricted.url}/rest/v1/plans",
                headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
            )
            assert pre.status_code == 200
        res = http.get(
            f"{restricted.url}/rest/v1/plans",
            headers={"Origin": ORIGIN, "apikey": restricted.anon_key},
        )
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == ORIGIN
