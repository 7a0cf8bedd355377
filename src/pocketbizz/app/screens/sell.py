"""Sell (POS): tap products into the cart, charge, take the payment, show the sale number.

Each line may carry its own discount (RM or a percentage of the line) besides the sale
discount. For cash, the amount due is rounded to 5 sen (when the business rounds cash) and the
change is shown before `Complete sale`. The figures shown are money.amount_due's preview of
create_sale's arithmetic (line discounts, the sale discount, SST, rounding), so the sale recorded
is the one the customer was shown.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import flet as ft

from pocketbizz.app.api import ApiFailure, Offline, Product
from pocketbizz.app.money import (
    Due,
    Line,
    amount_due,
    format_rm,
    line_discount,
    parse_amount,
    parse_percent,
    to_money,
)
from pocketbizz.app.printing import (
    PrinterSettings,
    PrinterUnavailable,
    escpos,
    send,
)
from pocketbizz.app.screens.photos import thumbnail
from pocketbizz.app.session import Session

METHODS = (("cash", "cash"), ("card", "card"), ("ewallet", "ewallet"))  # (api value, i18n key)
CHANNELS = (("walk-in", "walk_in"), ("online", "online"), ("delivery", "delivery"))
# A sale paid later through a ToyyibPay link (create_sale's payment_method for it), offered
# when the business has set up its own ToyyibPay account (`payment-settings`).
PAYMENT_LINK = "toyyibpay"


def _icon_button(icon: ft.IconData, name: str, on_click: Callable[[], None]) -> ft.Control:
    """An icon button named for screen readers (a tooltip does not name it in Flutter's
    semantics tree)."""
    return ft.Semantics(
        content=ft.IconButton(icon, tooltip=name, on_click=lambda e: on_click()),
        label=name,
        button=True,
        container=True,
        exclude_semantics=True,
    )


class SellScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.cart: dict[str, Line] = {}
        # Each line's discount as typed: (is a percentage, value); turned into RM per quantity.
        self.line_discounts: dict[str, tuple[bool, Decimal]] = {}
        self.method = "cash"
        self.channel = "walk-in"
        self.discount = Decimal("0.00")
        self.customer_id: str | None = None
        self.customers: list[dict[str, Any]] = []
        self.links_configured = False
        # The payment-link sale being recorded: one client_ref and time for every attempt, so
        # a retry after a lost answer gets the first sale back instead of a second one.
        self.link_attempt: tuple[str, str] | None = None
        self.link_area = ft.Column(spacing=6)
        self.category: str | None = None
        self.query = ""
        self.grid = ft.GridView(
            max_extent=170, child_aspect_ratio=1.2, spacing=8, run_spacing=8, expand=True
        )
        self.cart_column = ft.Column(spacing=4)
        self.catalogue = ft.Column(expand=3)
        self.checkout = ft.Column(spacing=8)
        self.received = ft.TextField()
        self.figures = ft.Column()
        self.complete = ft.Button()
        self.root = ft.Container(expand=True)

    # -- building ------------------------------------------------------------------------
    def view(self) -> ft.Control:
        search = ft.TextField(
            label=self.t("search"),
            prefix_icon=ft.Icons.SEARCH,
            dense=True,
            on_change=self._search,
        )
        self.categories = ft.Row(wrap=True, spacing=4)
        self.catalogue.controls = [search, self.categories, self.grid]
        catalogue = self.catalogue
        cart = ft.Column(
            [self.cart_column, ft.Divider(), self.checkout], expand=2, scroll=ft.ScrollMode.AUTO
        )
        if self.session.wide:
            self.root.content = ft.Row([catalogue, ft.VerticalDivider(width=1), cart], expand=True)
        else:
            self.root.content = ft.Column([catalogue, ft.Divider(height=1), cart], expand=True)
        self._render_grid()
        self._render_cart()
        return self.root

    def _tile(self, product: Product) -> ft.Control:
        stock_text = self.t("in_stock", stock=f"{product.current_stock.normalize():f}")
        label: ft.Control = ft.Column(
            [
                ft.Text(product.name, weight=ft.FontWeight.BOLD, max_lines=2),
                ft.Text(format_rm(product.sale_price)),
            ],
            spacing=2,
            expand=True,
        )
        if product.photo_url is not None:
            # The photo sits beside the name; it is out of the accessibility tree, so the
            # tile's name stays the product's name.
            label = ft.Row([thumbnail(product, 40), label], spacing=8)
        tap_area = ft.Container(label, on_click=lambda e, p=product: self._add(p))
        return ft.Container(
            ft.Column(
                [
                    # The button's accessible name is exactly the product's name (issue 9
                    # item 6); the stock below stays readable as its own text.
                    ft.Semantics(
                        content=tap_area,
                        label=product.name,
                        button=True,
                        container=True,
                        exclude_semantics=True,
                    ),
                    ft.Text(
                        stock_text,
                        size=12,
                        color=ft.Colors.ERROR if product.low_stock else None,
                    ),
                ],
                spacing=2,
            ),
            padding=10,
            border_radius=8,
            bgcolor=ft.Colors.SECONDARY_CONTAINER,
        )

    def _render_grid(self) -> None:
        query = self.query.casefold()
        self.grid.controls = [
            self._tile(p)
            for p in self.session.products
            if (
                not query
                or query in p.name.casefold()
                or query in p.sku.casefold()
                or query == (p.barcode or "").casefold()
            )
            and (self.category is None or p.category == self.category)
        ]
        names = sorted({p.category for p in self.session.products if p.category})
        self.categories.controls = (
            [
                (ft.FilledButton if value == self.category else ft.OutlinedButton)(
                    label, on_click=lambda e, v=value: self._pick_category(v)
                )
                for value, label in [(None, self.t("all")), *((n, n) for n in names)]
            ]
            if names
            else []
        )

    def _pick_category(self, category: str | None) -> None:
        self.category = category
        self._render_grid()
        self.session.page.update()

    def _render_cart(self) -> None:
        t = self.t
        self.catalogue.visible = True
        rows: list[ft.Control] = []
        for line in self.cart.values():
            rows.append(
                ft.Row(
                    [
                        ft.Text(f"{line.name}", expand=True),
                        _icon_button(
                            ft.Icons.DISCOUNT_OUTLINED,
                            t("line_discount_for", name=line.name),
                            partial(self._edit_line_discount, line.product_id),
                        ),
                        _icon_button(
                            ft.Icons.REMOVE,
                            f"- {line.name}",
                            partial(self._change, line.product_id, -1),
                        ),
                        ft.Text(str(line.quantity)),
                        _icon_button(
                            ft.Icons.ADD,
                            f"+ {line.name}",
                            partial(self._change, line.product_id, 1),
                        ),
                        ft.Text(format_rm(line.subtotal), width=90, text_align=ft.TextAlign.RIGHT),
                    ]
                )
            )
            if line.discount:
                rows.append(self._line_discount_text(line))
        if not rows:
            rows.append(ft.Text(t("cart_empty"), italic=True))
        self.cart_column.controls = rows
        due = self._due(cash=False)
        figures: list[ft.Control] = []
        if due.items_discount:
            figures.append(self._figure(t("line_discounts"), -due.items_discount))
        figures.append(self._figure(t("total"), due.due))
        self.checkout.controls = [
            *figures,
            ft.Button(
                f"{t('charge')}",
                on_click=self._charge,
                disabled=not self.cart or not self._lines_valid(),
                width=float("inf"),
            ),
        ]

    def _line_discount_text(self, line: Line) -> ft.Control:
        """Under the line: its discount (with the percentage when typed as one), or why it
        cannot stand (larger than the line after the quantity went down)."""
        t = self.t
        if line.subtotal < 0:
            return ft.Text(t("line_discount_too_large"), color=ft.Colors.ERROR, size=12)
        percent, value = self.line_discounts[line.product_id]
        label = f"{t('discount')} {value.normalize():f}%" if percent else t("discount")
        return ft.Row(
            [
                ft.Text(label, size=12, expand=True, italic=True),
                ft.Text(format_rm(-line.discount), size=12),
            ]
        )

    def _lines_valid(self) -> bool:
        return all(line.subtotal >= 0 for line in self.cart.values())

    def _figure(self, label: str, amount: Decimal, *, bold: bool = False) -> ft.Control:
        weight = ft.FontWeight.BOLD if bold else None
        return ft.Row(
            [
                ft.Text(label, expand=True, weight=weight),
                ft.Text(format_rm(amount), weight=weight),
            ]
        )

    # -- what the sale comes to ----------------------------------------------------------
    def _tax_rate(self, product: Product | None) -> Decimal:
        """The SST percent create_sale applies to the product: none unless the business
        charges SST, then the product's own rate or the business's."""
        profile = self.session.profile
        if not profile.get("sst_enabled"):
            return Decimal("0")
        if product is not None and product.tax_rate is not None:
            return product.tax_rate
        return Decimal(str(profile.get("sst_rate") or "0"))

    def _line(self, product_id: str, name: str, unit_price: Decimal, quantity: int) -> Line:
        product = next((p for p in self.session.products if p.id == product_id), None)
        gross = Line(product_id, name, unit_price, quantity).gross
        percent, value = self.line_discounts.get(product_id, (False, Decimal("0.00")))
        return Line(
            product_id,
            name,
            unit_price,
            quantity,
            discount=line_discount(gross, value, percent=percent),
            tax_rate=self._tax_rate(product),
        )

    def _due(self, *, cash: bool) -> Due:
        return amount_due(
            list(self.cart.values()),
            cash=cash,
            cash_rounding=self.session.cash_rounding,
            discount=self.discount,
            prices_include_tax=bool(self.session.profile.get("prices_include_tax")),
        )

    async def refresh_stock(self) -> None:
        """Stock changed elsewhere: redraw the tiles, keep the cart being rung up."""
        await self.session.load_products()
        self._render_grid()

    # -- cart ----------------------------------------------------------------------------
    def _add(self, product: Product) -> None:
        line = self.cart.get(product.id)
        quantity = (line.quantity if line else 0) + 1
        self.cart[product.id] = self._line(product.id, product.name, product.sale_price, quantity)
        self._render_cart()
        self.session.page.update()

    def _change(self, product_id: str, delta: int) -> None:
        line = self.cart[product_id]
        if line.quantity + delta <= 0:
            del self.cart[product_id]
            self.line_discounts.pop(product_id, None)
        else:
            # A percentage follows the quantity; an amount stays and may no longer fit.
            self.cart[product_id] = self._line(
                line.product_id, line.name, line.unit_price, line.quantity + delta
            )
        self._render_cart()
        self.session.page.update()

    def _edit_line_discount(self, product_id: str) -> None:
        """The line's discount in a dialog: RM or %, checked before it is applied (at most the
        line's amount, at most 100 %, whole sen)."""
        t = self.t
        line = self.cart[product_id]
        percent, value = self.line_discounts.get(product_id, (False, Decimal("0.00")))
        mode = {"percent": percent}
        field = ft.TextField(
            label=t("line_discount"),
            value=f"{value}" if value else "",
            keyboard_type=ft.KeyboardType.NUMBER,
            autofocus=True,
        )
        kinds = ft.Row()

        def render_kinds() -> None:
            kinds.controls = [
                (ft.FilledButton if mode["percent"] == is_percent else ft.OutlinedButton)(
                    label, on_click=lambda e, p=is_percent: choose(p)
                )
                for is_percent, label in ((False, "RM"), (True, "%"))
            ]
            field.prefix = None if mode["percent"] else ft.Text("RM ")
            field.suffix = ft.Text("%") if mode["percent"] else None

        def choose(is_percent: bool) -> None:
            mode["percent"] = is_percent
            render_kinds()
            self.session.page.update()

        def apply(e: ft.Event[ft.Button]) -> None:
            text = field.value or ""
            typed = parse_percent(text) if mode["percent"] else parse_amount(text)
            if typed is None:
                field.error = t("invalid_percent" if mode["percent"] else "invalid_amount")
            elif line_discount(line.gross, typed, percent=mode["percent"]) > line.gross:
                field.error = t("line_discount_too_large")
            else:
                self._set_line_discount(product_id, mode["percent"], typed)
                self.session.page.pop_dialog()
                return
            self.session.page.update()

        def remove(e: ft.Event[ft.TextButton]) -> None:
            self._set_line_discount(product_id, False, Decimal("0.00"))
            self.session.page.pop_dialog()

        render_kinds()
        self.session.page.show_dialog(
            ft.AlertDialog(
                title=ft.Text(t("line_discount_for", name=line.name)),
                content=ft.Column([kinds, field], tight=True, width=300),
                actions=[
                    ft.TextButton(t("remove_discount"), on_click=remove),
                    ft.TextButton(t("cancel"), on_click=lambda e: self.session.page.pop_dialog()),
                    ft.Button(t("apply"), on_click=apply),
                ],
            )
        )

    def _set_line_discount(self, product_id: str, percent: bool, value: Decimal) -> None:
        if value:
            self.line_discounts[product_id] = (percent, value)
        else:
            self.line_discounts.pop(product_id, None)
        line = self.cart[product_id]
        self.cart[product_id] = self._line(product_id, line.name, line.unit_price, line.quantity)
        self._render_cart()
        self.session.page.update()

    def _search(self, e: ft.Event[ft.TextField]) -> None:
        self.query = e.control.value or ""
        self._render_grid()
        self.session.page.update()

    # -- payment -------------------------------------------------------------------------
    async def _charge(self, e: ft.Event[ft.Button]) -> None:
        try:
            # Offline the sheet opens at once, without the client's retries (7 s).
            self.customers = await self.session.backend.customers(retry=False)
        except ApiFailure:
            self.customers = []  # offline: the sale goes without a customer
        try:
            self.links_configured = bool(
                (await self.session.backend.payment_settings()).get("configured")
            )
        except ApiFailure:
            self.links_configured = False  # offline, or an older server: no links
        if self.method == PAYMENT_LINK and not self.links_configured:
            self.method = "cash"
        self._render_payment()
        self.session.page.update()

    def _choice_row(
        self, choices: tuple[tuple[str, str], ...], current: str, pick: Callable[[str], None]
    ) -> ft.Row:
        return ft.Row(
            [
                (ft.FilledButton if value == current else ft.OutlinedButton)(
                    self.t(key), on_click=lambda e, v=value: pick(v)
                )
                for value, key in choices
            ],
            wrap=True,
        )

    def _render_payment(self) -> None:
        t = self.t
        # On a phone the payment takes the screen; the tiles come back with the next sale.
        self.catalogue.visible = self.session.wide
        channels = self._choice_row(CHANNELS, self.channel, self._choose_channel)
        methods = self._choice_row(
            (*METHODS, (PAYMENT_LINK, "payment_link")) if self.links_configured else METHODS,
            self.method,
            self._choose,
        )
        chosen = next((c for c in self.customers if str(c["id"]) == self.customer_id), None)
        customer = ft.OutlinedButton(
            f"{t('customer')}: {chosen['name'] if chosen else '-'}",
            icon=ft.Icons.PERSON,
            on_click=self._pick_customer,
            visible=bool(self.customers),
        )
        discount = ft.TextField(
            label=t("discount"),
            prefix=ft.Text("RM "),
            value=f"{self.discount}" if self.discount else "",
            keyboard_type=ft.KeyboardType.NUMBER,
            on_change=self._discount_changed,
        )
        self.received = ft.TextField(
            label=t("cash_received"),
            prefix=ft.Text("RM "),
            keyboard_type=ft.KeyboardType.NUMBER,
            on_change=self._received,
            visible=self.method == "cash",
        )
        self.figures = ft.Column(spacing=4)
        self.complete = ft.Button(t("complete_sale"), on_click=self._complete, width=float("inf"))
        self._render_figures()
        self.checkout.controls = [
            channels,
            customer,
            discount,
            methods,
            self.received,
            self.figures,
            self.complete,
        ]

    def _choose_channel(self, channel: str) -> None:
        self.channel = channel
        self._render_payment()
        self.session.page.update()

    def _pick_customer(self, e: ft.Event[ft.OutlinedButton]) -> None:
        """The customer list in a dialog, searchable by name or phone."""
        t = self.t
        results = ft.Column(scroll=ft.ScrollMode.AUTO, height=320, width=320)

        def choose(customer_id: str | None) -> None:
            self.customer_id = customer_id
            self.session.page.pop_dialog()
            self._render_payment()
            self.session.page.update()

        def show(query: str) -> None:
            q = query.casefold()
            tiles: list[ft.Control] = [
                ft.ListTile(
                    title=ft.Text(str(c["name"])),
                    subtitle=ft.Text(str(c.get("phone") or "")),
                    on_click=lambda e, cid=str(c["id"]): choose(cid),
                )
                for c in self.customers
                if q in str(c["name"]).casefold() or q in str(c.get("phone") or "")
            ]
            results.controls = tiles[:50]

        def search(e: ft.Event[ft.TextField]) -> None:
            show(e.control.value or "")
            results.update()

        show("")
        self.session.page.show_dialog(
            ft.AlertDialog(
                title=ft.Text(t("customer")),
                content=ft.Column(
                    [
                        ft.TextField(
                            label=t("search"),
                            on_change=search,
                        ),
                        results,
                    ],
                    tight=True,
                ),
                actions=[ft.TextButton(t("no_customer"), on_click=lambda e: choose(None))],
            )
        )

    def _discount_changed(self, e: ft.Event[ft.TextField]) -> None:
        amount = parse_amount(e.control.value or "")
        self.discount = amount if amount is not None else Decimal("0.00")
        self._render_figures()
        self.session.page.update()

    def _render_figures(self) -> None:
        """Total, rounding, change: redrawn on each keystroke, leaving the field (and its
        focus) alone."""
        t = self.t
        cash = self.method == "cash"
        due = self._due(cash=cash)
        rows: list[ft.Control] = []
        if due.items_discount:
            rows.append(self._figure(t("items"), due.gross))
            rows.append(self._figure(t("line_discounts"), -due.items_discount))
        rows.append(self._figure(t("subtotal"), due.total))
        if due.discount:
            rows.append(self._figure(t("discount"), -due.discount))
        if self.session.profile.get("sst_enabled"):
            included = bool(self.session.profile.get("prices_include_tax"))
            rows.append(self._figure(t("sst_included" if included else "sst"), due.tax))
        if due.rounding:
            rows.append(self._figure(t("rounding"), due.rounding))
        rows.append(self._figure(t("total"), due.due, bold=True))
        self.complete.disabled = due.due < 0 or due.discount > due.total
        if due.due < 0 or due.discount > due.total:
            rows.append(ft.Text(t("discount_too_large"), color=ft.Colors.ERROR))
        elif cash:
            amount = parse_amount(self.received.value or "")
            if amount is not None and amount >= due.due:
                rows.append(
                    ft.Row(
                        [
                            ft.Text(t("change"), expand=True, weight=ft.FontWeight.BOLD),
                            ft.Text(format_rm(amount - due.due), weight=ft.FontWeight.BOLD),
                        ]
                    )
                )
            elif amount is not None:
                rows.append(ft.Text(t("not_enough_cash"), color=ft.Colors.ERROR))
            self.complete.disabled = amount is None or amount < due.due
        self.figures.controls = rows

    def _choose(self, method: str) -> None:
        self.method = method
        self._render_payment()
        self.session.page.update()

    def _received(self, e: ft.Event[ft.TextField]) -> None:
        self._render_figures()
        self.session.page.update()

    async def _complete(self, e: ft.Event[ft.Button]) -> None:
        e.control.disabled = True
        self.session.page.update()
        items = [
            {"product_id": line.product_id, "quantity": line.quantity}
            | ({"discount_amount": str(line.discount)} if line.discount else {})
            for line in self.cart.values()
        ]
        if self.method == PAYMENT_LINK:
            await self._complete_with_link(e.control, items)
            return
        try:
            sale = await self.session.sell(
                items,
                self.method,
                channel=self.channel,
                discount=str(self.discount),
                customer_id=self.customer_id,
            )
        except ApiFailure as exc:
            self.session.notify(self.t("error", error=str(exc)))
            e.control.disabled = False
            self.session.page.update()
            return
        if sale is None:
            self._show_offline()
            return
        await self.session.load_products()
        self._show_done(
            str(sale["id"]), str(sale["sale_number"]), Decimal(str(sale["final_amount"]))
        )

    async def _complete_with_link(self, button: ft.Button, items: list[dict[str, Any]]) -> None:
        """A sale to be paid through a link: recorded unpaid (`pending`), then the server's
        ToyyibPay bill for its amount, to share. Online only — the link comes from the server —
        so it skips the offline outbox and says so when the server is out of reach."""
        if self.link_attempt is None:
            self.link_attempt = (str(uuid.uuid4()), datetime.now(UTC).isoformat())
        client_ref, sold_at = self.link_attempt
        try:
            sale = await self.session.backend.create_sale(
                items,
                payment_method=PAYMENT_LINK,
                payment_status="pending",
                channel=self.channel,
                discount=str(self.discount),
                customer_id=self.customer_id,
                client_ref=client_ref,
                sold_at=sold_at,
            )
        except ApiFailure as exc:
            message = self.t("link_needs_connection") if isinstance(exc, Offline) else str(exc)
            self.session.notify(self.t("error", error=message))
            button.disabled = False
            self.session.page.update()
            return
        self.link_attempt = None
        await self.session.load_products()
        self.link_area.controls = [ft.ProgressRing(width=24, height=24)]
        self._show_done(
            str(sale["id"]),
            str(sale["sale_number"]),
            to_money(sale["final_amount"]),
            payment_link=True,
        )
        await self._make_link(str(sale["id"]), str(sale["sale_number"]))

    async def _make_link(self, sale_id: str, number: str) -> None:
        t = self.t
        try:
            link = await self.session.backend.payment_link(sale_id)
        except ApiFailure as exc:
            # The sale stands (unpaid); the link can be asked for again.
            self.link_area.controls = [
                ft.Text(t("error", error=str(exc)), color=ft.Colors.ERROR),
                ft.Button(
                    t("create_link"),
                    icon=ft.Icons.LINK,
                    on_click=lambda e: self.session.page.run_task(self._make_link, sale_id, number),
                ),
            ]
            self.session.page.update()
            return
        url = str(link["payment_url"])
        amount = format_rm(to_money(link["amount"]))

        async def copy(e: ft.Event[ft.OutlinedButton]) -> None:
            await ft.Clipboard().set(url)
            self.session.notify(t("copied"))

        async def share(e: ft.Event[ft.OutlinedButton]) -> None:
            # To the customer's WhatsApp when the sale has one, else WhatsApp's own chat
            # picker (wa.me without a number).
            business = str(self.session.profile.get("business_name") or "")
            text = urllib.parse.quote(f"{business} {number}: {amount}\n{url}")
            await ft.UrlLauncher().launch_url(
                f"https://wa.me/{self._customer_phone() or ''}?text={text}"
            )

        self.link_area.controls = [
            ft.Text(t("payment_link_for", amount=amount), weight=ft.FontWeight.BOLD),
            ft.Text(url),  # (selectable text reads as an empty textbox to screen readers)
            ft.Text(t("payment_link_unpaid"), size=12, italic=True),
            ft.Row(
                [
                    ft.OutlinedButton(t("copy"), icon=ft.Icons.COPY, on_click=copy),
                    ft.OutlinedButton("WhatsApp", icon=ft.Icons.SHARE, on_click=share),
                ],
                wrap=True,
            ),
        ]
        self.session.page.update()

    def _show_offline(self) -> None:
        t = self.t
        self.cart.clear()
        self.line_discounts.clear()
        self.cart_column.controls = [
            ft.Icon(ft.Icons.CLOUD_QUEUE, size=40),
            ft.Text(t("saved_offline"), size=16, weight=ft.FontWeight.BOLD),
        ]
        self.checkout.controls = [ft.Button(t("new_sale"), on_click=self._new_sale)]
        self.session.page.update()

    async def _print(self, sale_id: str) -> None:
        t = self.t
        printer = PrinterSettings.from_profile(self.session.profile.get("settings") or {})
        if printer is None:
            self.session.notify(t("no_printer"))
            return
        try:
            lines = await self.session.backend.receipt_lines(sale_id, printer.columns)
            await send(printer, escpos(lines))
        except (ApiFailure, PrinterUnavailable) as exc:
            self.session.page.show_dialog(
                ft.SnackBar(
                    ft.Text(t("print_failed", error=str(exc))),
                    action=t("retry"),
                    on_action=lambda e: self.session.page.run_task(self._print, sale_id),
                    duration=ft.Duration(seconds=10),
                )
            )
            return
        self.session.notify(t("printed"))

    def _customer_phone(self) -> str | None:
        customer = next((c for c in self.customers if str(c["id"]) == self.customer_id), None)
        digits = "".join(ch for ch in str((customer or {}).get("phone") or "") if ch.isdigit())
        return digits or None

    async def _whatsapp(self, sale_id: str) -> None:
        """The receipt as a WhatsApp message to the customer, through the wa.me link (the
        customer's WhatsApp opens with the text ready to send)."""
        phone = self._customer_phone()
        if phone is None:
            return
        try:
            lines = await self.session.backend.receipt_lines(sale_id, 32)
        except ApiFailure as exc:
            self.session.notify(self.t("error", error=str(exc)))
            return
        text = urllib.parse.quote("\n".join(line.rstrip() for line in lines))
        await ft.UrlLauncher().launch_url(f"https://wa.me/{phone}?text={text}")

    def _show_done(
        self, sale_id: str, number: str, final: Decimal, *, payment_link: bool = False
    ) -> None:
        t = self.t
        self.cart.clear()
        self.line_discounts.clear()
        if not payment_link:
            self.link_area.controls = []
        self._render_grid()
        self.cart_column.controls = [
            ft.Icon(ft.Icons.CHECK_CIRCLE, color=ft.Colors.GREEN, size=40),
            ft.Text(t("sale_done", number=number), size=20, weight=ft.FontWeight.BOLD),
            ft.Text(format_rm(final)),
        ]
        self.checkout.controls = [
            ft.Row(
                [
                    ft.OutlinedButton(
                        t("print"),
                        icon=ft.Icons.PRINT,
                        on_click=lambda e: self.session.page.run_task(self._print, sale_id),
                    ),
                    ft.OutlinedButton(
                        "WhatsApp",
                        icon=ft.Icons.CHAT,
                        on_click=lambda e: self.session.page.run_task(self._whatsapp, sale_id),
                        # A link sale shares its link instead; the receipt follows payment.
                        visible=self._customer_phone() is not None and not payment_link,
                    ),
                    ft.Button(t("new_sale"), on_click=self._new_sale),
                ],
                wrap=True,
            ),
            self.link_area,
        ]
        self.session.page.update()

    def _new_sale(self, e: ft.Event[ft.Button]) -> None:
        self.link_attempt = None
        self.method = "cash"
        self.channel = "walk-in"
        self.discount = Decimal("0.00")
        self.customer_id = None
        self._render_cart()
        self.session.page.update()


async def build(session: Session) -> ft.Control:
    await session.load_products()
    screen = SellScreen(session)
    session.on_data_change = screen.refresh_stock
    return screen.view()
