"""Settings: the business profile and logo, receipts (footer, SST, cash rounding, sale
numbers), the receipt printer, the subscription, the language; sign out.

Everything is kept in the tenant's `business_profiles` row, so every device of the shop
follows it: its own columns where the server uses the value (SST, rounding, sale numbers,
what the receipt prints), and `settings` (free-form JSON) for what only the app reads
(printer, receipt footer, language). The server checks what it owns — a refused sale-number
format comes back as the broken rule, shown under the field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import flet as ft

from pocketbizz.app.api import ApiFailure
from pocketbizz.app.i18n import LANGUAGES, Translator
from pocketbizz.app.printing import COLUMNS, DEFAULT_PORT
from pocketbizz.app.screens import subscription
from pocketbizz.app.screens.photos import pick_photo
from pocketbizz.app.session import Session

ADDRESS_PARTS = ("line1", "line2", "postcode", "city", "state")
# The sale-number format's named checks (migration 0009) → the message for each rule.
FORMAT_RULES = ("max_40_characters", "one_seq", "known_tokens", "month_needs_year")
FOOTER_MAX = 200


def _address_parts(address: Any) -> dict[str, str]:
    """The stored address (an object, or a string / list of lines from another client) as
    the form's parts."""
    if isinstance(address, dict):
        return {k: str(address.get(k) or "") for k in ADDRESS_PARTS}
    if isinstance(address, str):
        return {"line1": address}
    if isinstance(address, list):
        return dict(zip(("line1", "line2"), (str(line) for line in address), strict=False))
    return {}


def _rate(text: str) -> Decimal | None:
    """An SST rate as typed: 0 to 100 with at most two decimals (the column's range)."""
    try:
        rate = Decimal(text.strip().removesuffix("%").strip())
    except InvalidOperation:
        return None
    if not rate.is_finite() or not 0 <= rate <= 100 or rate != rate.quantize(Decimal("0.01")):
        return None
    return rate


def _broken_format_rule(message: str) -> str | None:
    """Which sale-number rule the server's check-violation message names, if one."""
    return next(
        (
            rule
            for rule in FORMAT_RULES
            if f"business_profiles_sale_number_format_{rule}" in message
        ),
        None,
    )


def _heading(text: str) -> ft.Control:
    return ft.Text(text, weight=ft.FontWeight.BOLD, size=16)


async def build(session: Session) -> ft.Control:
    t = session.t
    profile = session.profile
    settings: dict[str, Any] = dict(profile.get("settings") or {})

    # -- business profile --------------------------------------------------------------
    name = ft.TextField(label=t("business_name"), value=profile.get("business_name") or "")
    phone = ft.TextField(label=t("phone"), value=profile.get("phone") or "")
    parts = _address_parts(profile.get("address"))
    address = {
        key: ft.TextField(label=t(label), value=parts.get(key, ""))
        for key, label in (
            ("line1", "address"),
            ("line2", "address_line2"),
            ("postcode", "postcode"),
            ("city", "city"),
            ("state", "state"),
        )
    }
    logo_box = ft.Container(width=96, height=96)
    remove_logo = ft.TextButton(t("remove_logo"), icon=ft.Icons.DELETE_OUTLINE)

    def render_logo() -> None:
        url = profile.get("logo_url")
        logo_box.content = (
            ft.Image(
                src=url,
                width=96,
                height=96,
                fit=ft.BoxFit.CONTAIN,
                semantics_label=t("logo"),
                error_content=ft.Icon(ft.Icons.BROKEN_IMAGE_OUTLINED),
            )
            if url
            else ft.Container(
                ft.Icon(ft.Icons.STOREFRONT, size=40, color=ft.Colors.OUTLINE),
                alignment=ft.Alignment.CENTER,
                bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
                border_radius=8,
            )
        )
        remove_logo.visible = bool(url)

    picker: list[ft.FilePicker] = []

    async def upload_logo(e: ft.Event[ft.OutlinedButton]) -> None:
        if not picker:
            picker.append(ft.FilePicker())
        picked = await pick_photo(picker[0])
        if isinstance(picked, str):
            session.notify(t(picked))
            return
        if picked is None:
            return
        old = profile.get("logo_url")
        try:
            url = await session.backend.set_logo(
                str(profile["id"]), picked.data, picked.content_type, picked.extension, old
            )
        except ApiFailure as exc:
            session.notify(t("error", error=str(exc)))
            return
        profile["logo_url"] = url
        render_logo()
        session.notify(t("saved"))
        session.page.update()

    async def drop_logo(e: ft.Event[ft.TextButton]) -> None:
        old = profile.get("logo_url")
        if await session.guarded(lambda: session.backend.remove_logo(str(profile["id"]), old)):
            profile["logo_url"] = None
            render_logo()
            session.page.update()

    remove_logo.on_click = drop_logo
    render_logo()

    # -- receipts ------------------------------------------------------------------------
    footer = ft.TextField(
        label=t("receipt_footer"),
        value=str(settings.get("receipt_footer") or ""),
        multiline=True,
        max_lines=3,
        max_length=FOOTER_MAX,
    )
    sst_number = ft.TextField(label=t("sst_number"), value=profile.get("tax_number") or "")
    sst_rate = ft.TextField(
        label=t("sst_rate"),
        value=f"{Decimal(str(profile.get('sst_rate') or '6')).normalize():f}",
        keyboard_type=ft.KeyboardType.NUMBER,
    )
    sst_included = ft.Switch(
        label=t("prices_include_sst"), value=bool(profile.get("prices_include_tax"))
    )
    sst_fields = ft.Column([sst_number, sst_rate, sst_included])

    def sst_changed(e: ft.Event[ft.Switch]) -> None:
        sst_fields.visible = bool(e.control.value)
        session.page.update()

    # Off by default: most small sellers are not registered and must not charge SST.
    sst = ft.Switch(
        label=t("sst_registered"), value=bool(profile.get("sst_enabled")), on_change=sst_changed
    )
    sst_fields.visible = bool(sst.value)
    rounding = ft.Switch(label=t("rounding"), value=bool(profile.get("cash_rounding", True)))
    number_format = ft.TextField(
        label=t("sale_number_format"),
        value=profile.get("sale_number_format") or "",
        helper=t("sale_number_help"),
    )

    # -- printer -------------------------------------------------------------------------
    printer = settings.get("printer") or {}
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

    def checked() -> dict[str, Any] | None:
        """The row's new values, or None with the bad fields marked."""
        port_text = (printer_port.value or "").strip()
        port = int(port_text) if port_text.isdigit() else 0
        printer_port.error = None if 1 <= port <= 65535 else t("invalid_port")
        rate = _rate(sst_rate.value or "")
        sst_rate.error = None if rate is not None or not sst.value else t("invalid_rate")
        name.error = None if (name.value or "").strip() else t("required")
        number_format.error = None
        if printer_port.error or sst_rate.error or name.error:
            return None
        parts = {k: (field.value or "").strip() for k, field in address.items()}
        changes: dict[str, Any] = {
            "business_name": (name.value or "").strip(),
            "phone": (phone.value or "").strip() or None,
            "address": {k: v for k, v in parts.items() if v} or None,
            "sst_enabled": bool(sst.value),
            "tax_number": (sst_number.value or "").strip() or None,
            "prices_include_tax": bool(sst_included.value),
            "cash_rounding": bool(rounding.value),
            "sale_number_format": (number_format.value or "").strip(),
            "settings": {
                **settings,
                "receipt_footer": (footer.value or "").strip() or None,
                "printer": {
                    "host": (printer_host.value or "").strip(),
                    "port": port,
                    "paper_mm": int(paper.value or 58),
                },
            },
        }
        if rate is not None:
            changes["sst_rate"] = str(rate)
        return changes

    async def save(e: ft.Event[ft.Button]) -> None:
        changes = checked()
        if changes is None:
            session.notify(t("not_saved"))
            session.page.update()
            return
        try:
            await session.backend.update_business(str(profile["id"]), changes)
        except ApiFailure as exc:
            # The server owns the sale-number rules: name the one it says is broken.
            rule = _broken_format_rule(str(exc))
            number_format.error = t(f"format_{rule}") if rule else None
            session.notify(t("error", error=str(exc)))
            session.page.update()
            return
        profile.update(changes)
        settings.update(changes["settings"])
        session.keep_profile()  # the device opens with it while the server is down
        session.notify(t("saved"))
        session.page.update()

    async def choose_language(e: ft.Event[ft.RadioGroup]) -> None:
        language = e.control.value or "en"
        # Kept in the business profile's settings, so every device of the shop follows it.
        new_settings = {**(profile.get("settings") or {}), "language": language}
        if await session.guarded(
            lambda: session.backend.update_business(str(profile["id"]), {"settings": new_settings})
        ):
            profile["settings"] = new_settings
            session.t = Translator(language)
            session.keep_profile()
            await session.reopen(6)

    async def sign_out(e: ft.Event[ft.TextButton]) -> None:
        await session.backend.sign_out()
        await session.signed_out()

    language = ft.RadioGroup(
        ft.Column([ft.Radio(value=code, label=label) for code, label in LANGUAGES.items()]),
        value=session.t.language,
        on_change=choose_language,
    )
    return ft.Column(
        [
            ft.Text(t("settings"), size=22, weight=ft.FontWeight.BOLD),
            _heading(t("business_profile")),
            name,
            phone,
            *address.values(),
            ft.Text(t("logo")),
            ft.Row(
                [
                    logo_box,
                    ft.Column(
                        [
                            ft.OutlinedButton(
                                t("upload_logo"), icon=ft.Icons.UPLOAD, on_click=upload_logo
                            ),
                            remove_logo,
                        ]
                    ),
                ]
            ),
            _heading(t("receipt")),
            footer,
            sst,
            sst_fields,
            rounding,
            number_format,
            _heading(t("printer")),
            printer_host,
            printer_port,
            ft.Text(t("paper_width")),
            paper,
            ft.Button(t("save"), on_click=save),
            ft.Divider(),
            _heading(t("subscription")),
            await subscription.section(session),
            ft.Divider(),
            _heading(t("language")),
            language,
            ft.Divider(),
            ft.TextButton(t("sign_out"), icon=ft.Icons.LOGOUT, on_click=sign_out),
        ],
        scroll=ft.ScrollMode.AUTO,
        expand=True,
    )
