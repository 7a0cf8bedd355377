"""The plan-expiry reminder (issue 10.2): three days before a paid plan ends the owner is told
once, by WhatsApp template (the local Graph API fake) or else by e-mail (the local SMTP server
of the auth tests). Run against this module's own database, so no other tenant is due."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from auth.mail_support import Inbox, body, start_smtp
from harness import free_port
from messages.fake_graph import PHONE_NUMBER_ID, TOKEN, FakeGraph, graph_error

from pocketbizz.db import Database
from pocketbizz.jobs.service import app
from pocketbizz.payments import reminders
from pocketbizz.settings import Settings


@pytest.fixture(scope="module")
def smtp() -> Iterator[Inbox]:
    controller, inbox = start_smtp()
    yield inbox
    controller.stop()


@pytest.fixture
async def owner_db(wa_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(wa_dsn, min_size=1, max_size=2)
    yield pool
    # Each test starts with no paid plan about to end.
    await pool.execute("update public.users set subscription_expires_at = null")
    await pool.close()


def _settings(tmp_path: Path, graph: FakeGraph | None, smtp: Inbox | None) -> Settings:
    options: dict[str, Any] = {"data_dir": tmp_path, "public_url": "https://pocketbizz.example"}
    if graph is not None:
        options |= {
            "whatsapp_api_url": graph.url,
            "whatsapp_token": TOKEN,
            "whatsapp_phone_number_id": PHONE_NUMBER_ID,
            "whatsapp_timeout_s": 10,
        }
    if smtp is not None:
        options |= {"smtp_host": "127.0.0.1", "smtp_port": smtp.port}
    return Settings(**options)


async def _owner(
    pool: asyncpg.Pool,
    *,
    plan: str = "pro",
    ends_in: timedelta | None = timedelta(days=2),
    phone: str | None = None,
    business: str = "Kedai Kek Aminah",
) -> dict[str, Any]:
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    async with pool.acquire() as conn, conn.transaction():
        uid = await conn.fetchval(
            "insert into auth.users (email, encrypted_password) values ($1, 'x') returning id",
            email,
        )
        expires = None if ends_in is None else datetime.now().astimezone() + ends_in
        await conn.execute(
            "update public.users set subscription_plan = $2, subscription_expires_at = $3,"
            " phone = $4 where business_owner_id = $1",
            uid,
            plan,
            expires,
            phone,
        )
        await conn.execute(
            "update public.business_profiles set business_name = $2 where business_owner_id = $1",
            uid,
            business,
        )
    return {"id": uid, "email": email, "expires_at": expires}


async def _recorded(pool: asyncpg.Pool, owner: dict[str, Any]) -> list[tuple[Any, str]]:
    rows = await pool.fetch(
        "select expires_at, channel from pb_internal.plan_reminders"
        " where business_owner_id = $1 order by expires_at",
        owner["id"],
    )
    return [(r["expires_at"], r["channel"]) for r in rows]


async def test_whatsapp_template_once_per_expiry_to_the_owners_due(
    owner_db: asyncpg.Pool, db: Database, graph: FakeGraph, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, graph, None)
    due = await _owner(owner_db, phone="012-345 6789")
    later = await _owner(owner_db, ends_in=timedelta(days=10), phone="0129876543")
    await _owner(owner_db, ends_in=timedelta(days=-1), phone="0131112222")  # already ended
    await _owner(owner_db, plan="free", phone="0141112222")

    assert await reminders.remind_expiring_plans(db, settings) == 1
    [message] = graph.sent("messages")
    assert message.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "60123456789",
        "type": "template",
        "template": {
            "name": "plan_expiry",
            "language": {"code": "ms"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Kedai Kek Aminah"},
                        {"type": "text", "text": "Pro"},
                        {
                            "type": "text",
                            "text": reminders.expiry_date(due["expires_at"], "Asia/Kuala_Lumpur"),
                        },
                    ],
                }
            ],
        },
    }
    assert await _recorded(owner_db, due) == [(due["expires_at"], "whatsapp")]
    assert await _recorded(owner_db, later) == []
    # The next run sends nothing again.
    assert await reminders.remind_expiring_plans(db, settings) == 0
    assert len(graph.sent("messages")) == 1
    # Renewed: the new expiry gets its own reminder when it comes near.
    renewed = due["expires_at"] + timedelta(hours=12)
    await owner_db.execute(
        "update public.users set subscription_expires_at = $2 where business_owner_id = $1",
        due["id"],
        renewed,
    )
    assert await reminders.remind_expiring_plans(db, settings) == 1
    assert [c for _, c in await _recorded(owner_db, due)] == ["whatsapp", "whatsapp"]


async def test_email_without_a_phone_or_when_whatsapp_refuses(
    owner_db: asyncpg.Pool, db: Database, graph: FakeGraph, smtp: Inbox, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, graph, smtp)
    no_phone = await _owner(owner_db, phone=None, business="Warung Pak Ali")
    refused = await _owner(owner_db, phone="0175556666")
    graph.script("messages", graph_error(400, 131026, "Message undeliverable."))

    assert await reminders.remind_expiring_plans(db, settings) == 2
    mail = smtp.wait_for(no_phone["email"])
    date = reminders.expiry_date(no_phone["expires_at"], "Asia/Kuala_Lumpur")
    assert mail["Subject"] == f"Your PocketBizz Pro plan ends on {date}"
    assert "Hello Warung Pak Ali," in body(mail) and date in body(mail)
    smtp.wait_for(refused["email"])
    assert await _recorded(owner_db, no_phone) == [(no_phone["expires_at"], "email")]
    assert await _recorded(owner_db, refused) == [(refused["expires_at"], "email")]
    assert [m.json["to"] for m in graph.sent("messages")] == ["60175556666"]


async def test_a_reminder_that_could_not_go_out_is_tried_again(
    owner_db: asyncpg.Pool, db: Database, smtp: Inbox, tmp_path: Path
) -> None:
    owner = await _owner(owner_db)
    # Nothing configured: nothing sent, nothing recorded.
    assert await reminders.remind_expiring_plans(db, _settings(tmp_path, None, None)) == 0
    # The mail server unreachable: not recorded...
    down = Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=free_port())
    assert await reminders.remind_expiring_plans(db, down) == 0
    assert await _recorded(owner_db, owner) == []
    # ...so the next run sends it.
    assert await reminders.remind_expiring_plans(db, _settings(tmp_path, None, smtp)) == 1
    smtp.wait_for(owner["email"])
    assert await _recorded(owner_db, owner) == [(owner["expires_at"], "email")]


def test_the_reminder_is_an_hourly_periodic_job() -> None:
    import pocketbizz.payments.tasks  # noqa: F401  (registers the payments' tasks)

    task = app.tasks["pocketbizz.payments.remind_expiring_plans"]
    assert task.queueing_lock == "pocketbizz.payments.remind_expiring_plans"
    periodic = [p for p in app.periodic_registry.periodic_tasks.values() if p.task is task]
    assert [p.cron for p in periodic] == ["23 * * * *"]


def test_the_reminder_settings_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert (settings.plan_reminder_days, settings.whatsapp_reminder_template) == (3, "plan_expiry")


def test_expiry_dates_are_the_businesss_day() -> None:
    moment = datetime.fromisoformat("2026-12-02T17:30:00+00:00")  # 01:30 on 3 Dec in KL
    assert reminders.expiry_date(moment, "Asia/Kuala_Lumpur") == "3 Dec 2026"
    assert reminders.expiry_date(moment, "Europe/London") == "2 Dec 2026"
    assert reminders.expiry_date(moment, "Not/AZone") == "3 Dec 2026"
