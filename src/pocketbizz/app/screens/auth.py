"""Sign in / create account, then the one-screen business setup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import flet as ft

from pocketbizz.app.api import ApiFailure
from pocketbizz.app.session import Session

BUSINESS_TYPES = ("bakery", "food stall", "cafe", "retail", "services", "other")


def sign_in_view(session: Session, on_signed_in: Callable[[], Awaitable[None]]) -> ft.Control:
    t = session.t
    email = ft.TextField(label=t("email"), keyboard_type=ft.KeyboardType.EMAIL, width=360)
    password = ft.TextField(label=t("password"), password=True, can_reveal_password=True, width=360)
    message = ft.Text("", color=ft.Colors.ERROR)

    async def submit(create: bool) -> None:
        if not email.value or not password.value:
            message.value = t("required")
            session.page.update()
            return
        try:
            if create:
                await session.backend.sign_up(email.value.strip(), password.value)
            else:
                await session.backend.sign_in(email.value.strip(), password.value)
        except ApiFailure as exc:
            message.value = t("sign_in_failed", error=str(exc))
            session.page.update()
            return
        await on_signed_in()

    async def sign_in(e: ft.Event[ft.Button]) -> None:
        await submit(create=False)

    async def create(e: ft.Event[ft.TextButton]) -> None:
        await submit(create=True)

    return ft.SafeArea(
        ft.Container(
            ft.Column(
                [
                    ft.Text(t("app_title"), size=32, weight=ft.FontWeight.BOLD),
                    email,
                    password,
                    message,
                    ft.Button(t("sign_in"), on_click=sign_in, width=360),
                    ft.TextButton(t("create_account"), on_click=create),
                ],
                horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                spacing=16,
            ),
            alignment=ft.Alignment.CENTER,
            padding=24,
        ),
        expand=True,
    )


def setup_view(session: Session, on_done: Callable[[], Awaitable[None]]) -> ft.Control:
    """Business name, phone and type: what the receipts and the dashboard need first."""
    t = session.t
    name = ft.TextField(label=t("business_name"), width=360)
    phone = ft.TextField(label=t("phone"), keyboard_type=ft.KeyboardType.PHONE, width=360)
    kind = ft.Dropdown(
        label=t("business_type"),
        options=[ft.DropdownOption(key=k, text=k.capitalize()) for k in BUSINESS_TYPES],
        width=360,
    )

    async def save(e: ft.Event[ft.Button]) -> None:
        if not (name.value or "").strip():
            name.error = t("required")
            session.page.update()
            return
        changes = {
            "business_name": (name.value or "").strip(),
            "phone": (phone.value or "").strip() or None,
            "business_type": kind.value,
        }
        if await session.guarded(
            lambda: session.backend.update_business(str(session.profile["id"]), changes)
        ):
            session.profile.update(changes)
            await on_done()

    return ft.SafeArea(
        ft.Container(
            ft.Column(
                [
                    ft.Text(t("setup_title"), size=22, weight=ft.FontWeight.BOLD),
                    name,
                    phone,
                    kind,
                    ft.Button(t("continue"), on_click=save, width=360),
                ],
                horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                spacing=16,
            ),
            alignment=ft.Alignment.CENTER,
            padding=24,
        ),
        expand=True,
    )
