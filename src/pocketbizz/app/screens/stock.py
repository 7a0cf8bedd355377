"""Stock: per product, record a purchase or a stock count, make it from its recipe
(production), and read its movement history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import flet as ft

from pocketbizz.app.api import Product
from pocketbizz.app.money import format_rm, parse_amount
from pocketbizz.app.session import Session

# What caused a movement, as the owner reads it (the ledger's `reference_type`).
_SIGN = {"in": "+", "out": "-"}


def _qty(value: Any) -> str:
    return f"{Decimal(str(value)).normalize():f}"


class StockScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)
        self.open_product: Product | None = None

    async def refresh(self) -> None:
        """Live change elsewhere (a sale, another device): the list, or the open product's
        stock and history — never under the owner's typing, which only the detail has."""
        await self.session.load_products()
        if self.open_product is None:
            self.render_list()

    def render_list(self) -> None:
        t = self.t
        self.open_product = None
        self.root.controls = [
            ft.Text(t("stock"), size=22, weight=ft.FontWeight.BOLD),
            *[
                ft.ListTile(
                    title=ft.Text(p.name),
                    trailing=ft.Text(
                        _qty(p.current_stock),
                        color=ft.Colors.ERROR if p.low_stock else None,
                    ),
                    on_click=lambda e, product=p: self.session.page.run_task(self.detail, product),
                )
                for p in self.session.products
            ],
        ]

    async def _reopen(self, product: Product) -> None:
        await self.session.load_products()
        fresh = next((p for p in self.session.products if p.id == product.id), product)
        await self.detail(fresh)

    async def detail(self, product: Product) -> None:
        t, session = self.t, self.session
        self.open_product = product
        backend = session.backend
        number = ft.KeyboardType.NUMBER
        quantity = ft.TextField(label=t("quantity"), keyboard_type=number, expand=True)
        unit_cost = ft.TextField(label=t("unit_cost"), value=f"{product.cost_price}", expand=True)
        counted = ft.TextField(label=t("counted"), keyboard_type=number, expand=True)
        reason = ft.TextField(label=t("reason"), value="count", expand=True)

        async def purchase(e: ft.Event[ft.Button]) -> None:
            qty, cost = parse_amount(quantity.value or ""), parse_amount(unit_cost.value or "")
            if not qty or cost is None:
                quantity.error = t("required")
                session.page.update()
                return
            if await session.guarded(lambda: backend.record_purchase(product.id, qty, cost)):
                await self._reopen(product)

        async def count(e: ft.Event[ft.Button]) -> None:
            value = parse_amount(counted.value or "")
            if value is None or not (reason.value or "").strip():
                counted.error = t("required")
                session.page.update()
                return
            if await session.guarded(
                lambda: backend.adjust_stock(product.id, value, (reason.value or "").strip())
            ):
                await self._reopen(product)

        def back(e: ft.Event[ft.TextButton]) -> None:
            self.render_list()
            session.page.update()

        recipe = await backend.recipe(product.id)
        movements = await backend.movements(product.id)
        if self.open_product is not product:
            return  # back to the list (or another product) while these were read
        self.root.controls = [
            # At the top: under the history (which grows with every movement) it was a scroll
            # away, and the message bar after Produce or a purchase covered it for seconds.
            ft.TextButton(t("back"), icon=ft.Icons.ARROW_BACK, on_click=back),
            ft.Text(product.name, size=22, weight=ft.FontWeight.BOLD),
            ft.Text(t("in_stock", stock=_qty(product.current_stock))),
            ft.Text(t("record_purchase"), weight=ft.FontWeight.BOLD),
            ft.Row([quantity, unit_cost]),
            ft.Button(t("record_purchase"), on_click=purchase),
            ft.Text(t("count_stock"), weight=ft.FontWeight.BOLD),
            ft.Row([counted, reason]),
            ft.Button(t("count_stock"), on_click=count),
            ft.Divider(),
            *self._production(product, recipe),
            ft.Divider(),
            ft.Text(t("history"), weight=ft.FontWeight.BOLD),
            *[self._movement(m) for m in movements],
        ]
        session.page.update()

    def _movement(self, m: dict[str, Any]) -> ft.Control:
        when = datetime.fromisoformat(str(m["created_at"])).astimezone()
        cost = f"  @ {format_rm(Decimal(str(m['unit_cost'])))}" if m.get("unit_cost") else ""
        return ft.Text(
            f"{when:%d/%m %H:%M}  {m['reference_type']}  {_SIGN.get(m['movement_type'], '')}"
            f"{_qty(m['quantity'])}{cost}  {m.get('reason') or m.get('notes') or ''}".rstrip()
        )

    def _production(self, product: Product, recipe: list[dict[str, Any]]) -> list[ft.Control]:
        """The product's recipe (what one unit uses), editable, and Produce N."""
        t, session = self.t, self.session
        backend = session.backend
        ingredient = ft.Dropdown(
            label=t("ingredient"),
            options=[
                ft.DropdownOption(key=p.id, text=p.name)
                for p in session.products
                if p.id != product.id
            ],
            # Editable: a textbox named by its label that filters the list as the owner
            # types (a plain dropdown reaches screen readers as an unnamed button).
            editable=True,
            enable_filter=True,
            expand=True,
        )
        per_unit = ft.TextField(
            label=t("quantity_per_unit"), keyboard_type=ft.KeyboardType.NUMBER, expand=True
        )
        make = ft.TextField(label=t("quantity_to_make"), keyboard_type=ft.KeyboardType.NUMBER)

        async def add_ingredient(e: ft.Event[ft.Button]) -> None:
            amount = parse_amount(per_unit.value or "")
            ingredient.error_text = None if ingredient.value else t("required")
            per_unit.error = None if amount else t("required")
            if not ingredient.value or not amount:
                session.page.update()
                return
            chosen = ingredient.value
            # The recipe has one row per ingredient: adding one again sets its quantity.
            existing = next((r for r in recipe if str(r["ingredient_id"]) == chosen), None)
            if await session.guarded(
                lambda: (
                    backend.update_recipe_item(str(existing["id"]), amount)
                    if existing is not None
                    else backend.add_recipe_item(product.id, chosen, amount)
                )
            ):
                await self._reopen(product)

        async def remove(item_id: str) -> None:
            if await session.guarded(lambda: backend.remove_recipe_item(item_id)):
                await self._reopen(product)

        async def produce(e: ft.Event[ft.Button]) -> None:
            amount = parse_amount(make.value or "")
            if not amount:
                make.error = t("required")
                session.page.update()
                return

            async def call() -> None:
                await backend.record_production(product.id, amount)

            if await session.guarded(call):
                session.notify(t("produced", quantity=_qty(amount)))
                await self._reopen(product)

        rows: list[ft.Control] = [ft.Text(t("recipe"), weight=ft.FontWeight.BOLD)]
        if not recipe:
            rows.append(ft.Text(t("recipe_empty"), italic=True))
        for item in recipe:
            stock = item.get("current_stock")
            rows.append(
                ft.Row(
                    [
                        ft.Text(
                            f"{item['name']} × {_qty(item['quantity'])}"
                            + (
                                f"  ({t('in_stock', stock=_qty(stock))})"
                                if stock is not None
                                else ""
                            ),
                            expand=True,
                        ),
                        # Named "Remove <ingredient>" for screen readers (a tooltip alone
                        # does not name the button in Flutter's web semantics).
                        ft.Semantics(
                            content=ft.IconButton(
                                ft.Icons.DELETE_OUTLINE,
                                on_click=lambda e, item_id=str(item["id"]): session.page.run_task(
                                    remove, item_id
                                ),
                            ),
                            label=f"{t('remove')} {item['name']}",
                            button=True,
                            container=True,
                            exclude_semantics=True,
                        ),
                    ]
                )
            )
        rows += [
            ft.Row([ingredient, per_unit]),
            ft.Button(t("add_ingredient"), icon=ft.Icons.ADD, on_click=add_ingredient),
        ]
        if recipe:
            rows += [ft.Row([make, ft.Button(t("produce"), on_click=produce)])]
        return rows


async def build(session: Session) -> ft.Control:
    await session.load_products()
    screen = StockScreen(session)
    screen.render_list()
    session.on_data_change = screen.refresh
    return screen.root
