"""Customers: the list, adding one (name, phone for WhatsApp receipts), editing one, and each
customer's purchase history with what they have spent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import flet as ft

from pocketbizz.app.money import format_rm
from pocketbizz.app.session import Session


class CustomersScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)
        self.name = ft.TextField(label=self.t("name"), expand=True)
        self.phone = ft.TextField(
            label=self.t("phone"), keyboard_type=ft.KeyboardType.PHONE, expand=True
        )
        # The customer on show (edit form and history), or None for the list.
        self.open_customer: dict[str, Any] | None = None
        self.history = ft.Column()

    async def refresh(self) -> None:
        """A sale elsewhere may be this customer's: re-read the history on show (never the
        form under the owner's typing); the list is left alone while the add form is used."""
        if self.open_customer is not None:
            await self._render_history(str(self.open_customer["id"]))
        elif not (self.name.value or self.phone.value):
            await self.render_list()

    async def render_list(self) -> None:
        t = self.t
        self.open_customer = None
        customers = await self.session.backend.customers()
        if self.open_customer is not None:
            return  # a customer was opened while the list was read: that view stays
        rows: list[ft.Control] = [
            ft.Text(t("customers"), size=22, weight=ft.FontWeight.BOLD),
            ft.Row([self.name, self.phone]),
            ft.Button(t("add_customer"), icon=ft.Icons.PERSON_ADD, on_click=self._add),
        ]
        if not customers:
            rows.append(ft.Text(t("no_customers"), italic=True))
        rows += [
            ft.ListTile(
                title=ft.Text(c["name"]),
                subtitle=ft.Text(c.get("phone") or ""),
                on_click=lambda e, c=c: self.session.page.run_task(self.detail, c),
            )
            for c in customers
        ]
        self.root.controls = rows

    async def _add(self, e: ft.Event[ft.Button]) -> None:
        t, session = self.t, self.session
        name = (self.name.value or "").strip()
        if not name:
            self.name.error = t("required")
            session.page.update()
            return
        phone = (self.phone.value or "").strip() or None
        if await session.guarded(lambda: session.backend.add_customer(name, phone)):
            self.name.value, self.phone.value, self.name.error = "", "", None
            await self.render_list()
            session.page.update()

    async def detail(self, customer: dict[str, Any]) -> None:
        """Edit the customer; below, their sales (newest first) and the total spent."""
        t, session = self.t, self.session
        self.open_customer = customer
        backend = session.backend
        name = ft.TextField(label=t("name"), value=customer.get("name") or "")
        phone = ft.TextField(
            label=t("phone"),
            keyboard_type=ft.KeyboardType.PHONE,
            value=customer.get("phone") or "",
        )
        email = ft.TextField(
            label=t("email"),
            keyboard_type=ft.KeyboardType.EMAIL,
            value=customer.get("email") or "",
        )
        notes = ft.TextField(
            label=t("notes"), value=customer.get("notes") or "", multiline=True, min_lines=2
        )

        async def save(e: ft.Event[ft.Button]) -> None:
            clean = (name.value or "").strip()
            name.error = None if clean else t("required")
            if not clean:
                session.page.update()
                return
            changes = {
                "name": clean,
                "phone": (phone.value or "").strip() or None,
                "email": (email.value or "").strip() or None,
                "notes": (notes.value or "").strip() or None,
            }
            if await session.guarded(lambda: backend.update_customer(str(customer["id"]), changes)):
                session.notify(t("saved"))
                await self.render_list()
                session.page.update()

        async def back(e: ft.Event[ft.TextButton]) -> None:
            await self.render_list()
            session.page.update()

        await self._render_history(str(customer["id"]))
        if self.open_customer is not customer:
            return  # back to the list (or another customer) meanwhile
        self.root.controls = [
            ft.Text(t("edit_customer"), size=22, weight=ft.FontWeight.BOLD),
            name,
            phone,
            email,
            notes,
            ft.Row(
                [
                    ft.Button(t("save"), on_click=save),
                    ft.TextButton(t("back"), icon=ft.Icons.ARROW_BACK, on_click=back),
                ]
            ),
            ft.Divider(),
            self.history,
        ]
        session.page.update()

    async def _render_history(self, customer_id: str) -> None:
        t = self.t
        sales = await self.session.backend.customer_sales(customer_id)
        if self.open_customer is None or str(self.open_customer["id"]) != customer_id:
            return  # the owner moved on while the sales were read
        completed = [s for s in sales if s["status"] == "completed"]
        spent = sum((Decimal(str(s["final_amount"])) for s in completed), Decimal("0"))
        rows: list[ft.Control] = [
            ft.Text(t("purchase_history"), weight=ft.FontWeight.BOLD),
            ft.Text(t("total_spent", amount=format_rm(spent), count=len(completed))),
        ]
        if not sales:
            rows.append(ft.Text(t("no_purchases"), italic=True))
        for sale in sales:
            when = datetime.fromisoformat(str(sale["created_at"])).astimezone()
            voided = sale["status"] == "void"
            rows.append(
                ft.Text(
                    f"{when:%d/%m/%Y %H:%M}  {sale['sale_number']}  "
                    f"{format_rm(Decimal(str(sale['final_amount'])))}"
                    + (f"  ({t('voided')})" if voided else ""),
                    color=ft.Colors.OUTLINE if voided else None,
                )
            )
        self.history.controls = rows


async def build(session: Session) -> ft.Control:
    screen = CustomersScreen(session)
    await screen.render_list()
    session.on_data_change = screen.refresh
    return screen.root
