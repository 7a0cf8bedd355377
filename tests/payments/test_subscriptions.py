"""Subscriptions through ToyyibPay (issue 10.2), against a local fake that speaks its protocol
over real HTTP, through the official client and real callbacks to a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from harness import ServerProcess
from payments.fake_toyyibpay import FakeToyyibPay, callback_form
from payments.fixtures import payments_server, signed_in
from postgrest.exceptions import APIError
from supabase import Client
from supabase_functions.errors import FunctionsHttpError

from pocketbizz.jobs.repository import enqueue

SECRET = "toyyib-secret-key-for-tests"
CATEGORY = "cat4tests"
QUEUE = "payments-test"


@pytest.fixture(scope="module")
def pay_server(
    owner_dsn: str, fake: FakeToyyibPay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with payments_server(
        owner_dsn,
        fake,
        tmp_path_factory.mktemp("payments"),
        queue=QUEUE,
        PB_TOYYIBPAY_SECRET_KEY=SECRET,
        PB_TOYYIBPAY_CATEGORY_CODE=CATEGORY,
        PB_TOYYIBPAY_REQUERY_AFTER_S="0",
    ) as server:
        yield server


def _subscribe(client: Client, body: dict[str, Any]) -> Any:
    return client.functions.invoke("subscribe", {"body": body, "responseType": "json"})


def _callback_form(
    payment: dict[str, Any], status: str, amount: str, **over: str
) -> dict[str, str]:
    refno = over.pop("refno", "TP2611300001")
    form = callback_form(
        SECRET, payment["payment_id"], payment["bill_code"], status, amount, refno=refno
    )
    return {**form, **over}


def _post_callback(server: ServerProcess, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/webhooks/toyyibpay", data=form)


def _return_page(server: ServerProcess, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/webhooks/toyyibpay/return", params=params)


async def _state(db: asyncpg.Pool, payment: dict[str, Any]) -> tuple[str, str, Any]:
    row = await db.fetchrow(
        """select p.status, u.subscription_plan, u.subscription_expires_at
           from public.subscription_payments p
           join public.users u on u.business_owner_id = p.business_owner_id
           where p.id = $1""",
        payment["payment_id"],
    )
    assert row is not None
    return row["status"], row["subscription_plan"], row["subscription_expires_at"]


async def test_an_owner_subscribes_and_the_fake_receives_the_exact_fields(
    pay_server: ServerProcess,
    fake: FakeToyyibPay,
    make_user: Callable[..., Any],
    db: asyncpg.Pool,
) -> None:
    user = make_user()
    await db.execute(
        "update public.users set full_name = 'Aminah Binti Ali', phone = '0123456789' "
        "where business_owner_id = $1",
        user.id,
    )
    payment = _subscribe(signed_in(pay_server, user), {"plan": "pro", "months": 2})
    assert payment["amount"] == "58.00"  # plans.price_monthly 29.00 × 2
    assert payment["payment_url"] == f"{fake.url}/{payment['bill_code']}"
    assert fake.bills()[-1] == {
        "userSecretKey": SECRET,
        "categoryCode": CATEGORY,
        "billName": "PocketBizz pro",
        "billDescription": "PocketBizz pro plan 2 month",
        "billPriceSetting": "1",
        "billPayorInfo": "1",
        "billAmount": "5800",
        "billReturnUrl": f"{pay_server.url}/webhooks/toyyibpay/return",
        "billCallbackUrl": f"{pay_server.url}/webhooks/toyyibpay",
        "billExternalReferenceNo": payment["payment_id"],
        "billTo": "Aminah Binti Ali",
        "billEmail": user.email,
        "billPhone": "0123456789",
    }
    row = await db.fetchrow(
        "select * from public.subscription_payments where id = $1", payment["payment_id"]
    )
    assert row is not None
    assert (row["status"], row["plan"], row["months"], row["amount"], row["bill_code"]) == (
        "pending",
        "pro",
        2,
        Decimal("58.00"),
        payment["bill_code"],
    )


@pytest.mark.parametrize(
    "body",
    [
        {"plan": "free", "months": 1},
        {"plan": "gold", "months": 1},
        {"plan": "pro", "months": 0},
        {"plan": "pro", "months": 13},
        {"plan": "pro", "months": "1"},
    ],
)
def test_a_free_or_unknown_plan_or_bad_months_is_400(
    pay_server: ServerProcess, make_user: Callable[..., Any], body: dict[str, Any]
) -> None:
    with pytest.raises(FunctionsHttpError) as refused:
        _subscribe(signed_in(pay_server, make_user()), body)
    assert refused.value.status == 400


async def test_a_toyyibpay_error_is_502_and_leaves_no_row(
    pay_server: ServerProcess,
    fake: FakeToyyibPay,
    make_user: Callable[..., Any],
    db: asyncpg.Pool,
) -> None:
    user = make_user()
    fake.error = "[KEY-DID-NOT-EXIST-OR-USER-IS-NOT-ACTIVE]"
    try:
        with pytest.raises(FunctionsHttpError) as refused:
            _subscribe(signed_in(pay_server, user), {"plan": "pro", "months": 1})
    finally:
        fake.error = None
    assert refused.value.status == 502
    assert "KEY-DID-NOT-EXIST-OR-USER-IS-NOT-ACTIVE" in refused.value.message
    assert (
        await db.fetchval(
            "select count(*) from public.subscription_payments where business_owner_id = $1",
            user.id,
        )
        == 0
    )


async def test_only_a_valid_callback_settles_and_only_once(
    pay_server: ServerProcess, make_user: Callable[..., Any], db: asyncpg.Pool
) -> None:
    user = make_user()
    payment = _subscribe(signed_in(pay_server, user), {"plan": "pro", "months": 1})
    before = await _state(db, payment)
    assert before[:2] == ("pending", "free")

    # A forged hash, a visit to the return URL claiming success, an unknown bill: nothing.
    forged = _callback_form(payment, "1", "2900", hash="0" * 32)
    assert _post_callback(pay_server, forged).status_code == 403
    page = _return_page(
        pay_server,
        status_id="1",
        billcode=payment["bill_code"],
        order_id=payment["payment_id"],
        msg="ok",
        transaction_id="TP1",
    )
    assert page.status_code == 200
    assert "not confirmed yet" in page.text and "Status: pending." in page.text
    unknown = _callback_form(payment, "1", "2900", billcode="nosuchbill")
    assert _post_callback(pay_server, unknown).status_code == 404
    assert await _state(db, payment) == before

    # The valid one upgrades the plan for a month, once.
    assert _post_callback(pay_server, _callback_form(payment, "1", "2900")).status_code == 200
    status, plan, expires = await _state(db, payment)
    assert (status, plan) == ("paid", "pro")
    assert expires is not None
    assert 27 <= (expires.timestamp() - time.time()) / 86400 <= 32
    # Replayed (even with another status): 200, nothing changes.
    assert _post_callback(pay_server, _callback_form(payment, "1", "2900")).status_code == 200
    assert _post_callback(pay_server, _callback_form(payment, "3", "2900")).status_code == 200
    assert await _state(db, payment) == (status, plan, expires)
    page = _return_page(pay_server, billcode=payment["bill_code"], order_id=payment["payment_id"])
    assert "Status: paid." in page.text

    # A second payment extends from the current expiry, not from now.
    second = _subscribe(signed_in(pay_server, user), {"plan": "pro", "months": 1})
    assert _post_callback(pay_server, _callback_form(second, "1", "29.00")).status_code == 200
    later = (await _state(db, second))[2]
    assert 27 <= (later - expires).days <= 31


async def test_a_wrong_amount_is_flagged_and_a_failure_is_failed(
    pay_server: ServerProcess, make_user: Callable[..., Any], db: asyncpg.Pool
) -> None:
    user = make_user()
    client = signed_in(pay_server, user)
    short = _subscribe(client, {"plan": "pro", "months": 1})
    assert _post_callback(pay_server, _callback_form(short, "1", "100")).status_code == 200
    assert (await _state(db, short))[:2] == ("flagged", "free")
    failed = _subscribe(client, {"plan": "pro", "months": 1})
    assert _post_callback(pay_server, _callback_form(failed, "3", "2900")).status_code == 200
    assert (await _state(db, failed))[:2] == ("failed", "free")
    pending = _subscribe(client, {"plan": "pro", "months": 1})
    assert _post_callback(pay_server, _callback_form(pending, "2", "2900")).status_code == 200
    assert (await _state(db, pending))[:2] == ("pending", "free")


async def test_a_lost_callback_is_settled_by_the_requery_job(
    pay_server: ServerProcess,
    fake: FakeToyyibPay,
    make_user: Callable[..., Any],
    db: asyncpg.Pool,
) -> None:
    user = make_user()
    payment = _subscribe(signed_in(pay_server, user), {"plan": "pro", "months": 3})
    fake.transactions[payment["bill_code"]] = [
        {
            "billName": "PocketBizz pro",
            "billpaymentStatus": "1",
            "billpaymentAmount": "87.00",
            "billpaymentInvoiceNo": "TP2611300042",
            "billExternalReferenceNo": payment["payment_id"],
            "billpaymentChannel": "FPX",
        }
    ]
    # The periodic job, run now rather than at the next minute, by the server's own worker.
    async with db.acquire() as conn, conn.transaction():
        await enqueue(conn, "pocketbizz.payments.requery_pending", {"timestamp": 0}, queue=QUEUE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (await _state(db, payment))[0] != "pending":
            break
        await asyncio.sleep(0.2)
    assert (await _state(db, payment))[:2] == ("paid", "pro")
    assert ("getBillTransactions", {"billCode": payment["bill_code"]}) in fake.requests


async def test_payments_are_readable_by_their_owner_only_and_writable_by_no_client(
    pay_server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    alice, bob = make_user(), make_user()
    alice_client = signed_in(pay_server, alice)
    payment = _subscribe(alice_client, {"plan": "pro", "months": 1})
    mine = alice_client.table("subscription_payments").select("id, status").execute().data
    assert mine == [{"id": payment["payment_id"], "status": "pending"}]
    bob_client = signed_in(pay_server, bob)
    assert bob_client.table("subscription_payments").select("id").execute().data == []
    with pytest.raises(APIError):
        alice_client.table("subscription_payments").update({"status": "paid"}).eq(
            "id", payment["payment_id"]
        ).execute()
    with pytest.raises(APIError):
        alice_client.table("subscription_payments").insert(
            {"plan": "pro", "months": 1, "amount": "0.01", "bill_code": "x"}
        ).execute()
    assert alice_client.table("subscription_payments").select("status").execute().data == [
        {"status": "pending"}
    ]


async def test_the_servers_pools_log_in_as_no_superuser(
    pay_server: ServerProcess, make_user: Callable[..., Any], db: asyncpg.Pool
) -> None:
    # Settlement and the return page have run (their connections are in the pool now).
    payment = _subscribe(signed_in(pay_server, make_user()), {"plan": "pro", "months": 1})
    assert _post_callback(pay_server, _callback_form(payment, "1", "2900")).status_code == 200
    page = _return_page(pay_server, billcode=payment["bill_code"], order_id=payment["payment_id"])
    assert "Status: paid." in page.text
    backends = await db.fetch(
        """select a.application_name, r.rolname, r.rolsuper, r.rolbypassrls
           from pg_stat_activity a join pg_roles r on r.oid = a.usesysid
           where a.application_name like 'pocketbizz%'"""
    )
    # The request pool and the in-process job worker's own connections among them.
    assert {"pocketbizz", "pocketbizz-jobs"} <= {b["application_name"] for b in backends}
    assert {(b["rolname"], b["rolsuper"], b["rolbypassrls"]) for b in backends} == {
        ("authenticator", False, False)
    }


async def test_pb_payments_may_only_call_the_settlement_functions(db: asyncpg.Pool) -> None:
    roles = await db.fetch(
        """select rolname, rolsuper, rolbypassrls, rolcanlogin from pg_roles
           where rolname in ('pb_payments', 'pb_settlement') order by rolname"""
    )
    assert [tuple(r) for r in roles] == [
        ("pb_payments", False, False, False),
        ("pb_settlement", False, False, False),
    ]
    # No table, column or sequence right of its own anywhere; EXECUTE on the settlement
    # functions of subscriptions and payment links,
    # all in pb_internal (not exposed through REST) and all owned by pb_settlement.
    tables = await db.fetchval(
        """select count(*) from pg_class c
           where c.relkind in ('r', 'v', 'm', 'S', 'p')
             and c.relnamespace not in ('pg_catalog'::regnamespace,
                                        'information_schema'::regnamespace)
             and (has_table_privilege('pb_payments', c.oid,
                                      'select, insert, update, delete, truncate')
                  or has_any_column_privilege('pb_payments', c.oid, 'select, insert, update'))"""
    )
    assert tables == 0
    functions = await db.fetch(
        """select p.oid::regprocedure::text as name, pg_get_userbyid(p.proowner) as owner,
                  p.prosecdef
           from pg_proc p
           where has_function_privilege('pb_payments', p.oid, 'execute')
             and p.pronamespace not in ('pg_catalog'::regnamespace,
                                        'information_schema'::regnamespace)
             and not has_function_privilege('public', p.oid, 'execute')
           order by 1"""
    )
    assert sorted(tuple(f) for f in functions) == [
        ("pb_internal.payment_link_secret(uuid,text)", "pb_settlement", True),
        ("pb_internal.payment_link_status(uuid,text)", "pb_settlement", True),
        ("pb_internal.pending_payment_links(double precision)", "pb_settlement", True),
        ("pb_internal.pending_subscription_payments(double precision)", "pb_settlement", True),
        (
            "pb_internal.settle_payment_link(uuid,text,text,text,text,text)",
            "pb_settlement",
            True,
        ),
        (
            "pb_internal.settle_subscription_payment(uuid,text,text,text,text,text)",
            "pb_settlement",
            True,
        ),
        ("pb_internal.subscription_payment_status(uuid,text)", "pb_settlement", True),
    ]


def test_settings_default_to_the_sandbox(tmp_path: Path) -> None:
    from pocketbizz.settings import Settings

    settings = Settings(data_dir=tmp_path)
    assert settings.toyyibpay_url == "https://dev.toyyibpay.com"
    assert settings.toyyibpay_requery_after_s == 180
