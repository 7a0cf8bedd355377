"""Driving the Flet app in Debian's Chromium through its accessibility tree (Playwright).

Flutter draws on a canvas; the tree exists once semantics are switched on, and then controls
are found by role and accessible name — the names issue 9 makes a contract.
Facts used here are in ../shared/reference/flet-app.md (typing beats `fill`, settle times).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from playwright.sync_api import Browser, Locator, Page, expect

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 412, "height": 915}
TABLET = {"width": 1024, "height": 768}
TIMEOUT_MS = 15_000


@dataclass
class AppPage:
    page: Page

    @classmethod
    def open(cls, browser: Browser, url: str, viewport: dict[str, int] = PHONE) -> AppPage:
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("flt-semantics-placeholder", state="attached")
        # The placeholder sits off-screen; a script click turns semantics on.
        page.evaluate("document.querySelector('flt-semantics-placeholder').click()")
        app = cls(page)
        return app

    def textbox(self, name: str) -> Locator:
        return self.page.get_by_role("textbox", name=name, exact=True)

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def type_into(self, name: str, value: str) -> None:
        box = self.textbox(name)
        box.click()
        # Flutter focuses the field's input, then places the caret from the click on a
        # following frame: a select-all or a key before that is overwritten or lost.
        expect(box).to_be_focused()
        self.after_frames(3)
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(value)
        # Every key taken (Flutter writes its editing state back to the input); the change
        # messages go out ahead of whatever the test does next on the same socket.
        expect(box).to_have_value(value)

    def after_frames(self, count: int) -> None:
        """Return after `count` animation frames of the page (Flutter works frame by frame,
        so a loaded machine waits longer, not a shorter time)."""
        self.page.evaluate(
            """count => new Promise(done => {
                const next = n => n === 0 ? done(null) : requestAnimationFrame(() => next(n - 1));
                next(count);
            })""",
            count,
        )

    def click(self, name: str, role: str = "button") -> None:
        self.tap(self.page.get_by_role(role, name=name, exact=True))  # type: ignore[arg-type]

    def tap(self, locator: Locator) -> None:
        locator.click()
        time.sleep(0.5)  # let the screen settle, as a person would

    def destination(self, name: str) -> Locator:
        """A navigation destination: a tab of the phone's bottom bar, a button of the rail."""
        page = self.page
        return page.get_by_role("tab", name=name, exact=True).or_(
            page.get_by_role("button", name=name, exact=True)
        )

    def navigate(self, name: str) -> None:
        self.tap(self.destination(name))

    def expect_text(self, text: str | re.Pattern[str]) -> Locator:
        locator = self.page.get_by_text(text).first
        expect(locator).to_be_visible()
        return locator

    def tree(self) -> str:
        return self.page.locator("body").aria_snapshot()
