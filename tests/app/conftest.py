"""Browser fixtures for the app tests: Debian's Chromium driven by Playwright.

Chromium is a Debian package (Playwright's own browser download needs the internet); it is
installed here once per test session when missing, so `make test` needs no other step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from app.driver import CHROMIUM, OPEN_PAGES
from app.servers import own_server
from harness import ServerProcess
from playwright.sync_api import Browser, Error, sync_playwright


def _install_chromium() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        assert shutil.which("apt-get"), "Debian's chromium package is needed for the app tests"
        _install_chromium()
    return CHROMIUM


# Per module, not per session: sync Playwright keeps an event loop running in this thread
# while it is open, and the async tests that follow need the thread's loop to themselves.
@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        # Root in a container: Chromium's sandbox needs user namespaces it does not get.
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def backend(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that stop and start it (a device's app against
    it: `app.devices`)."""
    with own_server(owner_dsn, tmp_path) as proc:
        yield proc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """A failed app test's report shows what each open page showed (its accessibility tree)
    and the app processes' logs: a screen that was not the one expected says which it was."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown":
        OPEN_PAGES.clear()  # closed with their browser, or left to the next test's
    if report.when != "call" or not report.failed:
        return
    for number, page in enumerate(OPEN_PAGES):
        try:
            shown = page.locator("body").aria_snapshot(timeout=3_000)
        except Error as exc:
            shown = f"(not read: {exc.message.splitlines()[0]})"
        report.sections.append((f"page {number} ({page.url})", shown))
    tmp_path = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
    if isinstance(tmp_path, Path):
        for log in sorted(tmp_path.glob("**/app-*.log")):
            text = log.read_text(errors="replace")[-6_000:]
            report.sections.append((f"log {log.name}", text))
