"""Binding filters compare with the column's type, as PostgreSQL would."""

from __future__ import annotations

from typing import Any

import pytest

from pocketbizz.realtime.filters import FilterError, parse_filter

COLUMNS = {
    "id": "uuid",
    "sku": "text",
    "sale_price": "numeric",
    "quantity": "int4",
    "is_active": "bool",
    "created_at": "timestamptz",
    "images": "jsonb",
}
ROW: dict[str, Any] = {
    "id": "0a1b2c3d-0000-4000-8000-00000000abcd",
    "sku": "KOPI-1",
    "sale_price": 100,
    "quantity": 3,
    "is_active": True,
    "created_at": "2026-11-25T12:00:00.5+00:00",
    "category": None,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sale_price=gt.10.01", True),  # as numbers: 100 > 10.01 (as text it would not be)
        ("sale_price=lt.99.99", False),
        ("sale_price=gte.100.00", True),
        ("sale_price=lte.99", False),
        ("sale_price=eq.100.0", True),
        ("sale_price=neq.100", False),
        ("quantity=in.(1,2,3)", True),
        ("quantity=in.(4,5)", False),
        ("sku=eq.KOPI-1", True),
        ("sku=neq.KOPI-1", False),
        ('sku=in.("KOPI-1",TEH)', True),
        ("sku=lt.KOPI-2", True),
        ("id=eq.0A1B2C3D-0000-4000-8000-00000000ABCD", True),  # uuids ignore case
        ("is_active=eq.true", True),
        ("is_active=eq.false", False),
        ("created_at=gt.2026-11-25T19:59:59+08:00", True),  # instants, not strings
        ("created_at=lt.2026-11-25T12:00:01Z", True),
        ("sale_price=gt.1,is_active=eq.true,sku=eq.KOPI-1", True),  # commas mean AND
        ("sale_price=gt.1,is_active=eq.false", False),
    ],
)
def test_conditions_compare_typed_values(text: str, expected: bool) -> None:
    assert parse_filter(text, COLUMNS).matches(ROW) is expected


def test_null_matches_nothing() -> None:
    columns = {**COLUMNS, "category": "text"}
    for op in ("eq", "neq", "lt", "gt"):
        assert not parse_filter(f"category={op}.snack", columns).matches(ROW)


@pytest.mark.parametrize(
    "text",
    [
        "sale_price",
        "sale_price=gt",
        "=eq.1",
        "nope=eq.1",
        "sale_price=like.1%",
        "sale_price=eq.abc",
        "quantity=in.1,2",
        "images=eq.[]",
        "created_at=gt.yesterday",
        ",".join(["quantity=gt.1"] * 17),
    ],
)
def test_bad_filters_are_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text, COLUMNS)


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN"])
@pytest.mark.parametrize("op", ["eq", "lt", "gte", "in"])
def test_non_finite_numbers_are_refused_at_join(value: str, op: str) -> None:
    # Refused up front: a NaN reaching the fan-out would raise there (Decimal comparisons
    # signal), dropping the change for every channel of the tenant.
    text = f"sale_price={op}.({value})" if op == "in" else f"sale_price={op}.{value}"
    with pytest.raises(FilterError, match="numeric"):
        parse_filter(text, COLUMNS)


def test_a_row_holding_nan_matches_nothing_and_raises_nothing() -> None:
    # PostgreSQL's numeric has a NaN; such a row value simply does not match.
    row = {**ROW, "sale_price": "NaN"}
    for op in ("eq", "neq", "lt", "gt"):
        assert not parse_filter(f"sale_price={op}.1", COLUMNS).matches(row)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # timestamptz: a filter without an offset is UTC, as '…'::timestamptz reads it here.
        ("created_at=eq.2026-11-25T12:00:00.5", True),
        ("created_at=lt.2026-11-25T12:00:01", True),
        ("created_at=gt.2026-11-25 12:00:01", False),
        # timestamp: any offset is ignored, as '…+08:00'::timestamp does.
        ("opened_at=eq.2026-11-25T08:30:00+08:00", True),
        ("opened_at=eq.2026-11-25T08:30:00", True),
        ("opened_at=gt.2026-11-25T08:00:00Z", True),
    ],
)
def test_timestamps_compare_as_postgresql_casts_them(text: str, expected: bool) -> None:
    columns = {**COLUMNS, "opened_at": "timestamp"}
    row = {**ROW, "opened_at": "2026-11-25T08:30:00"}
    assert parse_filter(text, columns).matches(row) is expected


async def test_the_casts_agree_with_postgresql(owner_pool: Any) -> None:
    # The oracle for the rules above: the casts PostgreSQL itself makes (session zone UTC).
    async with owner_pool.acquire() as conn, conn.transaction():
        await conn.execute("set local time zone 'UTC'")
        same = await conn.fetchval(
            "select '2026-11-25T12:00:00.5+00:00'::timestamptz = '2026-11-25T12:00:00.5'::timestamptz"
            " and '2026-11-25T08:30:00'::timestamp = '2026-11-25T08:30:00+08:00'::timestamp"
        )
    assert same is True
    columns = {**COLUMNS, "opened_at": "timestamp"}
    row = {**ROW, "opened_at": "2026-11-25T08:30:00"}
    assert parse_filter("created_at=eq.2026-11-25T12:00:00.5", columns).matches(row)
    assert parse_filter("opened_at=eq.2026-11-25T08:30:00+08:00", columns).matches(row)
