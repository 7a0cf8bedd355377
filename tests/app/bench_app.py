"""App timings and server memory per open app session (a benchmark, not a test).

Run: .venv/bin/python tests/app/bench_app.py [--sales 20] [--sessions 5]
Prints: `goto /app/` → interactive sign-in form; tap on `Complete sale` → sale number shown
(median and p95); server RSS growth per open app session. Numbers, no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]

import pgserver  # noqa: E402
import psutil  # noqa: E402
from app.driver import CHROMIUM, PHONE, AppPage  # noqa: E402
from harness import ServerProcess  # noqa: E402
from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402
from supabase import create_client  # noqa: E402

from pocketbizz.db import apply_migrations  # noqa: E402


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def sign_in_form_seconds(browser: Browser, url: str, runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("flt-semantics-placeholder", state="attached")
        page.evaluate("document.querySelector('flt-semantics-placeholder').click()")
        page.get_by_role("textbox", name="Email", exact=True).wait_for()
        times.append(time.perf_counter() - started)
        context.close()
    return times


def sale_seconds(browser: Browser, server: ServerProcess, sales: int) -> list[float]:
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    app = AppPage.open(browser, server.url + "/app/", PHONE)
    app.textbox("Email").wait_for()
    app.type_into("Email", email)
    app.type_into("Password", password)
    app.click("Create account")
    app.textbox("Business name").wait_for()
    app.type_into("Business name", "Bench Bakery")
    app.click("Continue")
    app.destination("Sell").wait_for()
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": password})
    row = (
        api.table("products")
        .insert({"sku": "B1", "name": "Bun", "sale_price": "1.00"})
        .execute()
        .data[0]
    )
    api.rpc(
        "adjust_stock", {"product_id": row["id"], "counted_quantity": 1000, "reason": "count"}
    ).execute()
    app.navigate("Products")
    app.navigate("Sell")
    times = []
    for _ in range(sales):
        app.tap(app.button("Bun"))
        app.click("Charge")
        app.click("Card")
        complete = app.button("Complete sale")
        started = time.perf_counter()
        complete.click()
        expect(app.page.get_by_text(re.compile(r"^Sale INV-"))).to_be_visible()
        times.append(time.perf_counter() - started)
        app.click("New sale")
    return times


def rss_per_session(browser: Browser, server: ServerProcess, sessions: int) -> float:
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    time.sleep(2)
    before = proc.memory_info().rss
    pages = []
    for _ in range(sessions):
        app = AppPage.open(browser, server.url + "/app/", PHONE)
        app.textbox("Email").wait_for()
        pages.append(app)
    time.sleep(2)
    after = proc.memory_info().rss
    return (after - before) / sessions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        pg = pgserver.get_server(root / "pg", cleanup_mode="delete")
        dsn = str(pg.get_uri())
        asyncio.run(apply_migrations(dsn, authenticator_password="bench"))
        (root / "data").mkdir()
        server = ServerProcess(
            dsn, root / "data", env_overrides={"PB_AUTHENTICATOR_PASSWORD": "bench"}
        )
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                form = sign_in_form_seconds(browser, server.url + "/app/")
                sale = sale_seconds(browser, server, args.sales)
                rss = rss_per_session(browser, server, args.sessions)
                browser.close()
        finally:
            server.stop()
            pg.cleanup()
    print(
        f"goto /app/ -> sign-in form: median {statistics.median(form):.2f} s, "
        f"p95 {p95(form):.2f} s ({len(form)} loads)"
    )
    print(
        f"Complete sale -> number shown: median {statistics.median(sale) * 1000:.0f} ms, "
        f"p95 {p95(sale) * 1000:.0f} ms ({len(sale)} sales)"
    )
    print(f"server RSS per open app session: {rss / 1e6:.1f} MB ({args.sessions} sessions)")


if __name__ == "__main__":
    main()
