"""The business-metrics query on 10,000 tenants with a year of history (issue 11's "measure").

Sign-ups spread over the past year; each tenant active on ~35% of its days since (activity
rows) and sending app events on ~10% of them; 30% of tenants paying month after month from a
few days after sign-up, some stopping. Then `pb_internal.business_metrics` for a 30-day and a
365-day range, timed as the operator endpoint calls it (one statement).

`python -m bench.metrics_bench [tenants] [repeats]`
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from bench.data import generate
from bench.stack import embedded_postgres

HISTORY_SQL = """
update auth.users set created_at = now() - random() * interval '365 days';
insert into pb_internal.user_activity (day, user_id)
select d::date, u.id
from auth.users u,
     generate_series((u.created_at at time zone 'Asia/Kuala_Lumpur')::date,
                     (now() at time zone 'Asia/Kuala_Lumpur')::date, interval '1 day') d
where random() < 0.35;
insert into public.analytics_events (business_owner_id, name, occurred_at)
select u.id, 'screen_view', d + random() * interval '1 day'
from auth.users u,
     generate_series(u.created_at, now() - interval '1 day', interval '1 day') d
where random() < 0.10;
insert into public.subscription_payments
    (business_owner_id, plan, months, amount, status, bill_code, settled_at)
select u.id, 'pro', 1, 29.00, 'paid', 'bench-' || m, u.created_at + interval '3 days' + m * interval '30 days'
from (select id, created_at, 1 + floor(random() * 12)::int as months_paid from auth.users
      where random() < 0.3) u,
     generate_series(0, 11) m
where m < u.months_paid and u.created_at + interval '3 days' + m * interval '30 days' < now();
analyze;
"""


async def _run(dsn: str, tenants: int, repeats: int) -> list[str]:
    t0 = time.perf_counter()
    await generate(dsn, tenants=tenants, products=1, customers=0)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("select pb_internal.maintain_analytics_event_partitions(400)")
        await conn.execute(HISTORY_SQL)
        counts = await conn.fetchrow(
            "select (select count(*) from auth.users) as users,"
            " (select count(*) from pb_internal.user_activity) as activity,"
            " (select count(*) from public.analytics_events) as events,"
            " (select count(*) from public.subscription_payments) as payments"
        )
        assert counts is not None
        lines = [
            f"data: {counts['users']} tenants, {counts['activity']} activity rows, "
            f"{counts['events']} events, {counts['payments']} paid payments "
            f"(generated in {time.perf_counter() - t0:.0f} s)"
        ]
        today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Kuala_Lumpur")).date()
        for days in (1, 30, 365):
            first = today - timedelta(days=days - 1)
            timings = []
            for _ in range(repeats):
                t = time.perf_counter()
                await conn.fetchval("select pb_internal.business_metrics($1, $2)", first, today)
                timings.append((time.perf_counter() - t) * 1000)
            lines.append(
                f"business_metrics over {days:>3} day(s): median {statistics.median(timings):7.0f} ms"
                f"  min {min(timings):7.0f} ms  max {max(timings):7.0f} ms  (n={repeats})"
            )
    finally:
        await conn.close()
    return lines


def main(tenants: int = 10_000, repeats: int = 5) -> list[str]:
    with (
        tempfile.TemporaryDirectory(prefix="pb-metrics-bench-") as tmp,
        embedded_postgres(Path(tmp)) as dsn,
    ):
        return asyncio.run(_run(dsn, tenants, repeats))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for line in main(*args):
        print(line, flush=True)
