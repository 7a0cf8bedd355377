"""Products: the list with photos, stock levels and low-stock badges; add, edit (photo
included), archive."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import flet as ft

from pocketbizz.app.api import Product
from pocketbizz.app.money import format_rm, parse_amount
from pocketbizz.app.screens.photos import PhotoRefused, PickedPhoto, pick_photo, thumbnail
from pocketbizz.app.session import Session


def _sku_from(name: str) -> str:
    """A readable default SKU when the owner leaves it blank (SKUs are unique per business)."""
    stem = re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")[:20] or "ITEM"
    return stem


class ProductsScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)
        self.form_open = False
        # Kept for the session's life: a service the page must hold a reference to.
        self.picker: ft.FilePicker | None = None

    async def refresh(self) -> None:
        await self.session.load_products()
        if not self.form_open:  # never under the owner's typing
            self._render_list()

    def view(self) -> ft.Control:
        self._render_list()
        return self.root

    def _render_list(self) -> None:
        t = self.t
        self.form_open = False
        rows: list[ft.Control] = [
            ft.Row(
                [
                    ft.Text(t("products"), size=22, weight=ft.FontWeight.BOLD, expand=True),
                    ft.Button(t("add_product"), icon=ft.Icons.ADD, on_click=self._add),
                ]
            )
        ]
        if not self.session.products:
            rows.append(ft.Text(t("no_products"), italic=True))
        for p in self.session.products:
            stock = f"{p.current_stock.normalize():f}"
            levels = t("in_stock", stock=stock) if p.tracks_stock else t("not_tracked")
            rows.append(
                ft.ListTile(
                    leading=thumbnail(p),
                    title=ft.Text(p.name),
                    subtitle=ft.Text(f"{p.sku} · {format_rm(p.sale_price)} · {levels}"),
                    trailing=ft.Container(
                        ft.Text(t("low_stock"), size=12, color=ft.Colors.ON_ERROR),
                        bgcolor=ft.Colors.ERROR,
                        padding=ft.Padding.symmetric(horizontal=8, vertical=2),
                        border_radius=10,
                        visible=p.low_stock,
                    ),
                    on_click=lambda e, product=p: self._edit(product),
                )
            )
        self.root.controls = rows

    def _add(self, e: ft.Event[ft.Button]) -> None:
        self._form(None)

    def _edit(self, product: Product) -> None:
        self._form(product)

    def _form(self, product: Product | None) -> None:
        t = self.t
        self.form_open = True
        name = ft.TextField(label=t("name"), value=product.name if product else "")
        price = ft.TextField(
            label=t("price"),
            prefix=ft.Text("RM "),
            keyboard_type=ft.KeyboardType.NUMBER,
            value=f"{product.sale_price}" if product else "",
        )
        cost = ft.TextField(
            label=t("cost"),
            prefix=ft.Text("RM "),
            keyboard_type=ft.KeyboardType.NUMBER,
            value=f"{product.cost_price}" if product else "",
        )
        # Opening stock only when adding: later changes go through the Stock screen (ledger).
        stock = ft.TextField(
            label=t("stock"),
            keyboard_type=ft.KeyboardType.NUMBER,
            visible=product is None,
        )
        sku = ft.TextField(label=t("sku"), value=product.sku if product else "")
        barcode = ft.TextField(label=t("barcode"), value=(product.barcode or "") if product else "")
        category = ft.TextField(
            label=t("category"), value=(product.category or "") if product else ""
        )
        reorder = ft.TextField(
            label=t("low_stock_level"),
            keyboard_type=ft.KeyboardType.NUMBER,
            value=f"{product.reorder_level.normalize():f}" if product else "",
        )
        track = ft.Switch(label=t("track_stock"), value=product.tracks_stock if product else True)
        # The photo change waits for Save, like every other field: a picked photo replaces
        # the product's, `remove_photo` takes it off, neither keeps it.
        new_photo: PickedPhoto | None = None
        remove_photo = False
        photo_box = ft.Container(width=96, height=96)
        photo_button = ft.OutlinedButton(icon=ft.Icons.ADD_A_PHOTO)
        remove_button = ft.TextButton(t("remove_photo"), icon=ft.Icons.DELETE_OUTLINE)

        def render_photo() -> None:
            shown: ft.Control
            if new_photo is not None:
                shown = ft.Image(
                    src=new_photo.data,
                    width=96,
                    height=96,
                    fit=ft.BoxFit.COVER,
                    border_radius=6,
                    semantics_label=t("new_photo"),
                )
            elif product is not None and product.photo_url and not remove_photo:
                shown = ft.Image(
                    src=product.photo_url,
                    width=96,
                    height=96,
                    fit=ft.BoxFit.COVER,
                    border_radius=6,
                    semantics_label=t("current_photo"),
                )
            else:
                shown = ft.Container(
                    ft.Icon(ft.Icons.IMAGE_OUTLINED, size=40, color=ft.Colors.OUTLINE),
                    alignment=ft.Alignment.CENTER,
                    bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
                    border_radius=6,
                )
            photo_box.content = shown
            has_photo = new_photo is not None or (
                product is not None and bool(product.photo_url) and not remove_photo
            )
            photo_button.content = t("change_photo") if has_photo else t("add_photo")
            remove_button.visible = has_photo

        async def choose_photo(e: ft.Event[ft.OutlinedButton]) -> None:
            nonlocal new_photo, remove_photo
            if self.picker is None:
                self.picker = ft.FilePicker()
            try:
                picked = await pick_photo(self.picker)
            except PhotoRefused as refused:
                self.session.notify(t(refused.key))
                return
            if picked is None:
                return
            new_photo, remove_photo = picked, False
            render_photo()
            self.session.page.update()

        def drop_photo(e: ft.Event[ft.TextButton]) -> None:
            nonlocal new_photo, remove_photo
            new_photo, remove_photo = None, True
            render_photo()
            self.session.page.update()

        photo_button.on_click = choose_photo
        remove_button.on_click = drop_photo
        render_photo()

        created: list[Product] = []

        async def save(e: ft.Event[ft.Button]) -> None:
            sale_price = parse_amount(price.value or "")
            cost_price = parse_amount(cost.value or "0") or Decimal("0")
            opening = parse_amount(stock.value or "0")
            name.error = None if (name.value or "").strip() else t("required")
            price.error = None if sale_price is not None else t("required")
            if name.error or sale_price is None or opening is None:
                self.session.page.update()
                return
            clean_name = (name.value or "").strip()
            fields: dict[str, Any] = {
                "name": clean_name,
                "sku": (sku.value or "").strip() or _sku_from(clean_name),
                "sale_price": str(sale_price),
                "cost_price": str(cost_price),
                "barcode": (barcode.value or "").strip() or None,
                "category": (category.value or "").strip() or None,
                "reorder_level": str(parse_amount(reorder.value or "0") or 0),
            }
            if product is None or bool(track.value) != product.tracks_stock:
                # Off: sold whatever the count says (a service, made to order); on: the
                # business's rule applies again. Untouched, a policy set elsewhere stays.
                fields["negative_stock_policy"] = None if track.value else "allow"
            backend = self.session.backend

            async def call() -> None:
                saved = product or (created[0] if created else None)
                if saved is None:
                    saved = await backend.add_product(fields, opening)
                    # Should the photo fail now, a second Save edits this product
                    # instead of adding it (and its opening stock) again.
                    created.append(saved)
                else:
                    await backend.update_product(saved.id, fields)
                if new_photo is not None:
                    await backend.set_product_photo(
                        saved, new_photo.data, new_photo.content_type, new_photo.extension
                    )
                elif remove_photo and saved.images:
                    await backend.remove_product_photo(saved)

            if await self.session.guarded(call):
                await self.session.load_products()
                self.session.notify(t("saved"))
                self._render_list()
                self.session.page.update()

        async def archive(e: ft.Event[ft.TextButton]) -> None:
            assert product is not None

            async def call() -> None:
                await self.session.backend.update_product(product.id, {"is_active": False})

            if await self.session.guarded(call):
                await self.session.load_products()
                self._render_list()
                self.session.page.update()

        def cancel(e: ft.Event[ft.TextButton]) -> None:
            self._render_list()
            self.session.page.update()

        self.root.controls = [
            ft.Text(
                t("edit_product") if product else t("add_product"),
                size=22,
                weight=ft.FontWeight.BOLD,
            ),
            ft.Row(
                [photo_box, ft.Column([photo_button, remove_button], spacing=4)],
                spacing=12,
            ),
            name,
            price,
            cost,
            stock,
            sku,
            barcode,
            category,
            track,
            reorder,
            ft.Row(
                [
                    ft.Button(t("save"), on_click=save),
                    ft.TextButton(t("cancel"), on_click=cancel),
                    ft.TextButton(t("archive"), on_click=archive, visible=product is not None),
                ]
            ),
        ]
        self.session.page.update()


async def build(session: Session) -> ft.Control:
    await session.load_products()
    screen = ProductsScreen(session)
    session.on_data_change = screen.refresh
    return screen.view()
