"""Driving the Flet app in Debian's Chromium through its accessibility tree (Playwright).

Flutter draws on a canvas; the tree exists once semantics are switched on, and then controls
are found by role and accessible name — the names issue 9 makes a contract.
Facts used here are in ../shared/reference/flet-app.md (typing beats `fill`). No fixed
pauses: a field is typed into once Flutter has placed its caret, and a tap is over when the
app's socket has answered it and gone quiet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Browser, Locator, Page, StorageState, expect

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 412, "height": 915}
TABLET = {"width": 1024, "height": 768}
TIMEOUT_MS = 15_000
# Assertions wait as long as actions do (Playwright's own default is 5 s): on a loaded 2-core
# machine a screen read from the server can take longer than that to appear.
expect.set_options(timeout=TIMEOUT_MS)

# Every message of the app's session socket (Flet: a tap goes out as an event, the screen's
# changes come back) stamps the time it passed, for `AppPage.settle`.
WATCH_SOCKET = """
(() => {
  const seen = { sent: 0, received: 0 };
  window.__pbSocket = seen;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => { seen.received = performance.now(); });
    }
    send(data) {
      seen.sent = performance.now();
      super.send(data);
    }
  };
})();
"""
# Settled: the socket quiet this long since the tap and since its last message...
QUIET_MS = 200
# ...and the page's last message answered, or this long unanswered (a tap whose handler
# changes nothing sends no reply).
ANSWER_MS = 500

# The pages the tests have open, so a failing test's report can show what each one showed.
OPEN_PAGES: list[Page] = []


@dataclass
class AppPage:
    page: Page

    @classmethod
    def open(
        cls,
        browser: Browser,
        url: str,
        viewport: dict[str, int] = PHONE,
        local_storage: dict[str, dict[str, str]] | None = None,
    ) -> AppPage:
        """`local_storage`: what the browser holds already, per origin (name: value)."""
        state: StorageState = {
            "cookies": [],
            "origins": [
                {
                    "origin": origin,
                    "localStorage": [{"name": k, "value": v} for k, v in items.items()],
                }
                for origin, items in (local_storage or {}).items()
            ],
        }
        context = browser.new_context(viewport=viewport, storage_state=state)  # type: ignore[arg-type]
        context.add_init_script(WATCH_SOCKET)  # every page of the context, new tabs too
        page = context.new_page()
        OPEN_PAGES.append(page)
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
        tapped_at = self.page.evaluate("performance.now()")
        locator.click()
        self.settle(tapped_at)

    def settle(self, since: float) -> None:
        """Wait until the app has answered what the page sent since `since` (its
        performance.now()) and its socket has gone quiet: the screen has its changes."""
        self.page.wait_for_function(
            """([since, quiet, answer]) => {
                const seen = window.__pbSocket, now = performance.now();
                const answered = seen.received >= seen.sent || now - seen.sent >= answer;
                return answered && now - Math.max(since, seen.sent, seen.received) >= quiet;
            }""",
            arg=[since, QUIET_MS, ANSWER_MS],
        )

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
