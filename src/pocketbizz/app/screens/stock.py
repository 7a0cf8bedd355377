"""Stock: per product, record a purchase or a stock count, and read its movement history."""

from __future__ import annotations

from datetime import datetime

import flet as ft

from pocketbizz.app.api import Product
from pocketbizz.app.money import parse_amount
from pocketbizz.app.session import Session


async def build(session: Session) -> ft.Control:
    t = session.t
    root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)

    def render_list() -> None:
        root.controls = [
            ft.Text(t("stock"), size=22, weight=ft.FontWeight.BOLD),
            *[
                ft.ListTile(
                    title=ft.Text(p.name),
                    trailing=ft.Text(
                        f"{p.current_stock.normalize():f}",
                        color=ft.Colors.ERROR if p.low_stock else None,
                    ),
                    on_click=lambda e, product=p: session.page.run_task(detail, product),
                )
                for p in session.products
            ],
        ]

    async def detail(product: Product) -> None:
        number = ft.KeyboardType.NUMBER
        quantity = ft.TextField(label=t("quantity"), keyboard_type=number, expand=True)
        unit_cost = ft.TextField(label=t("unit_cost"), value=f"{product.cost_price}", expand=True)
        counted = ft.TextField(label=t("counted"), keyboard_type=number, expand=True)
        reason = ft.TextField(label=t("reason"), value="count", expand=True)

        async def done() -> None:
            await session.load_products()
            fresh = next((p for p in session.products if p.id == product.id), product)
            await detail(fresh)

        async def purchase(e: ft.Event[ft.Button]) -> None:
            qty, cost = parse_amount(quantity.value or ""), parse_amount(unit_cost.value or "")
            if not qty or cost is None:
                quantity.error = t("required")
                session.page.update()
                return
            if await session.guarded(
                lambda: session.backend.record_purchase(product.id, qty, cost)
            ):
                await done()

        async def count(e: ft.Event[ft.Button]) -> None:
            value = parse_amount(counted.value or "")
            if value is None or not (reason.value or "").strip():
                counted.error = t("required")
                session.page.update()
                return
            if await session.guarded(
                lambda: session.backend.adjust_stock(
                    product.id, value, (reason.value or "").strip()
                )
            ):
                await done()

        def back(e: ft.Event[ft.TextButton]) -> None:
            render_list()
            session.page.update()

        movements = await session.backend.movements(product.id)
        root.controls = [
            ft.Text(product.name, size=22, weight=ft.FontWeight.BOLD),
            ft.Text(t("in_stock", stock=f"{product.current_stock.normalize():f}")),
            ft.Text(t("record_purchase"), weight=ft.FontWeight.BOLD),
            ft.Row([quantity, unit_cost]),
            ft.Button(t("record_purchase"), on_click=purchase),
            ft.Text(t("count_stock"), weight=ft.FontWeight.BOLD),
            ft.Row([counted, reason]),
            ft.Button(t("count_stock"), on_click=count),
            ft.Divider(),
            *[
                ft.Text(
                    f"{datetime.fromisoformat(str(m['created_at'])).astimezone():%d/%m %H:%M}  "
                    f"{m['reference_type']}  {'+' if m['movement_type'] == 'in' else '-'}"
                    f"{m['quantity']}  {m.get('reason') or ''}"
                )
                for m in movements
            ],
            ft.TextButton(t("stock"), icon=ft.Icons.ARROW_BACK, on_click=back),
        ]
        session.page.update()

    await session.load_products()
    render_list()
    return root
