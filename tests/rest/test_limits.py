"""Request bounds of the data API (issue 8, A.1 and A.3): deep logic trees and embeds, long
query strings, rows per embedded level and response size — each refused with a PostgREST-shaped
400 while other tenants keep being served."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from harness import ServerProcess
from rest.support import CATALOGUE, Tenant, insert_sale, run_sql, sign_up

from pocketbizz.errors import ApiError
from pocketbizz.rest.query import Logic, parse_logic


def _deep_and(depth: int, condition: str = "sku.eq.1") -> str:
    """An `and=` value whose tree is `depth` levels deep (the outer parentheses are one)."""
    return "(" + "and(" * (depth - 1) + condition + ")" * depth


def test_deep_logic_tree_is_refused() -> None:
    for depth in (17, 5000):
        with pytest.raises(ApiError) as caught:
            parse_logic("and", False, _deep_and(depth), max_depth=16)
        assert caught.value.code == "PGRST100"
        assert caught.value.status == 400
        assert "nested too deeply" in caught.value.message
    # Exactly at the bound the tree parses, 16 levels deep.
    tree = parse_logic("and", False, _deep_and(16), max_depth=16)
    depth = 1
    while tree.children and isinstance(tree.children[0], Logic):
        tree, depth = tree.children[0], depth + 1
    assert depth == 16


def test_deep_filter_gets_400_while_another_tenant_is_served(
    server: ServerProcess, rest: Callable[..., httpx.Response]
) -> None:
    attacker, victim = sign_up(server), sign_up(server)
    victim.client.table("products").insert(
        {"sku": "V-1", "name": "Victim's", "sale_price": "1.00", "is_active": True}
    ).execute()
    deep = _deep_and(3000)

    def attack() -> httpx.Response:
        return rest("GET", "/products", token=attacker.access_token, params={"and": deep})

    def browse() -> httpx.Response:
        return rest("GET", "/products", token=victim.access_token, params={"select": "sku"})

    with ThreadPoolExecutor(12) as pool:
        attacks = [pool.submit(attack) for _ in range(10)]
        reads = [pool.submit(browse) for _ in range(5)]
        for future in attacks:
            res = future.result()
            assert res.status_code == 400, res.text
            body = res.json()
            assert body["code"] == "PGRST100"
            assert "nested too deeply" in body["message"]
            assert set(body) == {"code", "message", "details", "hint"}
        for future in reads:
            res = future.result()
            assert res.status_code == 200, res.text
            assert res.json() == [{"sku": "V-1"}]


def test_filter_at_the_depth_bound_still_answers(
    shop: Tenant, rest: Callable[..., httpx.Response]
) -> None:
    res = rest(
        "GET",
        "/products",
        token=shop.access_token,
        params={"select": "sku", "and": _deep_and(16, "sku.eq.K-01")},
    )
    assert res.status_code == 200, res.text
    assert res.json() == [{"sku": "K-01"}]


def test_deep_embed_is_refused(shop: Tenant, rest: Callable[..., httpx.Response]) -> None:
    select = "id," + "products(id," * 20 + "id" + ")" * 20
    res = rest("GET", "/products", token=shop.access_token, params={"select": select})
    assert res.status_code == 400, res.text
    assert res.json()["code"] == "PGRST100"
    assert "nested too deeply" in res.json()["message"]


def test_long_in_list_fits_the_query_bound(
    server: ServerProcess, shop: Tenant, rest: Callable[..., httpx.Response]
) -> None:
    """A client sending 1,000 ids in one `in.(…)` (37 kB) is within the bound."""
    ids = [str(uuid.uuid4()) for _ in range(999)]
    wanted = run_sql(
        server.owner_dsn,
        "select id::text from public.products where business_owner_id = $1 and sku = 'K-01'",
        uuid.UUID(shop.id),
    )[0]["id"]
    res = rest(
        "GET",
        "/products",
        token=shop.access_token,
        params={"select": "sku", "id": f"in.({','.join([*ids, wanted])})"},
    )
    assert res.status_code == 200, res.text
    assert res.json() == [{"sku": "K-01"}]


@pytest.fixture(scope="module")
def tight(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with small bounds, so the caps show on a few rows."""
    proc = ServerProcess(
        owner_dsn,
        Path(tmp_path_factory.mktemp("tight")),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_REST_MAX_ROWS": "3",
            "PB_REST_MAX_RESPONSE_BYTES": "4000",
            "PB_REST_MAX_QUERY_BYTES": "2048",
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def sold(tight: ServerProcess) -> tuple[Tenant, str]:
    """A tenant with the catalogue and one sale of five lines."""
    tenant = sign_up(tight)
    catalogue = [{"is_active": True, **row} for row in CATALOGUE[:5]]
    rows = tenant.client.table("products").insert(catalogue).execute().data
    sale = insert_sale(tight.owner_dsn, tenant.id, [(p, Decimal(1)) for p in rows])
    return tenant, sale


def _get(server: ServerProcess, tenant: Tenant, path: str, **params: str) -> httpx.Response:
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {tenant.access_token}"}
    return httpx.get(f"{server.url}/rest/v1{path}", headers=headers, params=params)


def test_rows_are_capped_at_every_embedded_level(
    tight: ServerProcess, sold: tuple[Tenant, str]
) -> None:
    tenant, sale = sold
    in_db = run_sql(
        tight.owner_dsn,
        "select count(*) from public.sale_items where sale_id = $1",
        uuid.UUID(sale),
    )[0][0]
    assert in_db == 5
    res = _get(tight, tenant, "/sales", select="id,sale_items(line_no)", id=f"eq.{sale}")
    assert res.status_code == 200, res.text
    [row] = res.json()
    assert len(row["sale_items"]) == 3
    # A smaller limit of the level's own still applies; a larger one is capped.
    res = _get(
        tight, tenant, "/sales", select="id,sale_items(line_no)", **{"sale_items.limit": "2"}
    )
    assert [len(r["sale_items"]) for r in res.json()] == [2]
    res = _get(
        tight, tenant, "/sales", select="id,sale_items(line_no)", **{"sale_items.limit": "50"}
    )
    assert [len(r["sale_items"]) for r in res.json()] == [3]


def test_response_over_the_size_bound_is_refused(
    tight: ServerProcess, sold: tuple[Tenant, str]
) -> None:
    tenant, _ = sold
    small = _get(tight, tenant, "/products", select="sku", order="sku")
    assert small.status_code == 200, small.text
    big = _get(tight, tenant, "/sale_items", select="*,products(*,sale_items(*,sales(*)))")
    assert big.status_code == 400, big.text
    body = big.json()
    assert body["code"] == "54000"
    assert body["message"] == "The response is too large"
    assert "at most 4000" in body["details"]
    # The same bound holds for a write that returns its rows.
    res = httpx.post(
        f"{tight.url}/rest/v1/products",
        headers={
            "apikey": tight.anon_key,
            "Authorization": f"Bearer {tenant.access_token}",
            "Prefer": "return=representation",
        },
        params={"select": "*,sale_items(*,sales(*))"},
        json=[
            {
                "sku": f"B-{i}",
                "name": "Big",
                "description": "x" * 1500,
                "sale_price": "1.00",
                "is_active": True,
            }
            for i in range(3)
        ],
    )
    assert res.status_code == 400, res.text
    assert res.json()["code"] == "54000"
    left = run_sql(
        tight.owner_dsn,
        "select count(*) from public.products where business_owner_id = $1 and sku like 'B-%'",
        uuid.UUID(tenant.id),
    )[0][0]
    assert left == 0  # refused inside the transaction: nothing written


def test_overlong_query_string_is_refused(tight: ServerProcess, sold: tuple[Tenant, str]) -> None:
    tenant, _ = sold
    fits = _get(tight, tenant, "/products", select="sku", description="eq." + "x" * 1900)
    assert fits.status_code == 200, fits.text
    res = _get(tight, tenant, "/products", select="sku", description="eq." + "x" * 2100)
    assert res.status_code == 400, res.text
    body = res.json()
    assert body["code"] == "PGRST100"
    assert body["message"] == "The query string is too long"
    assert "at most 2048" in body["details"]


def test_large_csv_matches_the_json_rows(
    server: ServerProcess, rest: Callable[..., httpx.Response]
) -> None:
    """A CSV export above 64 kB is rendered off the event loop; same rows as the JSON."""
    tenant = sign_up(server)
    rows = [
        {"sku": f"L-{i:04d}", "name": f"Item {i}", "sale_price": "1.00", "is_active": False}
        | {"description": f"line {i}, " + "d" * 300}
        for i in range(300)
    ]
    tenant.client.table("products").insert(rows).execute()
    params = {"select": "sku,name,description", "order": "sku"}
    as_json = rest("GET", "/products", token=tenant.access_token, params=params)
    assert len(as_json.content) > 64 * 1024
    as_csv = rest(
        "GET",
        "/products",
        token=tenant.access_token,
        params=params,
        headers={"Accept": "text/csv"},
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert parsed == as_json.json()
