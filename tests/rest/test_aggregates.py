"""Aggregate functions in `select` (issue 14 C), behind `PB_REST_AGGREGATES_ENABLED` as
PostgREST's `db-aggregates-enabled`: `count()`, `col.sum()` / `avg` / `min` / `max` /
`count`, aliases and casts, GROUP BY the other fields, inside embeds — each answer compared
with the SQL PostgreSQL runs for the same tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from rest.support import CATALOGUE, Tenant, insert_sale, run_sql, sign_up


@pytest.fixture(scope="module")
def agg_server(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        Path(tmp_path_factory.mktemp("aggregates")),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_REST_AGGREGATES_ENABLED": "true",
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def shop(agg_server: ServerProcess) -> dict[str, Any]:
    tenant = sign_up(agg_server)
    rows = [{"is_active": True, **row} for row in CATALOGUE]
    products = tenant.client.table("products").insert(rows).execute().data
    by_sku = {p["sku"]: p for p in products}
    first = insert_sale(
        agg_server.owner_dsn,
        tenant.id,
        [(by_sku["K-01"], Decimal(2)), (by_sku["N-01"], Decimal("1.5"))],
    )
    second = insert_sale(agg_server.owner_dsn, tenant.id, [(by_sku["T-01"], Decimal(3))])
    return {"tenant": tenant, "sales": [first, second]}


@pytest.fixture(scope="module")
def get(agg_server: ServerProcess, shop: dict[str, Any]) -> Callable[..., httpx.Response]:
    tenant: Tenant = shop["tenant"]

    def call(path: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        auth = {"apikey": agg_server.anon_key, "Authorization": f"Bearer {tenant.access_token}"}
        return httpx.get(
            f"{agg_server.url}/rest/v1{path}", headers={**auth, **(headers or {})}, params=params
        )

    return call


def _sql(server: ServerProcess, shop: dict[str, Any], sql: str, *args: Any) -> list[dict[str, Any]]:
    rows = run_sql(server.owner_dsn, sql, *args, as_user=shop["tenant"].id)
    return [dict(r) for r in rows]


def _numbers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON numbers as Decimal, to compare with what asyncpg returns for numeric."""
    return [
        {k: Decimal(str(v)) if isinstance(v, (int, float)) else v for k, v in r.items()}
        for r in rows
    ]


def test_count_of_all_rows(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    [expected] = _sql(agg_server, shop, "select count(*) as count from public.products")
    res = get("/products", select="count()")
    assert res.status_code == 200, res.text
    assert res.json() == [expected]
    assert get("/products", select="n:count()::text").json() == [{"n": str(expected["count"])}]


def test_group_by_the_other_fields(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    expected = _sql(
        agg_server,
        shop,
        "select category, sum(sale_price) as total, max(sale_price) as max, "
        "avg(reorder_level) as avg, count(*) as n from public.products "
        "group by category order by category nulls first",
    )
    res = get(
        "/products",
        select="category,total:sale_price.sum(),sale_price.max(),reorder_level.avg(),n:count()",
        order="category.nullsfirst",
        headers={"Prefer": "count=exact"},
    )
    assert res.status_code == 200, res.text
    assert _numbers(res.json()) == _numbers(expected)
    assert res.headers["content-range"] == f"0-{len(expected) - 1}/{len(expected)}"


def test_casts_before_and_after_the_aggregate(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    [expected] = _sql(
        agg_server,
        shop,
        "select sum(sale_price::int)::text as s, min(name) as min from public.products "
        "where is_active",
    )
    res = get("/products", select="s:sale_price::int.sum()::text,name.min()", is_active="is.true")
    assert res.status_code == 200, res.text
    assert res.json() == [expected]


def test_aggregates_inside_an_embed(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    expected = _sql(
        agg_server,
        shop,
        "select s.id::text as id, sum(i.quantity) as sum, count(i.*) as count "
        "from public.sales s left join public.sale_items i "
        "on i.business_owner_id = s.business_owner_id and i.sale_id = s.id "
        "group by s.id order by s.id",
    )
    res = get("/sales", select="id,sale_items(quantity.sum(),count())", order="id")
    assert res.status_code == 200, res.text
    got = [(r["id"], _numbers(r["sale_items"])) for r in res.json()]
    assert got == [(e["id"], _numbers([{"sum": e["sum"], "count": e["count"]}])) for e in expected]


def test_grouping_keeps_a_to_one_embed(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    expected = _sql(
        agg_server,
        shop,
        "select i.product_id::text as product_id, sum(i.subtotal) as total, p.sku "
        "from public.sale_items i join public.products p "
        "on p.business_owner_id = i.business_owner_id and p.id = i.product_id "
        "group by i.product_id, p.sku order by p.sku",
    )
    res = get(
        "/sale_items",
        select="product_id,total:subtotal.sum(),products(sku)",
    )
    assert res.status_code == 200, res.text
    got = sorted(
        (
            {"product_id": r["product_id"], "total": r["total"], "sku": r["products"]["sku"]}
            for r in res.json()
        ),
        key=lambda r: r["sku"],
    )
    assert _numbers(got) == _numbers(expected)


def test_star_with_an_aggregate_is_refused(get: Callable[..., httpx.Response]) -> None:
    res = get("/products", select="*,sale_price.sum()")
    assert res.status_code == 400 and res.json()["code"] == "PGRST100"


def test_aggregates_are_off_by_default(server: ServerProcess) -> None:
    tenant = sign_up(server)
    res = httpx.get(
        f"{server.url}/rest/v1/products",
        headers={"apikey": server.anon_key, "Authorization": f"Bearer {tenant.access_token}"},
        params={"select": "sale_price.sum()"},
    )
    assert res.status_code == 400
    assert res.json() == {
        "code": "PGRST123",
        "details": None,
        "hint": None,
        "message": "Use of aggregate functions is not allowed",
    }


def test_spread_columns_group_the_top_level(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    """PostgREST: a spread's columns are grouping columns of the top level."""
    expected = _sql(
        agg_server,
        shop,
        "select sum(i.quantity) as sum, p.category from public.sale_items i "
        "left join public.products p "
        "on p.business_owner_id = i.business_owner_id and p.id = i.product_id "
        "group by p.category order by p.category",
    )
    res = get("/sale_items", select="quantity.sum(),...products(category)")
    assert res.status_code == 200, res.text
    got = sorted(res.json(), key=lambda r: r["category"])
    assert _numbers(got) == _numbers(expected)


def test_aggregates_of_spread_columns_apply_at_the_top_level(
    agg_server: ServerProcess, shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    """PostgREST: aggregates in a spread are computed in the top level's context."""
    expected = _sql(
        agg_server,
        shop,
        "select i.sale_id::text as sale_id, max(p.sale_price) as max, "
        "min(p.sku) as first_sku, count(p.*) as count "
        "from public.sale_items i left join public.products p "
        "on p.business_owner_id = i.business_owner_id and p.id = i.product_id "
        "group by i.sale_id order by i.sale_id",
    )
    assert len(expected) == 2
    res = get(
        "/sale_items",
        select="sale_id,...products(sale_price.max(),first_sku:sku.min(),count())",
        order="sale_id",
    )
    assert res.status_code == 200, res.text
    assert _numbers(res.json()) == _numbers(expected)


def test_spread_star_with_an_aggregate_is_refused(get: Callable[..., httpx.Response]) -> None:
    res = get("/sale_items", select="quantity.sum(),...products(*)")
    assert res.status_code == 400 and res.json()["code"] == "PGRST100"
