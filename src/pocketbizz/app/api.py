"""The app's only way to the server: the official `supabase` client (async), over HTTP.

One `Backend` per app session (a browser tab or a device). Every call is a plain Supabase
call — table reads under RLS, and the sales/stock SQL functions through RPC — so the app is
also a running check of the wire contract.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import httpx
from postgrest.types import CountMethod
from realtime import (
    AsyncRealtimeChannel,
    RealtimePostgresChangesListenEvent,
    RealtimeSubscribeStates,
)
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase.types import RealtimeClientOptions
from supabase_auth.errors import AuthRetryableError

from pocketbizz.app.config import AppConfig
from pocketbizz.app.money import to_money

# Public bucket for product photos (migration 0004); objects live under `{uid}/`.
PRODUCT_IMAGES = "product-images"
# Public bucket for business logos (migration 0004), also under `{uid}/`.
LOGOS = "logos"


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
    # The photo's public URL first (`images` holds URLs); empty when it has none.
    images: tuple[str, ...] = ()
    # `allow`: sold without counting on stock (a service, made to order); `None`: the
    # business's policy. The app shows "track stock" off for `allow`.
    negative_stock_policy: str | None = None
    # The product's own SST percent; None: the business rate applies (when it charges SST).
    tax_rate: Decimal | None = None

    @property
    def tracks_stock(self) -> bool:
        return self.negative_stock_policy != "allow"

    @property
    def low_stock(self) -> bool:
        return self.tracks_stock and self.current_stock <= self.reorder_level

    @property
    def photo_url(self) -> str | None:
        return self.images[0] if self.images else None

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
            images=tuple(str(url) for url in row.get("images") or ()),
            negative_stock_policy=row.get("negative_stock_policy"),
            tax_rate=None if row.get("tax_rate") is None else Decimal(str(row["tax_rate"])),
        )


async def _nothing() -> None:
    return None


def _forwarded_for(client_ip: str | None) -> str | None:
    """The browser's address as an X-Forwarded-For value, or None when it is not an IP
    address (Flet leaves it empty when it does not know it)."""
    try:
        return str(ipaddress.ip_address((client_ip or "").strip()))
    except ValueError:
        return None


def _message(exc: Exception) -> str:
    # postgrest's APIError carries the server's JSON message; auth errors carry `message`.
    return str(getattr(exc, "message", None) or exc)


class Backend:
    """A signed-in (or signing-in) user's view of the API."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.user_id: str | None = None
        # Awaited before every call for data: the app session sets it to resume a sign-in
        # opened offline first (a call without the user's token reads as nobody's: empty).
        self.before_call: Callable[[], Awaitable[None]] = _nothing
        self.watching = False
        self._watched: tuple[tuple[str, ...], Callable[[str], None]] | None = None
        self._channel: AsyncRealtimeChannel | None = None

    @classmethod
    async def connect(cls, config: AppConfig, client_ip: str | None = None) -> Backend:
        """`client_ip`: the address of the browser this session serves, when known."""
        options = AsyncClientOptions(
            postgrest_client_timeout=15,
            function_client_timeout=15,
            # A shop's server may be down for minutes (a restart, the Wi-Fi): keep trying to
            # reconnect the live feed (backoff doubles up to a minute) instead of giving up
            # after the default 5 tries.
            realtime=RealtimeClientOptions(max_retries=1_000_000, initial_backoff=1.0),
        )
        forwarded = _forwarded_for(client_ip)
        if forwarded is not None:
            # The web app runs beside the API and calls it from one address for all its users,
            # who would then share that address's limits (sign-in attempts above all). It says
            # whose call it is, as a proxy would; the server believes it only from an address
            # it trusts (PB_TRUSTED_PROXIES, loopback by default), so a device's app sending it
            # from elsewhere changes nothing.
            options.headers["X-Forwarded-For"] = forwarded
        return cls(await acreate_client(config.backend_url, config.anon_key, options=options))

    async def _call(self, make: Callable[[], Any]) -> Any:
        """Run the request `make` builds — built only after `before_call`, since a session
        resumed there changes the headers the client puts on new requests."""
        await self.before_call()
        request = make()
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

    async def resume(self, access_token: str, refresh_token: str) -> None:
        """Sign in again from a session kept on the device, as supabase-js recovers one: a
        still-valid access token is checked with the server (GET /user), an expired one is
        refreshed (the client then announces TOKEN_REFRESHED, and the new pair is kept in
        turn). Not refreshing a valid one spares a rotation per reload: another tab holding
        the same refresh token would otherwise find it spent, and a spent token replayed
        revokes the session. Offline: the server could not be asked; the kept session may
        still be good."""
        try:
            res = await self.client.auth.set_session(access_token, refresh_token)
        except AuthRetryableError as exc:  # the auth client's word for a transport failure
            raise Offline("the server cannot be reached") from exc
        except Exception as exc:  # revoked, expired, unknown user: the server said no
            raise ApiFailure(_message(exc)) from exc
        self.user_id = res.user.id if res.user else None

    async def sign_out(self) -> None:
        """Every session of the user ended on the server. With the server unreachable, this
        device is signed out all the same (the client's `local` scope: its session dropped
        and SIGNED_OUT announced, so the kept sign-in goes too). The server's session then
        ends when it is revoked from another device or has been idle for the server's
        inactivity limit (PB_SESSIONS_INACTIVITY_TIMEOUT, 90 days by default)."""
        try:
            await self.client.remove_all_channels()
            try:
                await self.client.auth.sign_out()
            except AuthRetryableError:  # the auth client's word for a transport failure
                with suppress(AuthRetryableError):
                    await self.client.auth.sign_out({"scope": "local"})
        finally:
            self.user_id = None
            self.watching = False
            self._channel = None

    # -- live updates --------------------------------------------------------------------
    async def keep_watching(self) -> None:
        """Subscribe again when the server has closed the channel for good (a `phx_close`,
        e.g. after a token it no longer accepts). A dropped socket is not a reason: the
        client reconnects by itself (retries without end, see `connect`) and rejoins the
        channel; a second subscription racing it would leave two sockets and no channel."""
        channel = self._channel
        if not self.watching or self._watched is None or channel is None:
            return
        if not self.client.realtime.is_connected or not channel.is_closed:
            return
        self.watching = False
        with suppress(Exception):
            await self.client.remove_channel(channel)
        await self.watch(*self._watched)

    async def watch(self, tables: tuple[str, ...], on_change: Callable[[str], None]) -> None:
        """Realtime changes to the signed-in tenant's rows of `tables` (the server delivers only
        rows the user may read). The client reconnects by itself after a network drop or a
        server restart and rejoins; each rejoin calls `on_change("*")`, because changes made
        while the socket was down were never delivered and the screen must read them."""
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
        joined_before = False

        def state_changed(state: RealtimeSubscribeStates, error: Exception | None) -> None:
            nonlocal joined_before
            if state == RealtimeSubscribeStates.SUBSCRIBED:
                if joined_before:
                    on_change("*")
                joined_before = True

        try:
            await channel.subscribe(state_changed)
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc
        self._channel = channel
        self.watching = True

    # -- business ------------------------------------------------------------------------
    async def business_profile(self) -> dict[str, Any]:
        rows = await self._call(lambda: self.client.table("business_profiles").select("*").limit(1))
        if not rows:
            raise ApiFailure("business profile not found")
        return dict(rows[0])

    async def update_business(self, profile_id: str, changes: dict[str, Any]) -> None:
        await self._call(
            lambda: self.client.table("business_profiles").update(changes).eq("id", profile_id)
        )

    async def set_logo(
        self, profile_id: str, data: bytes, content_type: str, extension: str, old: str | None
    ) -> str:
        """Upload the logo to the public `logos` bucket under the owner's folder (its policy
        requires `{uid}/...`), point the profile's `logo_url` at it, then delete the one it
        replaces. A new name per upload: the old URL may sit in a device's image cache."""
        url = await self._upload_public(LOGOS, "logo", data, content_type, extension)
        await self.update_business(profile_id, {"logo_url": url})
        await self._remove_files(LOGOS, (old,) if old else ())
        return url

    async def remove_logo(self, profile_id: str, old: str | None) -> None:
        await self.update_business(profile_id, {"logo_url": None})
        await self._remove_files(LOGOS, (old,) if old else ())

    async def _upload_public(
        self, bucket_id: str, folder: str, data: bytes, content_type: str, extension: str
    ) -> str:
        """Upload under the owner's folder (the buckets' policies require `{uid}/...`) with a
        new name each time (an old URL may sit in a device's image cache); its public URL."""
        if self.user_id is None:
            raise ApiFailure("not signed in")
        await self.before_call()
        path = f"{self.user_id}/{folder}/{uuid.uuid4().hex}.{extension}"
        bucket = self.client.storage.from_(bucket_id)
        try:
            await bucket.upload(path, data, {"content-type": content_type})
            return str(await bucket.get_public_url(path))
        except httpx.TransportError as exc:
            raise Offline("the server cannot be reached") from exc
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc

    async def _remove_files(self, bucket: str, urls: tuple[str, ...]) -> None:
        # Only files this app put in the bucket (a URL set elsewhere is left alone); a file
        # already gone is no reason to fail a save that has happened.
        marker = f"/storage/v1/object/public/{bucket}/"
        paths = [url.split(marker, 1)[1] for url in urls if marker in url]
        if paths:
            with suppress(Exception):
                await self.client.storage.from_(bucket).remove(paths)

    async def _function(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A server function's JSON answer (POST with `body`, GET without); a refusal carries
        the `error` of its JSON body (the functions client reads it)."""
        options: dict[str, Any] = {"responseType": "json"}
        if body is None:
            options["method"] = "GET"
        else:
            options["body"] = body
        await self.before_call()
        try:
            data = await self.client.functions.invoke(name, options)
        except httpx.TransportError as exc:
            raise Offline("the server cannot be reached") from exc
        except Exception as exc:
            raise ApiFailure(_message(exc)) from exc
        payload = json.loads(data) if isinstance(data, (bytes, str)) else data
        return dict(payload)

    async def plans(self) -> list[dict[str, Any]]:
        rows = await self._call(
            lambda: self.client.table("plans").select("*").order("price_monthly")
        )
        return [dict(r) for r in rows]

    async def subscribe(self, plan: str, months: int) -> dict[str, Any]:
        """A ToyyibPay bill for the plan: `payment_url` is where the owner pays; the plan
        changes when ToyyibPay tells the server it is paid."""
        return await self._function("subscribe", {"plan": plan, "months": months})

    async def payment_settings(self) -> dict[str, Any]:
        """Whether the business can take payment-link payments: `{configured, category_code}`."""
        return await self._function("payment-settings")

    async def payment_link(self, sale_id: str) -> dict[str, Any]:
        """A ToyyibPay bill for an unpaid sale: `{sale_id, bill_code, payment_url, amount}`."""
        return await self._function("payment-link", {"sale_id": sale_id})

    # -- products ------------------------------------------------------------------------
    async def product_rows(self) -> list[dict[str, Any]]:
        # No client retries: offline, the catalogue kept on the device is the answer, and the
        # client's three retries (1 + 2 + 4 s) would only keep the counter waiting for it.
        rows = await self._call(
            lambda: (
                self.client.table("products")
                .select("*")
                .eq("is_active", True)
                .order("name")
                .retry(False)
            )
        )
        return [dict(r) for r in rows]

    async def add_product(self, fields: dict[str, Any], opening_stock: Decimal) -> Product:
        """A new product (`fields` are product columns), then its opening stock."""
        rows = await self._call(lambda: self.client.table("products").insert(fields))
        product = Product.from_row(rows[0])
        if opening_stock > 0:
            # Stock is a ledger: the opening level is a counted adjustment, never a write.
            await self.adjust_stock(product.id, opening_stock, "opening stock")
        return product

    async def update_product(self, product_id: str, changes: dict[str, Any]) -> None:
        await self._call(lambda: self.client.table("products").update(changes).eq("id", product_id))

    async def adjust_stock(self, product_id: str, counted: Decimal, reason: str) -> None:
        await self._call(
            lambda: self.client.rpc(
                "adjust_stock",
                {"product_id": product_id, "counted_quantity": str(counted), "reason": reason},
            )
        )

    async def record_purchase(self, product_id: str, quantity: Decimal, unit_cost: Decimal) -> None:
        await self._call(
            lambda: self.client.rpc(
                "record_purchase",
                {"product_id": product_id, "quantity": str(quantity), "unit_cost": str(unit_cost)},
            )
        )

    async def set_product_photo(
        self, product: Product, data: bytes, content_type: str, extension: str
    ) -> str:
        """Upload a photo to `product-images` under the owner's folder (the bucket's policy
        requires `{uid}/...`), make it the product's image, then delete the one it replaces.
        A new name per upload: the old URL may sit in a device's image cache."""
        folder = f"products/{product.id}"
        url = await self._upload_public(PRODUCT_IMAGES, folder, data, content_type, extension)
        await self.update_product(product.id, {"images": [url]})
        await self._remove_files(PRODUCT_IMAGES, product.images)
        return url

    async def remove_product_photo(self, product: Product) -> None:
        await self.update_product(product.id, {"images": []})
        await self._remove_files(PRODUCT_IMAGES, product.images)

    async def recipe(self, product_id: str) -> list[dict[str, Any]]:
        """What one unit of the product uses: `recipe_items` rows, each with its ingredient's
        `name` and `current_stock` (an archived ingredient still counts in production)."""
        rows = [
            dict(r)
            for r in await self._call(
                lambda: (
                    self.client.table("recipe_items")
                    .select("id,ingredient_id,quantity")
                    .eq("product_id", product_id)
                )
            )
        ]
        if not rows:
            return []
        ingredients = {
            str(p["id"]): p
            for p in await self._call(
                lambda: (
                    self.client.table("products")
                    .select("id,name,current_stock")
                    .in_("id", [r["ingredient_id"] for r in rows])
                )
            )
        }
        for row in rows:
            found = ingredients.get(str(row["ingredient_id"]), {})
            row["name"] = found.get("name", "?")
            row["current_stock"] = found.get("current_stock")
        return sorted(rows, key=lambda r: str(r["name"]))

    async def add_recipe_item(self, product_id: str, ingredient_id: str, quantity: Decimal) -> None:
        await self._call(
            lambda: self.client.table("recipe_items").insert(
                {
                    "product_id": product_id,
                    "ingredient_id": ingredient_id,
                    "quantity": str(quantity),
                }
            )
        )

    async def update_recipe_item(self, item_id: str, quantity: Decimal) -> None:
        await self._call(
            lambda: (
                self.client.table("recipe_items")
                .update({"quantity": str(quantity)})
                .eq("id", item_id)
            )
        )

    async def remove_recipe_item(self, item_id: str) -> None:
        await self._call(lambda: self.client.table("recipe_items").delete().eq("id", item_id))

    async def record_production(self, product_id: str, quantity: Decimal) -> dict[str, Any]:
        return dict(
            await self._call(
                lambda: self.client.rpc(
                    "record_production", {"product_id": product_id, "quantity": str(quantity)}
                )
            )
        )

    async def movements(self, product_id: str) -> list[dict[str, Any]]:
        rows = await self._call(
            lambda: (
                self.client.table("stock_movements")
                .select("reference_type,movement_type,quantity,unit_cost,reason,notes,created_at")
                .eq("product_id", product_id)
                .order("created_at", desc=True)
                .limit(50)
            )
        )
        return list(rows)

    # -- customers -----------------------------------------------------------------------
    async def customers(self, *, retry: bool = True) -> list[dict[str, Any]]:
        """`retry=False` where the caller goes on without them when the server cannot be
        reached, rather than after the client's retries (1 + 2 + 4 s)."""
        return list(
            await self._call(
                lambda: (
                    self.client.table("customers").select("*").order("name").limit(500).retry(retry)
                )
            )
        )

    async def add_customer(self, name: str, phone: str | None) -> None:
        await self._call(
            lambda: self.client.table("customers").insert({"name": name, "phone": phone})
        )

    async def update_customer(self, customer_id: str, changes: dict[str, Any]) -> None:
        await self._call(
            lambda: self.client.table("customers").update(changes).eq("id", customer_id)
        )

    async def customer_sales(self, customer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The customer's sales, newest first, voided ones included (marked by `status`)."""
        rows = await self._call(
            lambda: (
                self.client.table("sales")
                .select("id,sale_number,status,final_amount,created_at")
                .eq("customer_id", customer_id)
                .order("created_at", desc=True)
                .limit(limit)
            )
        )
        return list(rows)

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
        payment_status: str | None = None,
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
        if payment_status is not None:  # `pending`: paid later, through a payment link
            args["payment_status"] = payment_status
        return dict(await self._call(lambda: self.client.rpc("create_sale", args)))

    async def void_sale(self, sale_id: str, reason: str) -> dict[str, Any]:
        return dict(
            await self._call(
                lambda: self.client.rpc("void_sale", {"sale_id": sale_id, "reason": reason})
            )
        )

    async def sales(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._call(
            lambda: (
                self.client.table("sales")
                .select(
                    "id,sale_number,status,channel,payment_method,final_amount,created_at,"
                    "void_reason,sale_items(product_name,quantity,subtotal)"
                )
                .order("created_at", desc=True)
                .limit(limit)
            )
        )
        return list(rows)

    async def subscription(self, zone: tzinfo) -> dict[str, Any]:
        """The plan, its limits and what is used of them this month (the business's month, in
        its time zone `zone`, as create_sale counts it)."""
        users = await self._call(
            lambda: self.client.table("users").select("subscription_plan, subscription_expires_at")
        )
        user = dict(users[0]) if users else {}
        expires_at = user.get("subscription_expires_at")
        # As the server's plan_limits: a paid plan past its date has the free plan's limits.
        ends = datetime.fromisoformat(str(expires_at)) if expires_at else None
        lapsed = ends is not None and ends <= datetime.now(UTC)
        plan_code = str(user["subscription_plan"]) if user and not lapsed else "free"
        plans = await self._call(
            lambda: self.client.table("plans").select("*").eq("code", plan_code)
        )
        products = (
            await self.client.table("products")
            .select("id", count=CountMethod.exact, head=True)
            .eq("is_active", True)
            .execute()
        )
        now = datetime.now(zone)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat()
        sales = (
            await self.client.table("sales")
            .select("id", count=CountMethod.exact, head=True)
            .gte("created_at", month_start)
            .execute()
        )
        plan = dict(plans[0]) if plans else {"code": plan_code, "name": plan_code}
        return {
            "plan": plan,
            "expires_at": expires_at,
            "lapsed_plan": user["subscription_plan"] if lapsed else None,
            "active_products": products.count or 0,
            "sales_this_month": sales.count or 0,
        }

    async def receipt_lines(self, sale_id: str, columns: int) -> list[str]:
        """The sale's receipt laid out by the backend's `receipt` function."""
        await self.before_call()
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
                lambda: self.client.rpc(
                    "analytics",
                    {"start_date": start.isoformat(), "end_date": end.isoformat()},
                )
            )
        )
