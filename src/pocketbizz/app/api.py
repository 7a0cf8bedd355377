"""The app's only way to the server: the official `supabase` client (async), over HTTP.

One `Backend` per app session (a browser tab or a device). Every call is a plain Supabase
call — table reads under RLS, and the sales/stock SQL functions through RPC — so the app is
also a running check of the wire contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from postgrest.types import CountMethod
from realtime import RealtimePostgresChangesListenEvent
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase.types import RealtimeClientOptions

from pocketbizz.app.config import AppConfig
from pocketbizz.app.money import to_money


class ApiFailure(Exception):
    """A refused or failed call, with the server's message for the user."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Offline(ApiFailure):
    """The API could not be reached at all (no network, server down): nothing was recorded."""


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    sku: str
    sale_price: Decimal
    cost_price: Decimal
    current_stock: Decimal
    reorder_level: Decimal
    category: str | None
    barcode: str | None

    @property
    def low_stock(self) -> bool:
        return self.current_stock <= self.reorder_level

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Product:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            sku=str(row["sku"]),
            sale_price=to_money(row["sale_price"]),
            cost_price=to_money(row["cost_price"]),
            current_stock=Decimal(str(row["current_stock"])),
            reorder_level=Decimal(str(row["reorder_level"])),
            category=row.get("category"),
            barcode=row.get("barcode"),
        )


def _message(exc: Exception) -> str:
    # postgrest's APIError carries the server's JSON message; auth errors carry `message`.
    return str(getattr(exc, "message", None) or exc)


class Backend:
    """A signed-in (or signing-in) user's view of the API."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.user_id: str | None = None
        self.watching = False
        self._watched: tuple[tuple[str, ...], Callable[[str], None]] | None = None

    @classmethod
    async def connect(cls, config: AppConfig) -> Backend:
        options = AsyncClientOptions(
            postgrest_client_timeout=15,
            function_client_timeout=15,
            # A shop's server may be down for minutes (a restart, the Wi-Fi): keep trying to
            # reconnect the live feed (backoff doubles up to a minute) instead of giving up
            # after the default 5 tries.
            realtime=RealtimeClientOptions(max_retries=1_000_000, initial_backoff=1.0),
        )
        return cls(await acreate_client(config.backend_url, config.anon_key, options=options))

    async def _call(self, request: Any) -> Any:
        try:
            response = await request.execute()
        except httpx.TransportError as exc:
            raise Offline(f"the server cannot be reached ({type(exc).__name__})") from exc
        except Exception as exc:  # the client raises several types; the user needs the message
            raise ApiFailure(_message(exc), getattr(exc, "code", None)) from exc
        return response.data

    # -- accounts ------------------------------------------------------------------------
    async def sign_in(self, email: str, password: str) -> None:
        try:
            res = await self.client.auth.sign_in_with_password(
                {"email": email, "password": password}
            )
        except httpx.TransportError as exc:
            raise Offline("the server cannot be reached") from exc
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc
        self.user_id = res.user.id if res.user else None

    async def sign_up(self, email: str, password: str) -> None:
        try:
            res = await self.client.auth.sign_up({"email": email, "password": password})
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc
        if res.session is None:
            raise ApiFailure("the account needs confirming before it can sign in")
        self.user_id = res.user.id if res.user else None

    async def sign_out(self) -> None:
        try:
            await self.client.remove_all_channels()
            await self.client.auth.sign_out()
        finally:
            self.user_id = None
            self.watching = False

    # -- live updates --------------------------------------------------------------------
    async def keep_watching(self) -> None:
        """Subscribe again when the realtime socket is gone for good (the client's own
        reconnection gives up after a few tries, e.g. through a long server outage)."""
        if not self.watching or self._watched is None or self.client.realtime.is_connected:
            return
        self.watching = False
        with suppress(Exception):
            await self.client.remove_all_channels()
        await self.watch(*self._watched)

    async def watch(self, tables: tuple[str, ...], on_change: Callable[[str], None]) -> None:
        """Realtime changes to the signed-in tenant's rows of `tables` (the server delivers only
        rows the user may read). The client reconnects by itself after a network drop."""
        if self.watching:
            return
        self._watched = (tables, on_change)
        channel = self.client.channel("pocketbizz-app")
        for table in tables:

            def changed(payload: Any, table: str = table) -> None:
                on_change(table)

            channel.on_postgres_changes(
                RealtimePostgresChangesListenEvent.All, changed, table=table, schema="public"
            )
        try:
            await channel.subscribe()
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc
        self.watching = True

    # -- business ------------------------------------------------------------------------
    async def business_profile(self) -> dict[str, Any]:
        rows = await self._call(self.client.table("business_profiles").select("*").limit(1))
        if not rows:
            raise ApiFailure("business profile not found")
        return dict(rows[0])

    async def update_business(self, profile_id: str, changes: dict[str, Any]) -> None:
        await self._call(
            self.client.table("business_profiles").update(changes).eq("id", profile_id)
        )

    # -- products ------------------------------------------------------------------------
    async def product_rows(self) -> list[dict[str, Any]]:
        rows = await self._call(
            self.client.table("products").select("*").eq("is_active", True).order("name")
        )
        return [dict(r) for r in rows]

    async def add_product(self, fields: dict[str, Any], opening_stock: Decimal) -> Product:
        """A new product (`fields` are product columns), then its opening stock."""
        rows = await self._call(self.client.table("products").insert(fields))
        product = Product.from_row(rows[0])
        if opening_stock > 0:
            # Stock is a ledger: the opening level is a counted adjustment, never a write.
            await self.adjust_stock(product.id, opening_stock, "opening stock")
        return product

    async def update_product(self, product_id: str, changes: dict[str, Any]) -> None:
        await self._call(self.client.table("products").update(changes).eq("id", product_id))

    async def adjust_stock(self, product_id: str, counted: Decimal, reason: str) -> None:
        await self._call(
            self.client.rpc(
                "adjust_stock",
                {"product_id": product_id, "counted_quantity": str(counted), "reason": reason},
            )
        )

    async def record_purchase(self, product_id: str, quantity: Decimal, unit_cost: Decimal) -> None:
        await self._call(
            self.client.rpc(
                "record_purchase",
                {"product_id": product_id, "quantity": str(quantity), "unit_cost": str(unit_cost)},
            )
        )

    async def movements(self, product_id: str) -> list[dict[str, Any]]:
        rows = await self._call(
            self.client.table("stock_movements")
            .select("reference_type,movement_type,quantity,reason,created_at")
            .eq("product_id", product_id)
            .order("created_at", desc=True)
            .limit(50)
        )
        return list(rows)

    # -- customers -----------------------------------------------------------------------
    async def customers(self) -> list[dict[str, Any]]:
        return list(
            await self._call(self.client.table("customers").select("*").order("name").limit(500))
        )

    async def add_customer(self, name: str, phone: str | None) -> None:
        await self._call(self.client.table("customers").insert({"name": name, "phone": phone}))

    # -- sales ---------------------------------------------------------------------------
    async def create_sale(
        self,
        items: list[dict[str, Any]],
        *,
        payment_method: str,
        client_ref: str,
        sold_at: str,
        channel: str = "walk-in",
        discount: str = "0",
        customer_id: str | None = None,
    ) -> dict[str, Any]:
        """One sale, recorded once per `client_ref` (a repeat returns the first result).
        `sold_at` is when the sale was made on the device (ISO 8601 with its offset): the
        server dates the sale by it, so one made offline lands on its day. Every attempt must
        send the same value, since it is part of the body the server checks `client_ref`
        against."""
        args: dict[str, Any] = {
            "items": items,
            "payment_method": payment_method,
            "channel": channel,
            "client_ref": client_ref,
            "discount_amount": discount,
            "customer_id": customer_id,
            "sold_at": sold_at,
        }
        return dict(await self._call(self.client.rpc("create_sale", args)))

    async def void_sale(self, sale_id: str, reason: str) -> dict[str, Any]:
        return dict(
            await self._call(self.client.rpc("void_sale", {"sale_id": sale_id, "reason": reason}))
        )

    async def sales(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._call(
            self.client.table("sales")
            .select(
                "id,sale_number,status,channel,payment_method,final_amount,created_at,"
                "void_reason,sale_items(product_name,quantity,subtotal)"
            )
            .order("created_at", desc=True)
            .limit(limit)
        )
        return list(rows)

    async def subscription(self) -> dict[str, Any]:
        """The plan, its limits and what is used of them this month."""
        users = await self._call(
            self.client.table("users").select("subscription_plan, subscription_expires_at")
        )
        plan_code = str(users[0]["subscription_plan"]) if users else "free"
        plans = await self._call(self.client.table("plans").select("*").eq("code", plan_code))
        products = (
            await self.client.table("products")
            .select("id", count=CountMethod.exact, head=True)
            .eq("is_active", True)
            .execute()
        )
        month_start = date.today().replace(day=1).isoformat()
        sales = (
            await self.client.table("sales")
            .select("id", count=CountMethod.exact, head=True)
            .gte("created_at", month_start)
            .execute()
        )
        plan = dict(plans[0]) if plans else {"code": plan_code, "name": plan_code}
        return {
            "plan": plan,
            "expires_at": users[0]["subscription_expires_at"] if users else None,
            "active_products": products.count or 0,
            "sales_this_month": sales.count or 0,
        }

    async def receipt_lines(self, sale_id: str, columns: int) -> list[str]:
        """The sale's receipt laid out by the backend's `receipt` function."""
        try:
            data = await self.client.functions.invoke(
                "receipt",
                {"body": {"sale_id": sale_id, "width": columns}, "responseType": "json"},
            )
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc
        payload = json.loads(data) if isinstance(data, bytes) else data
        return [str(line) for line in payload["lines"]]

    async def analytics(self, start: date, end: date) -> dict[str, Any]:
        return dict(
            await self._call(
                self.client.rpc(
                    "analytics",
                    {"start_date": start.isoformat(), "end_date": end.isoformat()},
                )
            )
        )
