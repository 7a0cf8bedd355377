"""Business metrics (issue 11.2): on a generated history of sign-ups, activity (requests and
app events) and subscription payments, every figure of GET /functions/v1/admin/metrics equals
the one computed here in plain Python from the same data; only service_role and operators get
them; nobody makes themselves an operator; activity is recorded once per user per day.

The history sits in a window ~250 days back, so the accounts and payments other tests make
today cannot change its figures (each is "as of the end of the range").
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import jwt
import pytest
from harness import TEST_JWT_SECRET, ServerProcess
from supabase import create_client
from supabase_auth.errors import AuthApiError

from pocketbizz.db.database import SERVICE, Database, Identity
from pocketbizz.ops.activity import ActivityRecorder

KL = ZoneInfo("Asia/Kuala_Lumpur")
NIL = uuid.UUID(int=0)
OPERATOR_EMAIL = "ops-lead@example.com"
PASSWORD = "correct horse battery"


def kl_today() -> date:
    return datetime.now(UTC).astimezone(KL).date()


def kl_midnight(day: date) -> datetime:
    return datetime.combine(day, clock(), KL)


# --- the generated history -------------------------------------------------------------------


@dataclass
class Payment:
    user: uuid.UUID
    settled_at: datetime | None
    months: int
    amount: Decimal
    status: str


@dataclass
class History:
    first: date
    last: date
    signups: dict[uuid.UUID, datetime] = field(default_factory=dict)
    requests: set[tuple[uuid.UUID, date]] = field(default_factory=set)  # user_activity rows
    events: list[tuple[uuid.UUID, datetime]] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)


def generate(seed: int, first: date, last: date) -> History:
    rng = random.Random(seed)
    h = History(first, last)
    for _ in range(60):
        user = uuid.uuid4()
        # Before the range (some paid at its start), in it (the cohort), after it (not counted)
        day = first + timedelta(days=rng.randint(-25, (last - first).days + 6))
        signed_up = kl_midnight(day) + timedelta(seconds=rng.randint(0, 86399))
        h.signups[user] = signed_up
        for offset in range(0, 45):
            active_day = day + timedelta(days=offset)
            roll = rng.random()
            if roll < 0.2:
                h.requests.add((user, active_day))
            elif roll < 0.3:  # the app's events, at any time of that Malaysian day
                moment = kl_midnight(active_day) + timedelta(seconds=rng.randint(0, 86399))
                h.events.append((user, moment))
            elif roll < 0.35:  # both
                h.requests.add((user, active_day))
                h.events.append((user, kl_midnight(active_day) + timedelta(hours=23, minutes=59)))
        if rng.random() < 0.55:
            settled = signed_up + timedelta(hours=rng.randint(1, 24 * 20))
            for _ in range(rng.randint(1, 3)):
                months = rng.choice([1, 1, 3, 12])
                price = rng.choice([Decimal("29.00"), Decimal("19.90"), Decimal("35.50")])
                h.payments.append(Payment(user, settled, months, price * months, "paid"))
                # Renewed before the expiry (continuous) or weeks after it (a lapse).
                settled += timedelta(days=rng.choice([20, 25, 45, 70]), hours=rng.randint(0, 9))
        if rng.random() < 0.2:  # never count: failed, pending
            h.payments.append(
                Payment(user, signed_up + timedelta(days=2), 1, Decimal("29.00"), "failed")
            )
            h.payments.append(Payment(user, None, 1, Decimal("29.00"), "pending"))
    return h


# --- the figures, computed independently -------------------------------------------------------


def add_months(moment: datetime, months: int, zone: ZoneInfo) -> datetime:
    """PostgreSQL's timestamptz + interval 'n months' in the session time zone: the local
    date moves by whole months, the day clipped to the month's last."""
    local = moment.astimezone(zone)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(UTC)


def paid_intervals(
    h: History, zone: ZoneInfo
) -> dict[uuid.UUID, list[tuple[datetime, datetime, Fraction]]]:
    """Settlement's rule: each paid payment extends from max(settled, current end)."""
    out: dict[uuid.UUID, list[tuple[datetime, datetime, Fraction]]] = defaultdict(list)
    for p in sorted(
        (p for p in h.payments if p.status == "paid" and p.settled_at is not None),
        key=lambda p: (p.user, p.settled_at),
    ):
        assert p.settled_at is not None
        chain = out[p.user]
        start = max(p.settled_at, chain[-1][1]) if chain else p.settled_at
        monthly = Fraction(p.amount) / p.months
        chain.append((start, add_months(start, p.months, zone), monthly))
    return out


def fraction(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def expected_figures(h: History, zone: ZoneInfo) -> dict[str, Any]:
    today = kl_today()
    start = kl_midnight(h.first)
    end = min(datetime.now(UTC), kl_midnight(h.last + timedelta(days=1)))
    active = set(h.requests) | {(u, t.astimezone(KL).date()) for u, t in h.events if u != NIL}
    days = [h.first + timedelta(days=i) for i in range((h.last - h.first).days + 1)]
    dau = [{"date": d.isoformat(), "count": sum(1 for _, a in active if a == d)} for d in days]
    mau = len({u for u, a in active if h.last - timedelta(days=29) <= a <= h.last})

    signup_day = {u: t.astimezone(KL).date() for u, t in h.signups.items()}
    cohort = [u for u, d in signup_day.items() if h.first <= d <= h.last]
    retention = {}
    for n in (1, 7, 30):
        eligible = [u for u in cohort if signup_day[u] + timedelta(days=n) < today]
        kept = [u for u in eligible if (u, signup_day[u] + timedelta(days=n)) in active]
        retention[f"d{n}"] = fraction(len(kept), len(eligible))

    intervals = paid_intervals(h, zone)

    def covering(moment: datetime) -> dict[uuid.UUID, Fraction]:
        found = {}
        for user, chain in intervals.items():
            for s, e, monthly in chain:
                if s <= moment < e:
                    found[user] = monthly
        return found

    def stretch_end(chain: list[tuple[datetime, datetime, Fraction]], moment: datetime) -> datetime:
        i = next(i for i, (s, e, _) in enumerate(chain) if s <= moment < e)
        while i + 1 < len(chain) and chain[i + 1][0] == chain[i][1]:
            i += 1
        return chain[i][1]

    paid_at_start = list(covering(start))
    churned = [u for u in paid_at_start if stretch_end(intervals[u], start) <= end]
    converted = [u for u in cohort if intervals.get(u)]
    at_end = covering(end)
    mrr = sum(at_end.values(), Fraction(0))
    with localcontext() as ctx:
        ctx.prec = 50
        mrr_text = str(
            (Decimal(mrr.numerator) / Decimal(mrr.denominator)).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
        )
    return {
        "dau": dau,
        "mau": mau,
        "retention": retention,
        "churn_rate": fraction(len(churned), len(paid_at_start)),
        "conversion_rate": fraction(len(converted), len(cohort)),
        "mrr": mrr_text,
        "tenants": {
            "total": sum(1 for t in h.signups.values() if t < end),
            "paid": len(at_end),
        },
        # What the generated data must contain for the comparison to mean something.
        "_sizes": {
            "cohort": len(cohort),
            "paid_at_start": len(paid_at_start),
            "churned": len(churned),
            "converted": len(converted),
            "paid_at_end": len(at_end),
        },
    }


# --- storing it ---------------------------------------------------------------------------------


async def store(owner_dsn: str, h: History) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        async with conn.transaction():
            await conn.executemany(
                "insert into auth.users (id, email, encrypted_password, created_at) "
                "values ($1, $2, 'x', $3)",
                [(u, f"hist-{u.hex[:16]}@example.com", t) for u, t in h.signups.items()],
            )
            await conn.executemany(
                "insert into pb_internal.user_activity (day, user_id) values ($1, $2)",
                [(d, u) for u, d in h.requests],
            )
            await conn.executemany(
                "insert into public.analytics_events (business_owner_id, name, occurred_at) "
                "values ($1, 'screen_view', $2)",
                h.events,
            )
            # Events sent before sign-in belong to nobody: never active users.
            await conn.executemany(
                "insert into public.analytics_events "
                "(business_owner_id, name, occurred_at, device_id) "
                "values ($1, 'app_start', $2, 'device-1')",
                [(NIL, kl_midnight(h.first) + timedelta(days=i, hours=3)) for i in range(5)],
            )
            await conn.executemany(
                "insert into public.subscription_payments "
                "(business_owner_id, plan, months, amount, status, bill_code, settled_at) "
                "values ($1, 'pro', $2, $3, $4, $5, $6)",
                [
                    (p.user, p.months, p.amount, p.status, f"b{i}", p.settled_at)
                    for i, p in enumerate(h.payments)
                ],
            )
    finally:
        await conn.close()


async def forget(owner_dsn: str, users: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute("delete from auth.users where id = any($1::uuid[])", users)
    finally:
        await conn.close()


async def session_zone(owner_dsn: str) -> ZoneInfo:
    """The database's default time zone, in which settlement adds months."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        name = await conn.fetchval("select current_setting('TimeZone')")
    finally:
        await conn.close()
    return ZoneInfo(name)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops_server(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("ops"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_OPERATOR_EMAILS": f"someone-else@example.com, {OPERATOR_EMAIL.upper()}",
            "PB_BUSINESS_GAUGES_INTERVAL_S": "1",
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def history(owner_dsn: str) -> Iterator[tuple[History, dict[str, Any]]]:
    last = kl_today() - timedelta(days=250)
    h = generate(seed=11, first=last - timedelta(days=27), last=last)
    asyncio.run(store(owner_dsn, h))
    expected = expected_figures(h, asyncio.run(session_zone(owner_dsn)))
    yield h, expected
    asyncio.run(forget(owner_dsn, list(h.signups)))


@pytest.fixture(scope="module")
def operator_token(ops_server: ServerProcess) -> str:
    # Operator accounts are made with the admin API (sign-up refuses their addresses).
    admin = create_client(ops_server.url, ops_server.service_key)
    admin.auth.admin.create_user(
        {"email": OPERATOR_EMAIL, "password": PASSWORD, "email_confirm": True}
    )
    client = create_client(ops_server.url, ops_server.anon_key)
    session = client.auth.sign_in_with_password({"email": OPERATOR_EMAIL, "password": PASSWORD})
    assert session.session is not None
    return session.session.access_token


def admin_get(server: ServerProcess, path: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"apikey": server.anon_key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{server.url}/functions/v1/admin/{path}", params=params, headers=headers)


def figures_only(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in expected.items() if not k.startswith("_")}


# --- tests --------------------------------------------------------------------------------------


def test_every_figure_matches_the_generated_history(
    ops_server: ServerProcess, history: tuple[History, dict[str, Any]]
) -> None:
    h, expected = history
    sizes = expected["_sizes"]
    # The data exercises every figure: a cohort, paid tenants at the start, some lapsing.
    assert sizes["cohort"] >= 20 and sizes["converted"] >= 5
    assert sizes["paid_at_start"] >= 3 and 0 < sizes["churned"] < sizes["paid_at_start"]
    assert sizes["paid_at_end"] >= 3

    response = admin_get(
        ops_server,
        "metrics",
        ops_server.service_key,
        **{"from": h.first.isoformat(), "to": h.last.isoformat()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "dau",
        "mau",
        "retention",
        "churn_rate",
        "conversion_rate",
        "mrr",
        "tenants",
    }
    assert body == figures_only(expected)
    assert isinstance(body["mrr"], str)


def test_an_operator_sees_the_same_figures(
    ops_server: ServerProcess, history: tuple[History, dict[str, Any]], operator_token: str
) -> None:
    h, expected = history
    claims = jwt.decode(
        operator_token, TEST_JWT_SECRET, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["app_metadata"]["operator"] is True
    response = admin_get(
        ops_server,
        "metrics",
        operator_token,
        **{"from": h.first.isoformat(), "to": h.last.isoformat()},
    )
    assert response.status_code == 200, response.text
    assert response.json() == figures_only(expected)


def test_one_day_and_the_default_range(
    ops_server: ServerProcess, history: tuple[History, dict[str, Any]]
) -> None:
    h, expected = history
    day = h.first + timedelta(days=10)
    one = admin_get(
        ops_server, "metrics", ops_server.service_key, **{"from": str(day), "to": str(day)}
    )
    assert one.status_code == 200
    want = next(d for d in expected["dau"] if d["date"] == day.isoformat())
    assert one.json()["dau"] == [want]
    default = admin_get(ops_server, "metrics", ops_server.service_key)
    assert default.status_code == 200
    dates = [d["date"] for d in default.json()["dau"]]
    today = kl_today()
    assert dates[0] == str(today - timedelta(days=29)) and dates[-1] == str(today)
    assert len(dates) == 30


def test_non_operators_are_refused(ops_server: ServerProcess) -> None:
    client = create_client(ops_server.url, ops_server.anon_key)
    email = f"shop-{uuid.uuid4().hex[:10]}@example.com"
    signed = client.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed.session is not None
    token = signed.session.access_token
    for path in ("metrics", "health", "plans"):
        for caller in (token, None):  # a signed-in shop owner; the anon key
            refused = admin_get(ops_server, path, caller)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["code"] == "not_operator"
    edit = httpx.patch(
        f"{ops_server.url}/functions/v1/admin/plans/pro",
        json={"price_monthly": "1.00"},
        headers={"apikey": ops_server.anon_key, "Authorization": f"Bearer {token}"},
    )
    assert edit.status_code == 403


def test_a_user_cannot_make_themselves_operator(ops_server: ServerProcess) -> None:
    client = create_client(ops_server.url, ops_server.anon_key)
    email = f"sneaky-{uuid.uuid4().hex[:10]}@example.com"
    signed = client.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed.session is not None
    # user_metadata is the user's to write; app_metadata is not (GoTrue ignores it here).
    client.auth.update_user({"data": {"operator": True}})
    raw = httpx.put(
        f"{ops_server.url}/auth/v1/user",
        json={"app_metadata": {"operator": True}, "data": {"operator": True}},
        headers={
            "apikey": ops_server.anon_key,
            "Authorization": f"Bearer {signed.session.access_token}",
        },
    )
    assert raw.status_code == 200
    assert raw.json()["app_metadata"].get("operator") is None
    # Even the service role writing app_metadata.operator does not make an operator: only
    # PB_OPERATOR_EMAILS does.
    admin = create_client(ops_server.url, ops_server.service_key)
    admin.auth.admin.update_user_by_id(signed.user.id, {"app_metadata": {"operator": True}})
    refreshed = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert refreshed.session is not None
    token = refreshed.session.access_token
    claims = jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert "operator" not in claims["app_metadata"]
    assert admin_get(ops_server, "metrics", token).status_code == 403
    # A token forged with the claim but not signed by the server is refused before that.
    forged = jwt.encode(
        {**claims, "app_metadata": {"operator": True}},
        "not-the-secret-but-32-characters-long",
        "HS256",
    )
    assert admin_get(ops_server, "metrics", forged).status_code == 401


def test_nobody_takes_an_operator_address(ops_server: ServerProcess) -> None:
    """With autoconfirm, sign-up proves no ownership of an address: it must not hand out the
    operator claim. Neither may a user move their account to that address."""
    client = create_client(ops_server.url, ops_server.anon_key)
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_up({"email": "Someone-Else@example.com", "password": PASSWORD})
    assert refused.value.code == "user_already_exists"
    email = f"mover-{uuid.uuid4().hex[:10]}@example.com"
    assert client.auth.sign_up({"email": email, "password": PASSWORD}).session is not None
    with pytest.raises(AuthApiError) as moved:
        client.auth.update_user({"email": "someone-else@example.com"})
    assert moved.value.code == "email_exists"
    assert client.auth.get_user().user.email == email  # type: ignore[union-attr]


def test_bad_dates_are_400(ops_server: ServerProcess) -> None:
    key = ops_server.service_key
    cases = [
        {"from": "2026-13-01", "to": "2026-12-01"},
        {"from": "2026-02-30"},
        {"to": "20261130"},
        {"from": "yesterday"},
        {"from": "2026-05-02", "to": "2026-05-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},  # past the 732-day bound
    ]
    for params in cases:
        response = admin_get(ops_server, "metrics", key, **params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]


def test_activity_is_recorded_once_per_user_per_day(
    ops_server: ServerProcess, owner_dsn: str
) -> None:
    client = create_client(ops_server.url, ops_server.anon_key)
    email = f"active-{uuid.uuid4().hex[:10]}@example.com"
    signed = client.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed.user is not None
    for _ in range(5):
        client.table("products").select("id").execute()

    async def rows() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(owner_dsn)
        try:
            return await conn.fetch(
                "select day from pb_internal.user_activity where user_id = $1",
                uuid.UUID(signed.user.id),
            )
        finally:
            await conn.close()

    deadline = time.monotonic() + 10
    found = asyncio.run(rows())
    while not found and time.monotonic() < deadline:  # written by the next flush (1 s)
        time.sleep(0.2)
        found = asyncio.run(rows())
    assert [r["day"] for r in found] == [kl_today()]
    today = admin_get(
        ops_server,
        "metrics",
        ops_server.service_key,
        **{"from": str(kl_today()), "to": str(kl_today())},
    )
    assert today.json()["dau"][0]["count"] >= 1


def test_business_gauges_on_metrics(ops_server: ServerProcess) -> None:
    def gauges() -> dict[str, float]:
        body = httpx.get(f"{ops_server.url}/metrics").text
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in body.splitlines()
            if line.startswith(("pocketbizz_tenants", "pocketbizz_mrr", "pocketbizz_daily_active"))
        }

    today = kl_today().isoformat()
    figures = admin_get(
        ops_server, "metrics", ops_server.service_key, **{"from": today, "to": today}
    ).json()
    want = {
        'pocketbizz_tenants{plan="total"}': float(figures["tenants"]["total"]),
        'pocketbizz_tenants{plan="paid"}': float(figures["tenants"]["paid"]),
        "pocketbizz_mrr_ringgit": float(figures["mrr"]),
        "pocketbizz_daily_active_users": float(figures["dau"][0]["count"]),
    }
    # Recomputed every second on this server (PB_BUSINESS_GAUGES_INTERVAL_S=1), not per scrape;
    # the first time a second after start.
    deadline = time.monotonic() + 10
    while gauges() != want and time.monotonic() < deadline:
        time.sleep(0.3)
    assert gauges() == want


def test_cli_prints_the_figures(
    owner_dsn: str, history: tuple[History, dict[str, Any]], tmp_path: Path
) -> None:
    h, expected = history
    env = {**os.environ, "DATABASE_URL": owner_dsn, "PB_DATA_DIR": str(tmp_path)}
    args = ["--from", h.first.isoformat(), "--to", h.last.isoformat()]
    run = subprocess.run(
        [sys.executable, "-m", "pocketbizz", "metrics", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    table = dict(line.split("  ", 1) for line in run.stdout.splitlines() if "  " in line)
    table = {k.strip(): v.strip() for k, v in table.items()}
    assert table["tenants"] == str(expected["tenants"]["total"])
    assert table["tenants paid"] == str(expected["tenants"]["paid"])
    assert table["MRR (RM)"] == expected["mrr"]
    assert table["MAU"] == str(expected["mau"])
    assert table[f"DAU {h.first.isoformat()}"] == str(expected["dau"][0]["count"])
    as_json = subprocess.run(
        [sys.executable, "-m", "pocketbizz", "metrics", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == figures_only(expected)
    bad = subprocess.run(
        [sys.executable, "-m", "pocketbizz", "metrics", "--from", "2026-02-30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a calendar date" in bad.stderr


def test_app_events_count_for_the_day_they_happened(
    ops_server: ServerProcess, owner_dsn: str
) -> None:
    client = create_client(ops_server.url, ops_server.anon_key)
    email = f"offline-{uuid.uuid4().hex[:10]}@example.com"
    signed = client.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed.user is not None and signed.session is not None
    # Queued offline three days ago at 23:30 in Kuala Lumpur (15:30 UTC, the same date there).
    late = kl_midnight(kl_today() - timedelta(days=3)) + timedelta(hours=23, minutes=30)
    sent = httpx.post(
        f"{ops_server.url}/functions/v1/events",
        json={"events": [{"name": "screen_view", "occurred_at": late.isoformat()}]},
        headers={
            "apikey": ops_server.anon_key,
            "Authorization": f"Bearer {signed.session.access_token}",
        },
    )
    assert sent.status_code == 202, sent.text

    async def days() -> list[date]:
        conn = await asyncpg.connect(owner_dsn)
        try:
            rows = await conn.fetch(
                "select day from pb_internal.user_activity where user_id = $1 order by day",
                uuid.UUID(signed.user.id),
            )
        finally:
            await conn.close()
        return [r["day"] for r in rows]

    deadline = time.monotonic() + 10
    while len(asyncio.run(days())) < 2 and time.monotonic() < deadline:  # today's: next flush
        time.sleep(0.2)
    assert asyncio.run(days()) == [kl_today() - timedelta(days=3), kl_today()]


def test_cli_asks_the_running_server_without_database_url(
    ops_server: ServerProcess, history: tuple[History, dict[str, Any]]
) -> None:
    h, expected = history
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PB_DATABASE_URL")}
    # Where the test server recorded itself (harness: XDG_STATE_HOME under its data dir), and
    # its JWT secret, from which the CLI makes the service key.
    env |= {"XDG_STATE_HOME": str(ops_server.data_dir / "state"), "PB_JWT_SECRET": TEST_JWT_SECRET}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pocketbizz",
            "metrics",
            "--json",
            "--from",
            str(h.first),
            "--to",
            str(h.last),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == figures_only(expected)
    nobody = subprocess.run(
        [sys.executable, "-m", "pocketbizz", "metrics"],
        env={**env, "XDG_STATE_HOME": str(ops_server.data_dir / "no-servers")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nobody.returncode == 2 and "DATABASE_URL" in nobody.stderr


async def test_recorder_queues_a_user_once_and_keeps_rows_through_a_failed_write(
    owner_pool: asyncpg.Pool, owner_dsn: str
) -> None:
    user = uuid.uuid4()
    await owner_pool.execute(
        "insert into auth.users (id, email, encrypted_password) values ($1, $2, 'x')",
        user,
        f"rec-{user.hex[:12]}@example.com",
    )
    # Writes as service_role time out after 200 ms, so a held lock makes a write fail.
    db = Database(
        owner_dsn,
        user="authenticator",
        password="test-authenticator",
        min_size=1,
        max_size=1,
        statement_timeouts={"service_role": "200ms"},
    )
    await db.open()
    recorder = ActivityRecorder(db)
    rows = "select day from pb_internal.user_activity where user_id = $1"
    try:
        me = Identity("authenticated", {"sub": str(user), "role": "authenticated"})
        for identity in (me, me, SERVICE, me):
            recorder.observe(identity)
        async with owner_pool.acquire() as locker, locker.transaction():
            await locker.execute("lock table pb_internal.user_activity in exclusive mode")
            assert await recorder.flush() == 0  # timed out: the row is kept
        assert await owner_pool.fetch(rows, user) == []
        # The next flush writes it, once.
        assert await recorder.flush() == 1
        assert [r["day"] for r in await owner_pool.fetch(rows, user)] == [kl_today()]
        recorder.observe(me)
        assert await recorder.flush() == 0  # already recorded today: nothing queued
    finally:
        await recorder.close()
        await db.close()
        await owner_pool.execute("delete from auth.users where id = $1", user)
