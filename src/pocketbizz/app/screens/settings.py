"""Settings: business profile, cash rounding, language; sign out."""

from __future__ import annotations

from typing import Any

import flet as ft

from pocketbizz.app.api import ApiFailure
from pocketbizz.app.i18n import LANGUAGES, Translator
from pocketbizz.app.printing import COLUMNS, DEFAULT_PORT
from pocketbizz.app.session import Session


async def build(session: Session) -> ft.Control:
    t = session.t
    profile = session.profile
    name = ft.TextField(label=t("business_name"), value=profile.get("business_name") or "")
    phone = ft.TextField(label=t("phone"), value=profile.get("phone") or "")
    rounding = ft.Switch(label=t("rounding"), value=bool(profile.get("cash_rounding", True)))
    printer = (profile.get("settings") or {}).get("printer") or {}
    printer_host = ft.TextField(label=t("printer_host"), value=printer.get("host") or "")
    printer_port = ft.TextField(
        label=t("printer_port"),
        value=str(printer.get("port") or DEFAULT_PORT),
        keyboard_type=ft.KeyboardType.NUMBER,
    )
    paper = ft.RadioGroup(
        ft.Row([ft.Radio(value=str(mm), label=f"{mm} mm") for mm in COLUMNS]),
        value=str(printer.get("paper_mm") or 58),
    )

    async def save(e: ft.Event[ft.Button]) -> None:
        port = (printer_port.value or "").strip()
        printer_settings = {
            "host": (printer_host.value or "").strip(),
            "port": int(port) if port.isdigit() else DEFAULT_PORT,
            "paper_mm": int(paper.value or 58),
        }
        changes: dict[str, Any] = {
            "business_name": (name.value or "").strip() or profile.get("business_name"),
            "phone": (phone.value or "").strip() or None,
            "cash_rounding": bool(rounding.value),
            "settings": {**(profile.get("settings") or {}), "printer": printer_settings},
        }
        if await session.guarded(
            lambda: session.backend.update_business(str(profile["id"]), changes)
        ):
            profile.update(changes)
            session.notify(t("saved"))

    async def choose_language(e: ft.Event[ft.RadioGroup]) -> None:
        language = e.control.value or "en"
        # Kept in the business profile's settings, so every device of the shop follows it.
        settings = {**(profile.get("settings") or {}), "language": language}
        if await session.guarded(
            lambda: session.backend.update_business(str(profile["id"]), {"settings": settings})
        ):
            profile["settings"] = settings
            session.t = Translator(language)
            await session.reopen(6)

    async def sign_out(e: ft.Event[ft.TextButton]) -> None:
        await session.backend.sign_out()
        await session.signed_out()

    subscription = ft.Column(spacing=4)
    try:
        usage = await session.backend.subscription()
    except ApiFailure as exc:
        subscription.controls = [ft.Text(t("error", error=str(exc)))]
    else:
        plan = usage["plan"]

        def used(count: int, limit: int | None) -> str:
            return f"{count} / {limit}" if limit is not None else f"{count} / {t('unlimited')}"

        subscription.controls = [
            ft.Text(t("plan", name=plan.get("name") or plan["code"])),
            ft.Text(
                t(
                    "products_used",
                    used=used(usage["active_products"], plan.get("max_active_products")),
                )
            ),
            ft.Text(
                t(
                    "sales_used",
                    used=used(usage["sales_this_month"], plan.get("max_sales_per_month")),
                )
            ),
        ]

    language = ft.RadioGroup(
        ft.Column([ft.Radio(value=code, label=label) for code, label in LANGUAGES.items()]),
        value=session.t.language,
        on_change=choose_language,
    )
    return ft.Column(
        [
            ft.Text(t("settings"), size=22, weight=ft.FontWeight.BOLD),
            ft.Text(t("business_profile"), weight=ft.FontWeight.BOLD),
            name,
            phone,
            rounding,
            ft.Text(t("printer"), weight=ft.FontWeight.BOLD),
            printer_host,
            printer_port,
            ft.Text(t("paper_width")),
            paper,
            ft.Button(t("save"), on_click=save),
            ft.Divider(),
            ft.Text(t("subscription"), weight=ft.FontWeight.BOLD),
            subscription,
            ft.Divider(),
            ft.Text(t("language"), weight=ft.FontWeight.BOLD),
            language,
            ft.Divider(),
            ft.TextButton(t("sign_out"), icon=ft.Icons.LOGOUT, on_click=sign_out),
        ],
        scroll=ft.ScrollMode.AUTO,
        expand=True,
    )
