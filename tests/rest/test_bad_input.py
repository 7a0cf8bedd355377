"""Bad input gets a PostgREST-shaped 4xx (string `code`, `message`, `details`, `hint`), never a
5xx, and nothing is half-written. Also: the row cap on reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from rest.support import Tenant, run_sql, sign_up

# (method, path, params, body, status, code)
CASES: list[tuple[str, str, Any, Any, int, str]] = [
    ("GET", "/nope", None, None, 404, "PGRST205"),
    ("POST", "/nope", None, {"a": 1}, 404, "PGRST205"),
    ("GET", "/products", {"select": "id,nope"}, None, 400, "42703"),
    ("GET", "/products", {"nope": "eq.1"}, None, 400, "42703"),
    ("GET", "/products", {"order": "nope.asc"}, None, 400, "42703"),
    ("GET", "/products", {"order": "name.sideways"}, None, 400, "PGRST100"),
    ("GET", "/products", {"name": "foo.1"}, None, 400, "PGRST100"),
    ("GET", "/products", {"name": "eq"}, None, 400, "PGRST100"),
    ("GET", "/products", {"sku": "in.1,2"}, None, 400, "PGRST100"),
    ("GET", "/products", {"sku": 'in.("a,b)'}, None, 400, "PGRST100"),
    ("GET", "/products", {"sku": "in.(a,(b)"}, None, 400, "PGRST100"),
    ("GET", "/products", {"or": "(sku.eq.1"}, None, 400, "PGRST100"),
    ("GET", "/products", {"or": "sku.eq.1"}, None, 400, "PGRST100"),
    ("GET", "/products", {"or": "()"}, None, 400, "PGRST100"),
    ("GET", "/products", {"or": "(sku.zz.1)"}, None, 400, "PGRST100"),
    ("GET", "/products", {"or": "(sku)"}, None, 400, "PGRST100"),
    ("GET", "/products", {"and": "(sku.eq.1,or(name.eq.2)"}, None, 400, "PGRST100"),
    ("GET", "/products", {"is_active": "is.maybe"}, None, 400, "PGRST100"),
    ("GET", "/products", {"limit": "ten"}, None, 400, "PGRST100"),
    ("GET", "/products", {"offset": "-1"}, None, 400, "PGRST100"),
    ("GET", "/products", {"select": "id,("}, None, 400, "PGRST100"),
    ("GET", "/products", {"select": "name::regclass"}, None, 400, "PGRST100"),
    ("GET", "/products", {"select": "id,nope(*)"}, None, 400, "PGRST200"),
    ("GET", "/products", {"select": '"a\x00b":name'}, None, 400, "PGRST100"),
    ("GET", "/products", {"select": "x" * 64 + ":name"}, None, 400, "PGRST100"),
    ("GET", "/products", {"name": "eq.a\x00b"}, None, 400, "22021"),
    ("GET", "/products", {"images->>\x00": "eq.x"}, None, 400, "22021"),
    ("GET", "/products", {"id": "eq.not-a-uuid"}, None, 400, "22P02"),
    ("GET", "/products", {"sale_price": "gt.cheap"}, None, 400, "22P02"),
    ("GET", "/products", {"images": "cs.{not json"}, None, 400, "22P02"),
    ("GET", "/products", {"name": "cs.x"}, None, 400, "42883"),
    ("POST", "/products", None, b"{not json", 400, "PGRST102"),
    ("POST", "/products", None, b"42", 400, "PGRST102"),
    ("POST", "/products", None, b"[1, 2]", 400, "PGRST102"),
    ("POST", "/products", None, {"sku": "x", "name": "x", "sale_price": "abc"}, 400, "22P02"),
    ("POST", "/products", None, {"sku": "x", "name": "x", "sale_price": -1}, 400, "23514"),
    ("POST", "/products", None, {"sku": "x", "name": "x"}, 400, "23502"),
    ("POST", "/products", None, {}, 400, "23502"),  # a row of defaults: sku has none
    (
        "POST",
        "/products",
        None,
        {"sku": "x", "name": "x", "sale_price": 1, "nope": 1},
        400,
        "PGRST204",
    ),
    ("POST", "/products", {"columns": "sku,nope"}, [{"sku": "x"}], 400, "PGRST204"),
    ("POST", "/products", {"on_conflict": "nope"}, {"sku": "x"}, 400, "PGRST204"),
    ("POST", "/products", {"on_conflict": "name"}, "upsert", 400, "42P10"),
    (
        "POST",
        "/products",
        None,
        {"sku": "x", "name": "x", "sale_price": 1, "current_stock": 99},
        403,
        "42501",
    ),
    ("PATCH", "/products", {"sku": "eq.x"}, {"nope": 1}, 400, "PGRST204"),
    ("PATCH", "/products", {"sku": "eq.x"}, [{"name": 1}], 400, "PGRST102"),
    ("PATCH", "/products", {"sku": "eq.x"}, b"{oops", 400, "PGRST102"),
    ("DELETE", "/products", {"nope": "eq.1"}, None, 400, "42703"),
    ("DELETE", "/products", {"sku": "eq.x", "limit": "1"}, None, 400, "PGRST100"),
    ("PATCH", "/products", {"order": "sku"}, {"name": "y"}, 400, "PGRST100"),
    ("POST", "/rpc/nope", None, {}, 404, "PGRST202"),
    ("GET", "/products", {"select": "id"}, "accept-profile", 406, "PGRST106"),
    ("GET", "/products", {"select": "id"}, "accept-xml", 406, "PGRST107"),
]


def _headers(case_body: Any, tenant: Tenant, server: ServerProcess) -> dict[str, str]:
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {tenant.access_token}"}
    if case_body == "accept-profile":
        headers["Accept-Profile"] = "private"
    if case_body == "accept-xml":
        headers["Accept"] = "application/xml"
    if case_body == "upsert":
        headers["Prefer"] = "resolution=merge-duplicates"
    return headers


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status", "code"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[2]} {str(c[3])[:20]}" for c in CASES],
)
def test_bad_input_is_a_postgrest_4xx(
    server: ServerProcess,
    tenant_once: Tenant,
    method: str,
    path: str,
    params: Any,
    body: Any,
    status: int,
    code: str,
) -> None:
    kwargs: dict[str, Any] = {"params": params, "headers": _headers(body, tenant_once, server)}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"]["Content-Type"] = "application/json"
    elif body == "upsert":
        kwargs["json"] = {"sku": "x", "name": "x", "sale_price": 1}
    elif body is not None and not isinstance(body, str):
        kwargs["json"] = body
    res = httpx.request(method, f"{server.url}/rest/v1{path}", **kwargs)
    assert res.status_code == status, res.text
    payload = res.json()
    assert set(payload) == {"code", "message", "details", "hint"}
    assert payload["code"] == code and isinstance(payload["message"], str)


@pytest.fixture(scope="module")
def tenant_once(server: ServerProcess) -> Tenant:
    return sign_up(server)


def test_one_bad_row_writes_nothing(tenant: Tenant, owner_dsn: str, rest: Any) -> None:
    rows = [{"sku": f"B{i}", "name": "fine", "sale_price": 1} for i in range(5)]
    for bad in (
        {"sku": "BAD", "name": "bad", "sale_price": "abc"},  # wrong type
        {"sku": "B0", "name": "dup", "sale_price": 1},  # duplicate key
        {"sku": "BAD", "name": "", "sale_price": 1},
    ):  # check violation
        res = rest(
            "POST",
            "/products",
            token=tenant.access_token,
            json=[*rows, bad],
            headers={"Prefer": "return=representation"},
        )
        assert 400 <= res.status_code < 500, res.text
        assert (
            run_sql(owner_dsn, "select count(*) from public.products", as_user=tenant.id)[0][0] == 0
        )
    duplicate = rest("POST", "/products", token=tenant.access_token, json=[rows[0], rows[0]])
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "23505"


def test_unknown_operator_via_client_and_server_survives(tenant: Tenant) -> None:
    from postgrest import APIError

    with pytest.raises(APIError) as err:
        tenant.client.table("products").select("*").filter("name", "sorta", "x").execute()
    assert err.value.code == "PGRST100"
    assert tenant.client.table("products").select("*").execute().data == []


@pytest.fixture(scope="module")
def capped_server(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A second server with a row cap of 3, to see the cap without 1,000 rows."""
    data: Path = tmp_path_factory.mktemp("capped")
    proc = ServerProcess(
        owner_dsn,
        data,
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator", "PB_REST_MAX_ROWS": "3"},
    )
    proc.start()
    yield proc
    proc.stop()


def test_row_cap_on_reads(capped_server: ServerProcess, owner_dsn: str) -> None:
    tenant = sign_up(capped_server)
    table = tenant.client.table("products")
    table.insert([{"sku": f"C{i}", "name": f"c{i}", "sale_price": 1} for i in range(5)]).execute()
    assert len(tenant.client.table("products").select("id").execute().data) == 3
    assert len(tenant.client.table("products").select("id").limit(10).execute().data) == 3
    assert len(tenant.client.table("products").select("id").limit(2).execute().data) == 2
    counted = tenant.client.table("products").select("id", count="exact").execute()  # type: ignore[arg-type]
    assert counted.count == 5 and len(counted.data) == 3
    # estimated: exact up to the cap; above it, the planner's estimate (as EXPLAIN gives it).
    estimated = tenant.client.table("products").select("id", count="estimated").execute()  # type: ignore[arg-type]
    plan = run_sql(
        owner_dsn, "explain (format json) select 1 from public.products", as_user=tenant.id
    )[0][0]
    assert estimated.count == json.loads(plan)[0]["Plan"]["Plan Rows"]
    below = (
        tenant.client.table("products")
        .select("id", count="estimated")
        .eq(  # type: ignore[arg-type]
            "sku", "C1"
        )
        .execute()
    )
    assert below.count == 1
    # Writes are not capped: all five come back.
    updated = tenant.client.table("products").update({"category": "x"}).neq("sku", "").execute()
    assert len(updated.data) == 5


def test_body_over_the_limit_is_413_and_writes_nothing(
    tenant: Tenant, owner_dsn: str, rest: Any
) -> None:
    row = b'{"sku": "L", "name": "large", "sale_price": 1},'
    body = (
        b"[" + row * (2 * 1024 * 1024 // len(row)) + b'{"sku": "M", "name": "m", "sale_price": 1}]'
    )
    res = rest(
        "POST",
        "/products",
        token=tenant.access_token,
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert res.status_code == 413 and isinstance(res.json()["code"], str)
    assert run_sql(owner_dsn, "select count(*) from public.products", as_user=tenant.id)[0][0] == 0
