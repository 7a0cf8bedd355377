"""The subscription, inside Settings: the plan, until when it is paid, the limits used, and
**Upgrade** — a ToyyibPay bill from the server's `subscribe` function, opened in the browser
(or the device's) to pay. The plan changes when ToyyibPay tells the server the bill is paid,
not when the page opens, so the screen says so instead of claiming the upgrade."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import flet as ft

from pocketbizz.app.api import ApiFailure
from pocketbizz.app.session import Session

UPGRADE_PLAN = "pro"
UPGRADE_MONTHS = 1


def _used(session: Session, count: int, limit: int | None) -> str:
    return f"{count} / {limit}" if limit is not None else f"{count} / {session.t('unlimited')}"


def _paid_until(value: Any) -> str | None:
    if not value:
        return None
    return f"{datetime.fromisoformat(str(value)).astimezone():%d/%m/%Y}"


async def section(session: Session) -> ft.Control:
    t = session.t
    try:
        usage = await session.backend.subscription(session.business_zone)
        plans = await session.backend.plans()
    except ApiFailure as exc:
        return ft.Text(t("error", error=str(exc)))
    plan = usage["plan"]
    rows: list[ft.Control] = [ft.Text(t("plan", name=plan.get("name") or plan["code"]))]
    paid_until = _paid_until(usage.get("expires_at"))
    if paid_until and usage.get("lapsed_plan"):
        rows.append(ft.Text(t("plan_ended", date=paid_until), color=ft.Colors.ERROR))
    elif paid_until:
        rows.append(ft.Text(t("plan_expires", date=paid_until)))
    rows += [
        ft.Text(
            t(
                "products_used",
                used=_used(session, usage["active_products"], plan.get("max_active_products")),
            )
        ),
        ft.Text(
            t(
                "sales_used",
                used=_used(session, usage["sales_this_month"], plan.get("max_sales_per_month")),
            )
        ),
    ]
    upgrade_to = next((p for p in plans if p["code"] == UPGRADE_PLAN), None)
    if upgrade_to is not None and plan["code"] != UPGRADE_PLAN:

        async def upgrade(e: ft.Event[ft.Button]) -> None:
            e.control.disabled = True
            session.page.update()
            try:
                bill = await session.backend.subscribe(UPGRADE_PLAN, UPGRADE_MONTHS)
            except ApiFailure as exc:
                session.notify(t("error", error=str(exc)))
            else:
                await ft.UrlLauncher().launch_url(str(bill["payment_url"]))
                session.notify(t("payment_opened"))
            e.control.disabled = False
            session.page.update()

        price = Decimal(str(upgrade_to["price_monthly"])).quantize(Decimal("0.01"))
        rows += [
            ft.Text(t("upgrade_price", name=upgrade_to["name"], price=f"{price}")),
            ft.Button(t("upgrade"), icon=ft.Icons.UPGRADE, on_click=upgrade),
        ]
    return ft.Column(rows, spacing=4)
