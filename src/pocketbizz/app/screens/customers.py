"""Customers: the list and adding one (name, phone for WhatsApp receipts)."""

from __future__ import annotations

import flet as ft

from pocketbizz.app.session import Session


async def build(session: Session) -> ft.Control:
    t = session.t
    root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)
    name = ft.TextField(label=t("name"), expand=True)
    phone = ft.TextField(label=t("phone"), keyboard_type=ft.KeyboardType.PHONE, expand=True)

    async def render() -> None:
        customers = await session.backend.customers()
        rows: list[ft.Control] = [
            ft.Text(t("customers"), size=22, weight=ft.FontWeight.BOLD),
            ft.Row([name, phone]),
            ft.Button(t("add_customer"), icon=ft.Icons.PERSON_ADD, on_click=add),
        ]
        if not customers:
            rows.append(ft.Text(t("no_customers"), italic=True))
        rows += [
            ft.ListTile(title=ft.Text(c["name"]), subtitle=ft.Text(c.get("phone") or ""))
            for c in customers
        ]
        root.controls = rows

    async def add(e: ft.Event[ft.Button]) -> None:
        if not (name.value or "").strip():
            name.error = t("required")
            session.page.update()
            return
        if await session.guarded(
            lambda: session.backend.add_customer(
                (name.value or "").strip(), (phone.value or "").strip() or None
            )
        ):
            name.value, phone.value, name.error = "", "", None
            await render()
            session.page.update()

    await render()
    return root
