"""The seed's ProductRepository, ported line for line from its Dart to the official Python
client: list ordered by name, get one, create, update, delete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest.support import Tenant
from supabase import Client


class ProductRepository:
    """`ProductRepositoryImpl` from the seed, with the four methods it elides written the
    same way."""

    def __init__(self, supabase: Client) -> None:
        self._supabase = supabase

    def get_products(self) -> list[dict[str, Any]]:
        data = self._supabase.from_("products").select().order("name").execute().data
        return list(data)

    def get_product(self, id: str) -> dict[str, Any]:
        data = self._supabase.from_("products").select().eq("id", id).single().execute().data
        return dict(data)

    def create_product(self, product: dict[str, Any]) -> dict[str, Any]:
        data = self._supabase.from_("products").insert(product).select().single().execute().data
        return dict(data)

    def update_product(self, id: str, product: dict[str, Any]) -> None:
        self._supabase.from_("products").update(product).eq("id", id).execute()

    def delete_product(self, id: str) -> None:
        self._supabase.from_("products").delete().eq("id", id).execute()


def test_product_repository_round_trip(tenant: Tenant) -> None:
    repo = ProductRepository(tenant.client)
    assert repo.get_products() == []

    teh = repo.create_product({"sku": "T1", "name": "Teh Tarik", "sale_price": "3.50"})
    kopi = repo.create_product(
        {
            "sku": "K1",
            "name": "Kopi O",
            "sale_price": 2.5,
            "cost_price": "0.80",
            "category": "drinks",
        }
    )
    assert teh["business_owner_id"] == tenant.id
    assert teh["unit"] == "pcs" and teh["current_stock"] == 0  # column defaults applied
    assert Decimal(str(kopi["cost_price"])) == Decimal("0.80")

    assert [p["name"] for p in repo.get_products()] == ["Kopi O", "Teh Tarik"]

    one = repo.get_product(kopi["id"])
    assert one["id"] == kopi["id"] and one["category"] == "drinks"

    repo.update_product(kopi["id"], {"name": "Kopi Susu", "sale_price": "3.20"})
    updated = repo.get_product(kopi["id"])
    assert updated["name"] == "Kopi Susu"
    assert Decimal(str(updated["sale_price"])) == Decimal("3.20")
    assert updated["updated_at"] >= kopi["updated_at"]

    repo.delete_product(teh["id"])
    assert [p["id"] for p in repo.get_products()] == [kopi["id"]]
