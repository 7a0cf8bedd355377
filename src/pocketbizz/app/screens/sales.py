"""Sales: the history, newest first, grouped by day; a sale's detail; void with a reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import partial
from itertools import groupby
from typing import Any

import flet as ft

from pocketbizz.app.money import format_rm, to_money
from pocketbizz.app.session import Session


def _local_day(sale: dict[str, Any], zone: tzinfo) -> str:
    """The sale's day in the business's time zone (not the app process's)."""
    return datetime.fromisoformat(str(sale["created_at"])).astimezone(zone).strftime("%d/%m/%Y")


class SalesScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.sales: list[dict[str, Any]] = []
        self.root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)
        self.detail_open = False
        self.channel: str | None = None
        self.method: str | None = None

    async def refresh(self) -> None:
        """A sale made or voided elsewhere: the list updates (an open sale stays as it is)."""
        await self.load()
        if not self.detail_open:
            self._render_list()

    async def load(self) -> None:
        self.sales = await self.session.backend.sales()

    def view(self) -> ft.Control:
        self._render_list()
        return self.root

    def _render_list(self) -> None:
        t = self.t
        self.detail_open = False
        rows: list[ft.Control] = [
            ft.Text(t("sales"), size=22, weight=ft.FontWeight.BOLD),
            self._filter(self.channel, _CHANNEL_KEYS, self._pick_channel),
            self._filter(self.method, _METHOD_KEYS, self._pick_method),
        ]
        shown = [
            s
            for s in self.sales
            if (self.channel is None or s["channel"] == self.channel)
            and (self.method is None or s["payment_method"] == self.method)
        ]
        if not shown:
            rows.append(ft.Text(t("no_sales"), italic=True))
        for day, group in groupby(shown, key=partial(_local_day, zone=self.session.business_zone)):
            rows.append(ft.Text(day, weight=ft.FontWeight.BOLD))
            for sale in group:
                void = sale["status"] == "void"
                rows.append(
                    ft.ListTile(
                        title=ft.Text(str(sale["sale_number"])),
                        subtitle=ft.Text(
                            f"{t(_METHOD_KEYS.get(sale['payment_method'], 'cash'))}"
                            + (f" · {t('voided')}" if void else "")
                        ),
                        trailing=ft.Text(format_rm(to_money(sale["final_amount"]))),
                        on_click=lambda e, s=sale: self._detail(s),
                    )
                )
        self.root.controls = rows

    def _filter(
        self, value: str | None, choices: dict[str, str], pick: Callable[[str | None], None]
    ) -> ft.Control:
        return ft.Row(
            [
                (ft.FilledButton if key == value else ft.OutlinedButton)(
                    self.t(label), on_click=lambda e, k=key: pick(k)
                )
                for key, label in [(None, "all"), *choices.items()]
            ],
            wrap=True,
        )

    def _pick_channel(self, channel: str | None) -> None:
        self.channel = channel
        self._render_list()
        self.session.page.update()

    def _pick_method(self, method: str | None) -> None:
        self.method = method
        self._render_list()
        self.session.page.update()

    def _detail(self, sale: dict[str, Any]) -> None:
        t = self.t
        self.detail_open = True
        reason = ft.TextField(label=t("void_reason"))

        async def void(e: ft.Event[ft.Button]) -> None:
            if not (reason.value or "").strip():
                reason.error = t("required")
                self.session.page.update()
                return

            async def call() -> None:
                await self.session.backend.void_sale(str(sale["id"]), (reason.value or "").strip())

            if await self.session.guarded(call):
                await self.load()
                self._render_list()
                self.session.page.update()

        def back(e: ft.Event[ft.TextButton]) -> None:
            self._render_list()
            self.session.page.update()

        items = [
            ft.Row(
                [
                    ft.Text(
                        f"{i['product_name']} × {to_money(i['quantity']).normalize():f}",
                        expand=True,
                    ),
                    ft.Text(format_rm(to_money(i["subtotal"]))),
                ]
            )
            for i in sale.get("sale_items") or []
        ]
        controls: list[ft.Control] = [
            ft.Text(str(sale["sale_number"]), size=22, weight=ft.FontWeight.BOLD),
            *items,
            ft.Row(
                [
                    ft.Text(t("total"), expand=True),
                    ft.Text(format_rm(to_money(sale["final_amount"]))),
                ]
            ),
        ]
        if sale["status"] == "void":
            controls.append(
                ft.Text(f"{t('voided')}: {sale.get('void_reason') or ''}", color=ft.Colors.ERROR)
            )
        else:
            controls += [reason, ft.Button(t("void"), icon=ft.Icons.BLOCK, on_click=void)]
        controls.append(ft.TextButton(t("sales"), icon=ft.Icons.ARROW_BACK, on_click=back))
        self.root.controls = controls
        self.session.page.update()


_METHOD_KEYS = {"cash": "cash", "card": "card", "ewallet": "ewallet"}
_CHANNEL_KEYS = {"walk-in": "walk_in", "online": "online", "delivery": "delivery"}


async def build(session: Session) -> ft.Control:
    screen = SalesScreen(session)
    await screen.load()
    session.on_data_change = screen.refresh
    return screen.view()
