"""The app's entry point: `main(page)` for each session, given the backend's config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import flet as ft

from pocketbizz.app.api import ApiFailure, Backend
from pocketbizz.app.config import AppConfig
from pocketbizz.app.screens import (
    auth,
    customers,
    dashboard,
    products,
    sales,
    sell,
    settings,
    stock,
)
from pocketbizz.app.session import Session
from pocketbizz.app.shell import Destination, Shell


def destinations() -> list[Destination]:
    return [
        Destination("sell", ft.Icons.POINT_OF_SALE, sell.build),
        Destination("products", ft.Icons.INVENTORY_2, products.build),
        Destination("stock", ft.Icons.WAREHOUSE, stock.build),
        Destination("customers", ft.Icons.PEOPLE, customers.build),
        Destination("sales", ft.Icons.RECEIPT_LONG, sales.build),
        Destination("dashboard", ft.Icons.INSIGHTS, dashboard.build),
        Destination("settings", ft.Icons.SETTINGS, settings.build),
    ]


def make_main(config: AppConfig) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        page.title = "PocketBizz"
        page.theme = ft.Theme(
            color_scheme_seed=ft.Colors.TEAL,
            # Seven destinations fit a phone's bottom bar only with small labels.
            navigation_bar_theme=ft.NavigationBarTheme(
                label_text_style=ft.TextStyle(size=10), height=64
            ),
        )
        page.padding = 0
        session = Session(page, config, await Backend.connect(config, page.client_ip))
        shell = Shell(session, destinations())
        session.reopen = shell.open
        session.relabel = shell.relabel

        async def home() -> None:
            session.open_store()
            # Opened offline from the kept sign-in: the profile is the one kept on the device,
            # and the replay loop loads the server's (and starts the live feed) once it answers.
            if not session.unconfirmed:
                try:
                    await session.load_profile()
                except ApiFailure as exc:
                    session.notify(session.t("error", error=str(exc)))
                    return
                try:
                    await session.watch()
                except ApiFailure as exc:  # the app works without live updates; say so
                    session.notify(session.t("error", error=str(exc)))
            if not session.profile.get("business_name"):
                session.show(auth.setup_view(session, home))
                return
            # Back where this device left off (a restart or a reload), else at the counter.
            kept = await session.last_screen()
            keys = [d.key for d in shell.destinations]
            await shell.open(keys.index(kept) if kept in keys else 0)

        async def on_resize(e: ft.PageResizeEvent) -> None:
            # Phone ↔ tablet layout when the window crosses the breakpoint.
            if session.backend.user_id and (page.navigation_bar is not None) == session.wide:
                await shell.open(shell.index)

        def sign_in() -> None:
            page.navigation_bar = None
            session.show(auth.sign_in_view(session, home))

        async def signed_out() -> None:
            await session.forget()
            sign_in()

        async def on_close(e: ft.Event[ft.Page]) -> None:
            await session.close()

        def on_connect(e: ft.Event[ft.Page]) -> None:
            session.connected()

        page.on_resize = on_resize
        page.on_close = on_close
        page.on_connect = on_connect
        session.signed_out = signed_out

        async def start() -> None:
            # Nothing to fill in while a kept sign-in is tried: a spinner, not a form.
            session.show(
                ft.Container(ft.ProgressRing(), alignment=ft.Alignment.CENTER, expand=True)
            )
            if await session.resume():
                await home()
            else:
                sign_in()

        # A browser reloading while this runs can make it fail inside Flet (a message sent on
        # the connection that is closing): the browser that attaches next gets it again.
        while True:
            taken_over = session.connection_watch()
            try:
                await start()
            except Exception:
                if not await session.reconnects(taken_over):
                    raise
                continue
            taken_over.cancel()
            return

    return main
