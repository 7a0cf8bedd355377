"""Dashboard: today / 7 days / 30 days from the `analytics` RPC — revenue, profit, sales count,
average sale, revenue by day (chart), top products and low stock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import flet as ft
import flet_charts as fch

from pocketbizz.app.money import format_rm, to_money
from pocketbizz.app.session import Session

RANGES = (("today", 0), ("days_7", 6), ("days_30", 29))


def _card(title: str, value: str) -> ft.Control:
    return ft.Container(
        ft.Column([ft.Text(title, size=12), ft.Text(value, size=20, weight=ft.FontWeight.BOLD)]),
        padding=12,
        border_radius=8,
        bgcolor=ft.Colors.SECONDARY_CONTAINER,
        col={"xs": 6, "md": 3},
    )


def _chart(by_day: list[dict[str, Any]]) -> ft.Control:
    # Bar heights only (the chart library draws floats); every amount shown stays a Decimal.
    values = [float(to_money(d["net_sales"])) for d in by_day]
    top = max([*values, 1.0])
    chart: ft.Control = fch.BarChart(
        groups=[
            fch.BarChartGroup(
                x=i, rods=[fch.BarChartRod(from_y=0, to_y=v, width=8, color=ft.Colors.TEAL)]
            )
            for i, v in enumerate(values)
        ],
        max_y=top * 1.1,
        height=180,
        interactive=False,
    )
    return chart


class DashboardScreen:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = session.t
        self.days_back = 0
        self.root = ft.Column(expand=True, scroll=ft.ScrollMode.AUTO)

    async def render(self) -> None:
        t = self.t
        today = self.session.business_today()
        data = await self.session.backend.analytics(today - timedelta(days=self.days_back), today)
        totals = data["totals"]
        ranges = ft.Row(
            [
                (ft.FilledButton if back == self.days_back else ft.OutlinedButton)(
                    t(key), on_click=lambda e, b=back: self._pick(b)
                )
                for key, back in RANGES
            ],
            wrap=True,
        )
        cards = ft.ResponsiveRow(
            [
                _card(t("revenue"), format_rm(to_money(totals["net_sales"]))),
                _card(t("profit"), format_rm(to_money(totals["gross_profit"]))),
                _card(t("sales_count"), str(totals["sales_count"])),
                _card(t("average_sale"), format_rm(to_money(totals["average_ticket"]))),
            ]
        )
        top = [
            ft.Row(
                [
                    ft.Text(p["product_name"], expand=True),
                    ft.Text(format_rm(to_money(p["revenue"]))),
                ]
            )
            for p in data["top_products"]["by_revenue"][:5]
        ]
        low = [
            ft.Row(
                [
                    ft.Text(p["name"], expand=True),
                    ft.Text(f"{to_money(p['current_stock']).normalize():f}", color=ft.Colors.ERROR),
                ]
            )
            for p in data["low_stock"][:10]
        ]
        self.root.controls = [
            ft.Text(t("dashboard"), size=22, weight=ft.FontWeight.BOLD),
            ranges,
            cards,
            ft.Text(t("revenue_by_day"), weight=ft.FontWeight.BOLD),
            _chart(data["by_day"]),
            ft.Text(t("top_products"), weight=ft.FontWeight.BOLD),
            *top,
            ft.Text(t("low_stock"), weight=ft.FontWeight.BOLD),
            *low,
        ]

    async def _pick(self, days_back: int) -> None:
        self.days_back = days_back
        if await self.session.guarded(self.render):
            self.session.page.update()


async def build(session: Session) -> ft.Control:
    screen = DashboardScreen(session)
    await screen.render()
    session.on_data_change = screen.render
    return screen.root
