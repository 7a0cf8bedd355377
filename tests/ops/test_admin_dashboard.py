"""The operator dashboard at /admin/ in Chromium (issue 11.3): it loads with no outside assets,
an operator sees the business figures, the health table and the plans, a plan edit persists,
and an account that is not an operator is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from app.conftest import chromium  # noqa: F401  (the Debian Chromium fixture)
from harness import ServerProcess
from playwright.sync_api import Browser, Page, expect, sync_playwright
from supabase import create_client

PASSWORD = "correct horse battery"
OPERATOR = f"dash-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:  # noqa: F811
    with sync_playwright() as p:
        # Root in a container: Chromium's sandbox needs user namespaces it does not get.
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def ops_server(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("dash"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_OPERATOR_EMAILS": OPERATOR,
        },
    )
    proc.start()
    create_client(proc.url, proc.service_key).auth.admin.create_user(
        {"email": OPERATOR, "password": PASSWORD, "email_confirm": True}
    )
    yield proc
    proc.stop()


def _owner(owner_dsn: str, sql: str, *args: object) -> object:
    # psycopg's sync client: sync Playwright keeps an event loop running in this thread.
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, args)
        row = cursor.fetchone() if cursor.description else None
    return row[0] if row else None


@pytest.fixture
def plan(owner_dsn: str) -> Iterator[str]:
    code = f"d{uuid.uuid4().hex[:10]}"
    _owner(
        owner_dsn,
        "insert into public.plans (code, name, price_monthly) values (%s, 'Dash', 9.90)",
        code,
    )
    yield code
    _owner(owner_dsn, "delete from public.plans where code = %s", code)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page, server: ServerProcess, email: str) -> list[str]:
    """Open the page and sign in; the URLs it requested."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{server.url}/admin/")
    expect(page.locator("#sign-in-form")).to_be_visible()
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    return requested


def test_an_operator_sees_the_figures_and_edits_a_plan(
    page: Page, ops_server: ServerProcess, plan: str, owner_dsn: str
) -> None:
    requested = sign_in(page, ops_server, OPERATOR)
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator('[data-figure="tenants_total"]')).not_to_be_empty()
    figures = httpx.get(
        f"{ops_server.url}/functions/v1/admin/metrics",
        headers={
            "apikey": ops_server.service_key,
            "Authorization": f"Bearer {ops_server.service_key}",
        },
    ).json()
    # Tests run one at a time, so no account is created between the page's read and this one.
    expect(page.locator('[data-figure="tenants_total"]')).to_have_text(
        str(figures["tenants"]["total"])
    )
    expect(page.locator('[data-figure="mrr"]')).to_have_text(figures["mrr"])
    expect(page.locator('[data-figure="mau"]')).to_have_text(str(figures["mau"]))
    # A bar per day of the default 30-day range, and eight points of weekly MRR.
    expect(page.locator("#dau-chart svg rect")).to_have_count(30)
    expect(page.locator("#mrr-chart svg circle")).to_have_count(8)
    # System health from the process's metrics; no pg_stat_statements in the embedded PG.
    expect(page.locator("#surfaces tbody tr").first).to_be_visible()
    expect(page.locator("#slow-queries")).to_contain_text("not available")
    expect(page.locator('[data-figure="pool"]')).to_contain_text("/ 20")
    # Nothing was fetched from anywhere but this server.
    assert requested and all(u.startswith(ops_server.url) for u in requested)

    row = page.locator(f'#plans tr[data-plan="{plan}"]')
    expect(row.locator('input[name="price_monthly"]')).to_have_value("9.90")
    row.locator('input[name="price_monthly"]').fill("21.50")
    row.locator('input[name="max_sales_per_month"]').fill("250")
    row.locator("button").click()
    expect(row.locator(".status")).to_have_text(" saved")
    stored = _owner(
        owner_dsn,
        "select (price_monthly, max_sales_per_month)::text from public.plans where code = %s",
        plan,
    )
    assert stored == "(21.50,250)"
    page.reload()  # the session is kept for the tab; the table is read again from the server
    expect(
        page.locator(f'#plans tr[data-plan="{plan}"] input[name="price_monthly"]')
    ).to_have_value("21.50")


def test_a_shop_owner_is_refused(page: Page, ops_server: ServerProcess) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    create_client(ops_server.url, ops_server.anon_key).auth.sign_up(
        {"email": email, "password": PASSWORD}
    )
    sign_in(page, ops_server, email)
    expect(page.locator("#message")).to_have_text("This account is not an operator.")
    expect(page.locator("#dashboard")).to_be_hidden()
    expect(page.locator("#figures dd")).to_have_count(0)


def test_a_wrong_password_is_shown(page: Page, ops_server: ServerProcess) -> None:
    page.goto(f"{ops_server.url}/admin/")
    page.fill("#email", OPERATOR)
    page.fill("#password", "not the password")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_have_text("Invalid login credentials")
    expect(page.locator("#dashboard")).to_be_hidden()
