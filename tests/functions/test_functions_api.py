"""Functions through the official sync client's `functions.invoke`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from harness import ServerProcess
from supabase_functions.errors import FunctionsHttpError

KL = ZoneInfo("Asia/Kuala_Lumpur")


async def record_sale(pool: asyncpg.Pool, user_id: str) -> dict[str, Any]:
    """A real sale through create_sale, committed as the tenant (the way the server runs it)."""
    claims = json.dumps({"sub": user_id, "role": "authenticated"})
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            claims,
        )
        await conn.execute(
            """update public.business_profiles
               set business_name = 'Kedai Roti Aminah', registration_number = '202301234567',
                   tax_number = 'W10-1808-32000123', phone = '012-3456789',
                   address = '{"line1": "12 Jalan Bunga", "postcode": "50000",
                               "city": "Kuala Lumpur"}'::jsonb,
                   sst_enabled = true, sst_rate = 6, negative_stock_policy = 'allow'""",
        )
        bread = await conn.fetchval(
            "insert into public.products (sku, name, sale_price, cost_price)"
            " values ('ROTI-1', 'Roti Canai Special Dengan Telur Bawang', 1.50, 0.60) returning id"
        )
        kopi = await conn.fetchval(
            "insert into public.products (sku, name, sale_price) values ('KOPI', 'Kopi O', 2.35)"
            " returning id"
        )
        items = [
            {"product_id": str(bread), "quantity": 3, "discount_amount": 0.50},
            {"product_id": str(kopi), "quantity": 1},
        ]
        sale = await conn.fetchval(
            "select public.create_sale($1::jsonb, 'walk-in', null, 0.20, 'cash')::text",
            json.dumps(items),
        )
    return dict(json.loads(sale))


def _invoke(client: Any, name: str, body: Any) -> Any:
    return client.functions.invoke(name, {"body": body, "responseType": "json"})


async def test_receipt_renders_the_sale(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    user = make_user()
    sale = await record_sale(owner_pool, user.id)
    final, rounding = Decimal(str(sale["final_amount"])), Decimal(str(sale["rounding_amount"]))

    narrow = _invoke(user.client, "receipt", {"sale_id": sale["id"]})
    wide = _invoke(user.client, "receipt", {"sale_id": sale["id"], "width": 48})
    assert narrow["width"] == 32 and wide["width"] == 48
    for receipt, width in ((narrow, 32), (wide, 48)):
        lines = receipt["lines"]
        assert receipt["text"] == "\n".join(lines) + "\n"
        assert all(len(line) <= width for line in lines), lines
        assert lines[0].strip() == "Kedai Roti Aminah"
        text = receipt["text"]
        for expected in (
            "12 Jalan Bunga",
            "50000 Kuala Lumpur",
            "Reg. No: 202301234567",
            "SST No: W10-1808-32000123",
            sale["sale_number"],
            "Kopi O",
            "3 x 1.50",
            "-0.50",
            "-0.20",
            "Payment:",
            "Cash",
        ):
            assert expected in text, (expected, text)
        total_line = next(line for line in lines if line.startswith("TOTAL (RM)"))
        assert total_line.endswith(f"{final:.2f}") and len(total_line) == width
        if rounding:
            assert any(line.startswith("Rounding") for line in lines)
    # The sale's time, in the business time zone.
    created = sale["created_at"].replace("Z", "+00:00")
    from datetime import datetime

    local = datetime.fromisoformat(created).astimezone(KL).strftime("%d/%m/%Y %H:%M")
    assert any(line.startswith("Date:") and line.endswith(local) for line in narrow["lines"])
    # The long name wraps at 32 columns but not at 48.
    assert "Roti Canai Special Dengan Telur Bawang" not in narrow["text"]
    assert "Roti Canai Special Dengan Telur Bawang" in wide["text"]


async def test_analytics_is_the_callers_own(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a, b = make_user(), make_user()
    sale = await record_sale(owner_pool, a.id)
    today = date.today()
    span = {
        "start_date": (today - timedelta(days=1)).isoformat(),
        "end_date": (today + timedelta(days=1)).isoformat(),
    }
    mine = _invoke(a.client, "analytics", span)
    assert mine["totals"]["sales_count"] == 1
    assert Decimal(str(mine["totals"]["average_ticket"])) == Decimal(str(sale["final_amount"]))
    assert Decimal(str(mine["totals"]["discounts"])) == Decimal("0.70")  # 0.50 line + 0.20 sale
    theirs = _invoke(b.client, "analytics", span)
    assert theirs["totals"]["sales_count"] == 0
    assert theirs["top_products"]["by_revenue"] == []


async def test_b_cannot_reach_a_sale_through_a_function(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a, b = make_user(), make_user()
    sale = await record_sale(owner_pool, a.id)
    with pytest.raises(FunctionsHttpError) as hidden:
        _invoke(b.client, "receipt", {"sale_id": sale["id"]})
    assert hidden.value.status == 404
    assert _invoke(a.client, "receipt", {"sale_id": sale["id"]})["lines"]


def test_errors_are_json_with_the_right_status(
    server: ServerProcess, make_user: Callable[..., Any], anon_client: Any
) -> None:
    user = make_user()
    cases = [
        ("no-such-function", {}, 404),
        ("receipt", {"sale_id": "not-a-uuid"}, 400),
        ("receipt", {"sale_id": "00000000-0000-0000-0000-000000000000", "width": 40}, 400),
        ("receipt", {"sale_id": "00000000-0000-0000-0000-000000000000"}, 404),
        ("analytics", {"start_date": "2026-13-01", "end_date": "2026-01-31"}, 400),
        ("analytics", {"start_date": "2026-02-01", "end_date": "2026-01-01"}, 400),
        ("receipt", "this is not json", 400),
    ]
    for name, body, status in cases:
        with pytest.raises(FunctionsHttpError) as failed:
            _invoke(user.client, name, body)
        assert failed.value.status == status, (name, body, failed.value.message)
        assert failed.value.message  # the body's "error"
    with pytest.raises(FunctionsHttpError) as anon:
        _invoke(anon_client, "analytics", {"start_date": "2026-01-01", "end_date": "2026-01-02"})
    assert anon.value.status == 401
    # A malformed body gets a clear JSON error, and the server keeps serving.
    raw = httpx.post(
        f"{server.url}/functions/v1/analytics",
        content=b'{"start_date": ',
        headers={
            "apikey": server.anon_key,
            "Authorization": f"Bearer {user.access_token}",
            "content-type": "application/json",
        },
    )
    assert raw.status_code == 400 and "JSON" in raw.json()["error"]
    assert _invoke(user.client, "analytics", {"start_date": "2026-01-01", "end_date": "2026-01-02"})
