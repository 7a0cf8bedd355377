"""Reads of one shape share one built statement (`id=eq.1` and `id=eq.2` differ only in a bind
parameter): each request still gets its own rows, and its own error."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from rest.support import CATALOGUE, Tenant

from pocketbizz.rest.query import parse_query, query_shape


def test_shape_takes_out_plain_comparison_values_only() -> None:
    params = [
        ("select", "id,name"),
        ("id", "eq.7"),
        ("sale_price", "gte.2.50"),
        ("name", "like.Kopi*"),
        ("sku", "not.eq.K-01"),
        ("category", "in.(drinks,food)"),
        ("or", "(sku.eq.K-01,sku.eq.K-02)"),
        ("items.qty", "gt.1"),
        ("limit", "5"),
        ("apikey", "a-key"),
    ]
    shape = query_shape(params)
    assert shape.values == ("7", "2.50")
    assert shape.pairs == (
        ("select", "id,name"),
        ("id", "eq."),
        ("sale_price", "gte."),
        ("name", "like.Kopi*"),
        ("sku", "not.eq.K-01"),
        ("category", "in.(drinks,food)"),
        ("or", "(sku.eq.K-01,sku.eq.K-02)"),
        ("items.qty", "gt.1"),
        ("limit", "5"),
    )
    assert query_shape([("id", "eq.8")]).pairs == query_shape([("id", "eq.7")]).pairs
    # Putting the values back gives the query the request asked for.
    refilled = shape.with_values(shape.values)
    without_key = [p for p in params if p[0] != "apikey"]
    assert refilled == without_key
    assert parse_query(refilled) == parse_query(params)


@pytest.mark.parametrize("op", ["eq", "neq", "gt", "gte", "lt", "lte"])
def test_one_shape_many_values_each_gets_its_rows(
    shop: Tenant, rest: Callable[..., httpx.Response], op: str
) -> None:
    compare = {
        "eq": lambda a, b: a == b,
        "neq": lambda a, b: a != b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[op]
    for price in ("1.20", "3.00", "6.50", "100"):
        res = rest(
            "GET",
            "/products",
            token=shop.access_token,
            params={"select": "sku", "sale_price": f"{op}.{price}", "order": "sku"},
        )
        assert res.status_code == 200, res.text
        expected = sorted(
            row["sku"]
            for row in CATALOGUE
            if compare(Decimal(str(row["sale_price"])), Decimal(price))
        )
        assert [row["sku"] for row in res.json()] == expected, (op, price)


def test_values_with_syntax_characters_are_values(
    shop: Tenant, rest: Callable[..., httpx.Response]
) -> None:
    # Commas, parentheses, dots and quotes mean something elsewhere in PostgREST's syntax;
    # in a plain comparison they are the value.
    for value in ("hot, black", "with sambal", "a.b(c)", "it's", '"quoted"', ""):
        res = rest(
            "GET",
            "/products",
            token=shop.access_token,
            params={"select": "sku", "description": f"eq.{value}"},
        )
        assert res.status_code == 200, res.text
        expected = [row["sku"] for row in CATALOGUE if row.get("description") == value]
        assert sorted(row["sku"] for row in res.json()) == sorted(expected), value


def test_each_request_gets_its_own_error(shop: Tenant, rest: Callable[..., httpx.Response]) -> None:
    ok = rest("GET", "/products", token=shop.access_token, params={"sale_price": "eq.3.00"})
    assert ok.status_code == 200 and len(ok.json()) == 2
    bad = rest("GET", "/products", token=shop.access_token, params={"sale_price": "eq.abc"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "22P02"
    assert "abc" in bad.json()["message"]
    missing = rest("GET", "/products", token=shop.access_token, params={"nope": "eq.1"})
    assert missing.status_code == 400 and missing.json()["code"] == "42703"
    # …and the shape still serves good values after the bad one.
    again = rest("GET", "/products", token=shop.access_token, params={"sale_price": "eq.6.50"})
    assert [row["sku"] for row in again.json()] == ["N-01"]
