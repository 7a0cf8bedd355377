"""Sales: the history, newest first, grouped by day; a sale's detail; void with a reason."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from typing import Any

import flet as ft

from pocketbizz.app.money import format_rm, to_money
from pocketbizz.app.session import Session


def _local_day(sale: dict[str, Any]) -> str:
    return datetime.fromisoformat(str(sale["created_at"])).astimezone().strftime("%d/%m/%Y")


class SalesScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.sales: list[dict[str, Any]] = []
        self.root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)
        self.detail_open = False

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
        rows: list[ft.Control] = [ft.Text(t("sales"), size=22, weight=ft.FontWeight.BOLD)]
        if not self.sales:
            rows.append(ft.Text(t("no_sales"), italic=True))
        for day, group in groupby(self.sales, key=_local_day):
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


async def build(session: Session) -> ft.Control:
    screen = SalesScreen(session)
    await screen.load()
    session.on_data_change = screen.refresh
    return screen.view()
