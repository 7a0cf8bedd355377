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
