"""Business settings a client may edit are validated: a bad one must not break selling."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from postgrest.exceptions import APIError


def test_unknown_time_zone_is_refused_and_sales_keep_working(
    make_user: Callable[..., object],
) -> None:
    user = make_user()
    profiles = user.client.table("business_profiles")  # type: ignore[attr-defined]
    with pytest.raises(APIError) as info:
        profiles.update({"timezone": "Asia/KL"}).eq("business_owner_id", user.id).execute()  # type: ignore[attr-defined]
    assert info.value.code == "23514"
    ok = profiles.update({"timezone": "Asia/Kuching"}).eq("business_owner_id", user.id).execute()  # type: ignore[attr-defined]
    assert ok.data[0]["timezone"] == "Asia/Kuching"
    product = (
        user.client.table("products")
        .insert(  # type: ignore[attr-defined]
            {"sku": "TZ-1", "name": "Kek lapis", "sale_price": "12.00"}
        )
        .execute()
        .data[0]
    )
    user.client.rpc(
        "record_purchase",
        {
            "product_id": product["id"],
            "quantity": 5,  # type: ignore[attr-defined]
            "unit_cost": "6.00",
        },
    ).execute()
    sale = user.client.rpc(
        "create_sale", {"items": [{"product_id": product["id"], "quantity": 1}]}
    ).execute()  # type: ignore[attr-defined]
    assert Decimal(str(sale.data["final_amount"])) == Decimal("12.00")
    assert sale.data["sale_number"].startswith("INV-")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("INV-{MM}-{SEQ}", "month_needs_year"),  # the same numbers again a year later
        ("INV-{YYYY}", "one_seq"),
        ("INV-{SEQ}-{SEQ}", "one_seq"),
        ("INV-{DD}-{SEQ}", "known_tokens"),
        ("INV-{seq}", "known_tokens"),
        ("INV-{SEQ", "known_tokens"),
        ("INV-{YYYY}-{SEQ}}", "known_tokens"),
        ("", "max_40_characters"),
        ("INV-" + "X" * 32 + "{SEQ}", "max_40_characters"),
    ],
)
def test_sale_number_format_is_validated_fully(
    make_user: Callable[..., object], value: str, rule: str
) -> None:
    user = make_user()
    profiles = user.client.table("business_profiles")  # type: ignore[attr-defined]
    with pytest.raises(APIError) as info:
        profiles.update({"sale_number_format": value}).eq("business_owner_id", user.id).execute()  # type: ignore[attr-defined]
    assert info.value.code == "23514"
    assert f'"business_profiles_sale_number_format_{rule}"' in str(info.value.message)


def test_valid_sale_number_formats_are_kept(make_user: Callable[..., object]) -> None:
    user = make_user()
    profiles = user.client.table("business_profiles")  # type: ignore[attr-defined]
    for value in ("KB{YY}{MM}-{SEQ}", "{SEQ}", "S{YYYY}{MM}{SEQ}", "{MM}/{YYYY}/{SEQ}"):
        done = (
            profiles.update({"sale_number_format": value})
            .eq("business_owner_id", user.id)
            .execute()
        )  # type: ignore[attr-defined]
        assert done.data[0]["sale_number_format"] == value
