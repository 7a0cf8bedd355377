"""What the operator package runs in every server process: the daily-activity recorder (hooked
into `Database.transaction`) and the business gauges on /metrics, computed once a minute
(PB_BUSINESS_GAUGES_INTERVAL_S) by a task rather than on each scrape (a scrape must stay cheap however often Prometheus comes)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import date

import structlog
from prometheus_client import Gauge

from pocketbizz.db.database import SERVICE, Database
from pocketbizz.ops import repository
from pocketbizz.ops.activity import ActivityRecorder, activity_day
from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.ops")

RECORDER = "ops.activity"
GAUGES = "ops.gauges"
STARTED = "ops.started"  # time.time() when this process started serving
START_DELAY_S = 5.0

# "livemostrecent": with several processes, the value most recently set by a live one (they
# all compute the same figures).
TENANTS = Gauge(
    "pocketbizz_tenants",
    "Tenant accounts: total, and on a paid plan now",
    ["plan"],
    multiprocess_mode="livemostrecent",
)
MRR = Gauge(
    "pocketbizz_mrr_ringgit",
    "Monthly recurring revenue (RM): amount / months of the paid payments covering now",
    multiprocess_mode="livemostrecent",
)
DAU = Gauge(
    "pocketbizz_daily_active_users",
    "Users active today (Asia/Kuala_Lumpur day) so far",
    multiprocess_mode="livemostrecent",
)


async def record_business_gauges(db: Database, today: date | None = None) -> None:
    day = today or activity_day()
    async with db.transaction(SERVICE) as conn:
        figures = await repository.business_metrics(conn, day, day)
    TENANTS.labels("total").set(figures["tenants"]["total"])
    TENANTS.labels("paid").set(figures["tenants"]["paid"])
    # Prometheus samples are floats by its format; the exact MRR is the endpoint's decimal string.
    MRR.set(float(figures["mrr"]))
    DAU.set(figures["dau"][0]["count"])


async def _business_gauges_periodically(db: Database, interval: float) -> None:
    # Not in the start-up burst, when every service takes connections at once: the pool would
    # grow past its minimum for one query a minute.
    await asyncio.sleep(min(START_DELAY_S, interval))
    while True:
        try:
            await record_business_gauges(db)
        except Exception as exc:  # the database away for a while: the gauges keep their values
            log.warning("business gauges not refreshed", error=repr(exc))
        await asyncio.sleep(interval)


async def startup(state: AppState) -> None:
    state.services[STARTED] = time.time()
    recorder = ActivityRecorder(state.db)
    recorder.start()
    state.services[RECORDER] = recorder
    state.db.observe_identity = recorder.observe
    state.services[GAUGES] = asyncio.create_task(
        _business_gauges_periodically(state.db, state.settings.business_gauges_interval_s),
        name="business-gauges",
    )


async def shutdown(state: AppState) -> None:
    task = state.services.pop(GAUGES, None)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    state.db.observe_identity = None
    recorder = state.services.pop(RECORDER, None)
    if isinstance(recorder, ActivityRecorder):
        await recorder.close()
