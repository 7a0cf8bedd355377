"""The operator's plan editing and system health (issue 11.3): `/functions/v1/admin/plans` and
`/functions/v1/admin/health`, for operators only; plan edits validated and exact (Decimal)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import httpx
import pytest
from harness import ServerProcess
from prometheus_client import CollectorRegistry, Histogram
from supabase import create_client

from pocketbizz.ops.service import request_summary

PASSWORD = "correct horse battery"
OPERATOR = f"ops-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture(scope="module")
def ops_server(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("opsapi"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_OPERATOR_EMAILS": OPERATOR,
            "PB_POOL_MAX_SIZE": "7",
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def operator(ops_server: ServerProcess) -> dict[str, str]:
    admin = create_client(ops_server.url, ops_server.service_key)
    admin.auth.admin.create_user({"email": OPERATOR, "password": PASSWORD, "email_confirm": True})
    client = create_client(ops_server.url, ops_server.anon_key)
    signed = client.auth.sign_in_with_password({"email": OPERATOR, "password": PASSWORD})
    assert signed.session is not None
    return {
        "apikey": ops_server.anon_key,
        "Authorization": f"Bearer {signed.session.access_token}",
    }


async def _owner(owner_dsn: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@pytest.fixture
def plan(owner_dsn: str) -> Iterator[str]:
    """A plan of this test's own, so the shipped ones stay as other tests expect them."""
    code = f"t{uuid.uuid4().hex[:10]}"
    asyncio.run(
        _owner(
            owner_dsn,
            "insert into public.plans (code, name, price_monthly, max_active_products) "
            "values ($1, 'Test', 12.50, 100)",
            code,
        )
    )
    yield code
    asyncio.run(_owner(owner_dsn, "delete from public.plans where code = $1", code))


def patch(
    server: ServerProcess, headers: dict[str, str], code: str, body: object
) -> httpx.Response:
    return httpx.patch(f"{server.url}/functions/v1/admin/plans/{code}", json=body, headers=headers)


def test_an_operator_edits_a_plan_exactly(
    ops_server: ServerProcess, operator: dict[str, str], plan: str, owner_dsn: str
) -> None:
    listed = httpx.get(f"{ops_server.url}/functions/v1/admin/plans", headers=operator)
    assert listed.status_code == 200
    mine = next(p for p in listed.json() if p["code"] == plan)
    assert mine == {
        "code": plan,
        "name": "Test",
        "price_monthly": "12.50",
        "max_active_products": 100,
        "max_sales_per_month": None,
        "is_active": True,
    }
    changed = patch(
        ops_server,
        operator,
        plan,
        {"price_monthly": "15.90", "max_active_products": None, "max_sales_per_month": 300},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["price_monthly"] == "15.90"
    assert changed.json()["max_active_products"] is None
    stored = asyncio.run(
        _owner(owner_dsn, "select price_monthly from public.plans where code = $1", plan)
    )
    assert stored == Decimal("15.90")
    # A JSON number is the number the client wrote, not its binary neighbour.
    assert (
        patch(ops_server, operator, plan, {"price_monthly": 15.95}).json()["price_monthly"]
        == "15.95"
    )
    # What the app reads (the public plans table through REST) has the new price.
    public = httpx.get(
        f"{ops_server.url}/rest/v1/plans",
        params={"code": f"eq.{plan}", "select": "price_monthly,max_sales_per_month"},
        headers={"apikey": ops_server.anon_key},
    )
    assert public.json() == [{"price_monthly": 15.95, "max_sales_per_month": 300}]


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"price_monthly": "-1"},
        {"price_monthly": "1.234"},
        {"price_monthly": "abc"},
        {"price_monthly": "NaN"},
        {"price_monthly": "10000000000.00"},
        {"price_monthly": None},
        {"price_monthly": "0"},  # a paid plan at 0 could never be bought
        {"max_active_products": -1},
        {"max_active_products": "5"},
        {"max_sales_per_month": 1.5},
        {"is_active": "yes"},
        {"name": ""},
        {"name": None},
        {"code": "other"},
        {"unknown": 1},
    ],
)
def test_invalid_plan_edits_are_400(
    ops_server: ServerProcess, operator: dict[str, str], plan: str, body: object
) -> None:
    response = patch(ops_server, operator, plan, body)
    assert response.status_code == 400, (body, response.text)
    assert response.json()["code"] == "invalid_plan"


def test_free_plan_stays_free_and_unknown_plans_are_404(
    ops_server: ServerProcess, operator: dict[str, str]
) -> None:
    refused = patch(ops_server, operator, "free", {"price_monthly": "5.00"})
    assert refused.status_code == 400 and "free plan" in refused.json()["error"]
    missing = patch(ops_server, operator, "no-such-plan", {"name": "X"})
    assert missing.status_code == 404


def test_health_reports_the_process(ops_server: ServerProcess, operator: dict[str, str]) -> None:
    httpx.get(f"{ops_server.url}/rest/v1/plans", headers={"apikey": ops_server.anon_key})
    health = httpx.get(f"{ops_server.url}/functions/v1/admin/health", headers=operator)
    assert health.status_code == 200
    body = health.json()
    assert body["uptime_seconds"] > 0
    pool = body["pool"]
    assert pool["max"] == 7 and 0 < pool["size"] <= 7 and 0 <= pool["in_use"] <= pool["size"]
    assert pool["waiting"] == 0
    # The embedded PostgreSQL has no contrib modules, so no pg_stat_statements.
    assert body["slow_queries"] is None
    surfaces = {s["surface"]: s for s in body["requests"]["surfaces"]}
    assert surfaces["/rest/v1"]["requests"] >= 1
    assert surfaces["/rest/v1"]["p95"] is not None and surfaces["/rest/v1"]["error_rate"] == 0
    assert body["requests"]["all"]["requests"] >= sum(s["requests"] for s in surfaces.values())


def test_latency_quantiles_follow_prometheus_interpolation() -> None:
    registry = CollectorRegistry()
    latency = Histogram(
        "pocketbizz_http_request_duration_seconds",
        "test",
        ["route", "method", "status"],
        buckets=(0.01, 0.1, 1),
        registry=registry,
    )
    for _ in range(80):
        latency.labels("/rest/v1/{table}", "GET", "200").observe(0.005)
    for _ in range(15):
        latency.labels("/rest/v1/{table}", "GET", "200").observe(0.05)
    for _ in range(4):
        latency.labels("/rest/v1/{table}", "POST", "500").observe(0.5)
    latency.labels("/auth/v1/token", "POST", "200").observe(5)  # past the last bound
    summary = request_summary(registry.collect())
    rest = next(s for s in summary["surfaces"] if s["surface"] == "/rest/v1")
    assert rest["requests"] == 99 and rest["error_rate"] == 4 / 99
    # rank 0.5 × 99 = 49.5 of 80 in (0, 0.01]: 0.01 × 49.5 / 80
    assert rest["p50"] == pytest.approx(0.01 * 49.5 / 80)
    # rank 94.05 falls in (0.01, 0.1], which holds requests 81..95
    assert rest["p95"] == pytest.approx(0.01 + 0.09 * (94.05 - 80) / 15)
    assert rest["p99"] == pytest.approx(0.1 + 0.9 * (98.01 - 95) / 4)
    auth = next(s for s in summary["surfaces"] if s["surface"] == "/auth/v1")
    assert auth["p99"] == 1.0  # in +Inf: the largest finite bound, as Prometheus answers
    assert summary["all"]["requests"] == 100
