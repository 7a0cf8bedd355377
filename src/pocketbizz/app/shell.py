"""The signed-in app: navigation (bottom bar on a phone, rail on a tablet) around one screen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import flet as ft

from pocketbizz.app.api import ApiFailure
from pocketbizz.app.session import Session


@dataclass(frozen=True)
class Destination:
    key: str  # i18n key; its English text is the accessible name (issue 9 item 6)
    icon: ft.IconData
    build: Callable[[Session], Awaitable[ft.Control]]


class Shell:
    def __init__(self, session: Session, destinations: list[Destination]) -> None:
        self.session = session
        self.destinations = destinations
        self.index = 0
        self.body = ft.Container(expand=True, padding=12)

    async def open(self, index: int = 0) -> None:
        self.index = index
        self.session.remember_screen(self.destinations[index].key)
        self.session.show(self._frame())
        await self.refresh()

    async def relabel(self) -> None:
        """The frame again in the session's language (changed on another device): navigation
        and banner now; the screen on show keeps its own labels until the next one opens, so
        a cart or a form in progress is not thrown away."""
        self.session.render_banner()
        self.session.show(self._frame())

    async def refresh(self) -> None:
        """Rebuild the current screen (after a language change, ...)."""
        self.session.on_data_change = None
        try:
            self.body.content = await self.destinations[self.index].build(self.session)
        except ApiFailure as exc:  # e.g. offline: say so, the navigation still works
            self.body.content = ft.Text(self.session.t("error", error=str(exc)))
        self.session.page.update()

    async def _select(self, e: ft.Event[ft.NavigationBar]) -> None:
        await self.open(int(e.control.selected_index or 0))

    def _rail_item(self, index: int, destination: Destination) -> ft.Control:
        """One rail entry, named by its label alone: Flutter's NavigationRail would append
        "Tab 1 of 7" to the accessible name, breaking the names the app promises."""
        selected = index == self.index
        item = ft.Container(
            ft.Column(
                [
                    ft.Container(
                        ft.Icon(destination.icon),
                        bgcolor=ft.Colors.SECONDARY_CONTAINER if selected else None,
                        border_radius=16,
                        padding=ft.Padding.symmetric(horizontal=16, vertical=4),
                    ),
                    ft.Text(self.session.t(destination.key), size=12),
                ],
                horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                spacing=4,
            ),
            padding=ft.Padding.symmetric(vertical=6),
            on_click=lambda e: self.session.page.run_task(self.open, index),
        )
        return ft.Semantics(
            content=item,
            label=self.session.t(destination.key),
            button=True,
            selected=selected,
            container=True,
            exclude_semantics=True,
        )

    def _frame(self) -> ft.Control:
        t = self.session.t
        if self.session.wide:
            rail = ft.Column(
                [self._rail_item(i, d) for i, d in enumerate(self.destinations)],
                spacing=4,
                width=92,
                scroll=ft.ScrollMode.AUTO,
            )
            self.session.page.navigation_bar = None
            return ft.SafeArea(
                ft.Row(
                    [
                        rail,
                        ft.VerticalDivider(width=1),
                        ft.Column([self.session.banner, self.body], expand=True),
                    ],
                    expand=True,
                ),
                expand=True,
            )
        self.session.page.navigation_bar = ft.NavigationBar(
            selected_index=self.index,
            destinations=[
                ft.NavigationBarDestination(icon=d.icon, label=t(d.key)) for d in self.destinations
            ],
            label_behavior=ft.NavigationBarLabelBehavior.ALWAYS_SHOW,
            on_change=self._select,
        )
        return ft.SafeArea(ft.Column([self.session.banner, self.body], expand=True), expand=True)
