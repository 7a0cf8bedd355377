"""Browser fixtures for the app tests: Debian's Chromium driven by Playwright.

Chromium is a Debian package (Playwright's own browser download needs the internet); it is
installed here once per test session when missing, so `make test` needs no other step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from app.driver import CHROMIUM
from playwright.sync_api import Browser, sync_playwright


def _install_chromium() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        assert shutil.which("apt-get"), "Debian's chromium package is needed for the app tests"
        _install_chromium()
    with sync_playwright() as p:
        # Root in a container: Chromium's sandbox needs user namespaces it does not get.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()
