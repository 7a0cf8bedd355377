"""One app session (a browser tab, or the app on a device): who is signed in, the language,
the business profile, and which screen shows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import flet as ft

from pocketbizz.app.api import ApiFailure, Backend, Product
from pocketbizz.app.config import AppConfig
from pocketbizz.app.i18n import Translator

# Wider than this (logical pixels) the tablet layout applies: navigation rail and two panes.
TABLET_WIDTH = 720


async def _nothing() -> None:
    return None


async def _nothing_int(index: int) -> None:
    return None


class Session:
    def __init__(self, page: ft.Page, config: AppConfig, backend: Backend) -> None:
        self.page = page
        self.config = config
        self.backend = backend
        self.t = Translator("en")
        self.profile: dict[str, Any] = {}
        self.products: list[Product] = []
        # Set by the entry point: reopen the signed-in app at a screen; back to sign-in.
        self.reopen: Callable[[int], Awaitable[None]] = _nothing_int
        self.signed_out: Callable[[], Awaitable[None]] = _nothing
        # The screen on show refreshes itself through this when the tenant's data changes
        # elsewhere (another device, the API); each screen sets it when built.
        self.on_data_change: Callable[[], Awaitable[None]] | None = None
        self._refresh_pending = False

    @property
    def wide(self) -> bool:
        return (self.page.width or 0) >= TABLET_WIDTH

    @property
    def cash_rounding(self) -> bool:
        return bool(self.profile.get("cash_rounding", True))

    def show(self, control: ft.Control) -> None:
        self.page.controls = [control]
        self.page.update()

    def notify(self, message: str) -> None:
        self.page.show_dialog(ft.SnackBar(ft.Text(message)))

    async def guarded(self, action: Callable[[], Awaitable[None]]) -> bool:
        """Run a call to the API; a refusal becomes a message, never a frozen screen."""
        try:
            await action()
        except ApiFailure as exc:
            self.notify(self.t("error", error=str(exc)))
            return False
        return True

    async def load_profile(self) -> None:
        self.profile = await self.backend.business_profile()
        language = (self.profile.get("settings") or {}).get("language", "en")
        self.t = Translator(language)

    async def watch(self) -> None:
        """Follow the tenant's sales and products live (Realtime)."""
        await self.backend.watch(("sales", "products"), self._changed)

    def _changed(self, table: str) -> None:
        # A sale announces its row and each product's new stock: refresh once for the burst.
        if not self._refresh_pending:
            self._refresh_pending = True
            self.page.run_task(self._refresh_soon)

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(0.2)
        self._refresh_pending = False
        if self.on_data_change is not None:
            try:
                await self.on_data_change()
            except ApiFailure:
                return  # the next change (or a tap) tries again; the screen keeps what it shows
            self.page.update()

    async def load_products(self) -> list[Product]:
        self.products = await self.backend.products()
        return self.products
