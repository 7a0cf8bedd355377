"""Payment links (issue 10.3): a business collects a sale through its OWN ToyyibPay account.
Through the official client and real callbacks to a real server, against the local fake
ToyyibPay over real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest
from harness import ServerProcess
from payments.fake_toyyibpay import FakeToyyibPay, callback_form
from payments.fixtures import payments_server, signed_in
from postgrest.exceptions import APIError
from supabase import Client, create_client
from supabase_functions.errors import FunctionsHttpError

from pocketbizz.jobs.repository import enqueue
from pocketbizz.payments import sealing

QUEUE = "payment-links-test"
A_KEY = "a1b2c3d4-aaaa-4bbb-8ccc-0123456789ab"
B_KEY = "b9b8b7b6-bbbb-4ccc-8ddd-ba9876543210"


@pytest.fixture(scope="module")
def link_server(
    owner_dsn: str, fake: FakeToyyibPay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # No platform account (PB_TOYYIBPAY_SECRET_KEY): links use each tenant's own.
    with payments_server(
        owner_dsn,
        fake,
        tmp_path_factory.mktemp("payment-links"),
        queue=QUEUE,
        PB_SECRETS_KEY="server-secrets-key-for-the-payment-link-tests",
        PB_TOYYIBPAY_REQUERY_AFTER_S="0",
    ) as server:
        yield server


def _invoke(client: Client, name: str, body: Any = None, method: str = "POST") -> Any:
    options: dict[str, Any] = {"responseType": "json", "method": method}
    if body is not None:
        options["body"] = body
    return client.functions.invoke(name, options)


def _configure(client: Client, key: str, category: str) -> Any:
    return _invoke(
        client, "payment-settings", {"secret_key": key, "category_code": category}, "PUT"
    )


@pytest.fixture
def shop(link_server: ServerProcess, make_user: Callable[..., Any]) -> tuple[Any, Client]:
    """A new owner, signed in, whose own ToyyibPay account (A_KEY, catA) is set: (user, client)."""
    user = make_user()
    client = signed_in(link_server, user)
    _configure(client, A_KEY, "catA")
    return user, client


def _pending_sale(
    client: Client, user_id: str, price: str = "23.50", *, paid_in_cash: bool = False
) -> dict[str, Any]:
    client.table("business_profiles").update(
        {"business_name": "Kedai Kek Aminah", "negative_stock_policy": "allow"}
    ).eq("business_owner_id", user_id).execute()
    product = (
        client.table("products")
        .insert({"sku": f"KEK-{uuid.uuid4().hex[:8]}", "name": "Kek Batik", "sale_price": price})
        .execute()
        .data[0]
    )
    args = {
        "items": [{"product_id": product["id"], "quantity": 1}],
        "payment_method": "cash" if paid_in_cash else "toyyibpay",
        "payment_status": "paid" if paid_in_cash else "pending",
    }
    return dict(client.rpc("create_sale", args).execute().data)


def _linked_sale(
    client: Client, user_id: str, price: str, fake: FakeToyyibPay
) -> tuple[dict[str, Any], Any, str]:
    """A pending sale of `price` and its new link: (sale, the link's answer, the link's id, as
    the bill that `fake` received names it)."""
    sale = _pending_sale(client, user_id, price)
    link = _invoke(client, "payment-link", {"sale_id": sale["id"]})
    return sale, link, fake.bills()[-1]["billExternalReferenceNo"]


def _post_callback(server: ServerProcess, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/webhooks/toyyibpay/link", data=form)


def _return_page(server: ServerProcess, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/webhooks/toyyibpay/link/return", params=params)


async def _sale_state(db: asyncpg.Pool, sale_id: str) -> tuple[str, list[str]]:
    payment = await db.fetchval(
        "select payment_status from public.sales where id = $1", uuid.UUID(sale_id)
    )
    links = await db.fetch(
        "select status from public.payment_links where sale_id = $1 order by created_at",
        uuid.UUID(sale_id),
    )
    return str(payment), [str(r["status"]) for r in links]


# --- settings --------------------------------------------------------------------------------


async def test_settings_are_stored_sealed_and_the_key_is_never_returned(
    link_server: ServerProcess, make_user: Callable[..., Any], db: asyncpg.Pool
) -> None:
    user = make_user()
    client = signed_in(link_server, user)
    assert _invoke(client, "payment-settings", method="GET") == {
        "configured": False,
        "category_code": None,
    }
    answer = _configure(client, A_KEY, "cat4shop")
    assert answer == {"configured": True, "category_code": "cat4shop"}
    assert _invoke(client, "payment-settings", method="GET") == answer
    # Through REST the owner sees the category and nothing that holds the key.
    rows = client.table("payment_settings").select("*").execute().data
    assert [r["category_code"] for r in rows] == ["cat4shop"]
    assert A_KEY not in str(rows)
    sealed = await db.fetchval(
        "select secret_key_sealed from pb_internal.payment_secrets where business_owner_id = $1",
        uuid.UUID(user.id),
    )
    assert A_KEY.encode() not in sealed
    key = "server-secrets-key-for-the-payment-link-tests"
    assert sealing.unseal(key, uuid.UUID(user.id), sealed) == A_KEY
    # Clients cannot write the settings themselves, nor reach the sealed key.
    with pytest.raises(APIError):
        client.table("payment_settings").update({"category_code": "x"}).eq(
            "business_owner_id", user.id
        ).execute()
    with pytest.raises(APIError):
        client.schema("pb_internal").table("payment_secrets").select("*").execute()
    # Replaced, then removed.
    assert _configure(client, B_KEY, "cat5")["category_code"] == "cat5"
    assert _invoke(client, "payment-settings", method="DELETE") == {
        "configured": False,
        "category_code": None,
    }
    assert (
        await db.fetchval(
            "select count(*) from pb_internal.payment_secrets where business_owner_id = $1",
            uuid.UUID(user.id),
        )
        == 0
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "invalid_argument"),
        ({"category_code": "cat"}, "invalid_secret_key"),
        ({"secret_key": "short", "category_code": "cat"}, "invalid_secret_key"),
        ({"secret_key": A_KEY + "'; drop", "category_code": "cat"}, "invalid_secret_key"),
        ({"secret_key": A_KEY}, "invalid_category_code"),
        ({"secret_key": A_KEY, "category_code": "cat code!"}, "invalid_category_code"),
        ({"secret_key": A_KEY, "category_code": 12}, "invalid_category_code"),
    ],
)
def test_invalid_settings_are_400_with_the_reason(
    link_server: ServerProcess, make_user: Callable[..., Any], body: Any, code: str
) -> None:
    user = make_user()
    client = signed_in(link_server, user)
    session = client.auth.get_session()
    assert session is not None
    response = httpx.put(
        f"{link_server.url}/functions/v1/payment-settings",
        json=body,
        headers={
            "apikey": link_server.anon_key,
            "Authorization": f"Bearer {session.access_token}",
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert _invoke(client, "payment-settings", method="GET")["configured"] is False


def test_settings_need_a_signed_in_owner(link_server: ServerProcess) -> None:
    anon = create_client(link_server.url, link_server.anon_key)
    with pytest.raises(FunctionsHttpError) as info:
        _invoke(anon, "payment-settings", method="GET")
    assert info.value.status == 401


def test_other_methods_are_405(link_server: ServerProcess, make_user: Callable[..., Any]) -> None:
    client = signed_in(link_server, make_user())
    for name, method in [("payment-settings", "POST"), ("payment-link", "GET")]:
        with pytest.raises(FunctionsHttpError) as info:
            _invoke(client, name, {"sale_id": str(uuid.uuid4())}, method)
        assert info.value.status == 405, name


# --- links -----------------------------------------------------------------------------------


def test_without_settings_a_link_is_409(
    link_server: ServerProcess, make_user: Callable[..., Any], fake: FakeToyyibPay
) -> None:
    user = make_user()
    client = signed_in(link_server, user)
    sale = _pending_sale(client, user.id)
    bills = len(fake.bills())
    with pytest.raises(FunctionsHttpError) as info:
        _invoke(client, "payment-link", {"sale_id": sale["id"]})
    assert info.value.status == 409
    assert "payment-settings" in info.value.message
    assert len(fake.bills()) == bills


async def test_a_link_is_a_bill_on_the_tenants_account_paid_once_by_its_callback(
    link_server: ServerProcess,
    shop: tuple[Any, Client],
    fake: FakeToyyibPay,
    db: asyncpg.Pool,
) -> None:
    user, client = shop
    sale = _pending_sale(client, user.id, "23.50")
    link = _invoke(client, "payment-link", {"sale_id": sale["id"]})
    assert link == {
        "sale_id": sale["id"],
        "bill_code": link["bill_code"],
        "payment_url": f"{fake.url}/{link['bill_code']}",
        "amount": "23.50",
    }
    bill = fake.bills()[-1]
    link_id = bill["billExternalReferenceNo"]
    assert uuid.UUID(link_id)
    assert (
        bill
        == {
            "userSecretKey": A_KEY,  # the tenant's own account, not the platform's
            "categoryCode": "catA",
            "billName": f"Kedai Kek Aminah {sale['sale_number']}"[:30].replace("-", "_"),
            "billDescription": f"Kedai Kek Aminah sale {sale['sale_number']}".replace("-", "_"),
            "billPriceSetting": "1",
            "billPayorInfo": "0",
            "billAmount": "2350",
            "billReturnUrl": f"{link_server.url}/webhooks/toyyibpay/link/return",
            "billCallbackUrl": f"{link_server.url}/webhooks/toyyibpay/link",
            "billExternalReferenceNo": link_id,
            "billTo": "",
            "billEmail": "",
            "billPhone": "",
        }
    )
    # Asked again (a second tap, a retry): the same open link, no second bill.
    bills = len(fake.bills())
    assert _invoke(client, "payment-link", {"sale_id": sale["id"]}) == link
    assert len(fake.bills()) == bills
    assert await _sale_state(db, sale["id"]) == ("pending", ["open"])

    paid = callback_form(A_KEY, link_id, link["bill_code"], "1", "2350")
    assert _post_callback(link_server, paid).status_code == 200
    assert await _sale_state(db, sale["id"]) == ("paid", ["paid"])
    settled_at = await db.fetchval(
        "select settled_at from public.payment_links where id = $1", uuid.UUID(link_id)
    )
    # A replay, or a later failure for the same bill, changes nothing.
    assert _post_callback(link_server, paid).status_code == 200
    failed = callback_form(A_KEY, link_id, link["bill_code"], "3", "2350", refno="TP002")
    assert _post_callback(link_server, failed).status_code == 200
    assert await _sale_state(db, sale["id"]) == ("paid", ["paid"])
    assert settled_at == await db.fetchval(
        "select settled_at from public.payment_links where id = $1", uuid.UUID(link_id)
    )
    # The owner reads the link; the payer's return page shows what the server knows.
    rows = client.table("payment_links").select("sale_id, status, amount").execute().data
    assert rows == [{"sale_id": sale["id"], "status": "paid", "amount": 23.5}]
    page = _return_page(link_server, billcode=link["bill_code"], order_id=link_id, status_id="3")
    assert page.status_code == 200 and "Status: paid." in page.text
    # And a paid sale gets no new link.
    with pytest.raises(FunctionsHttpError) as info:
        _invoke(client, "payment-link", {"sale_id": sale["id"]})
    assert info.value.status == 409


async def test_forged_wrong_amount_and_failed_callbacks(
    link_server: ServerProcess,
    shop: tuple[Any, Client],
    fake: FakeToyyibPay,
    db: asyncpg.Pool,
) -> None:
    user, client = shop
    sale, link, link_id = _linked_sale(client, user.id, "10.00", fake)
    code = link["bill_code"]

    forged = callback_form("not-the-key", link_id, code, "1", "1000")
    assert _post_callback(link_server, forged).status_code == 403
    tampered = {**callback_form(A_KEY, link_id, code, "1", "1000"), "status": "3"}
    assert _post_callback(link_server, tampered).status_code == 403
    unknown = callback_form(A_KEY, str(uuid.uuid4()), code, "1", "1000")
    assert _post_callback(link_server, unknown).status_code == 404
    assert _post_callback(link_server, {"order_id": "x"}).status_code == 404
    assert await _sale_state(db, sale["id"]) == ("pending", ["open"])
    # A return visit claiming success settles nothing.
    page = _return_page(link_server, billcode=code, order_id=link_id, status_id="1")
    assert "Status: open." in page.text
    assert await _sale_state(db, sale["id"]) == ("pending", ["open"])

    # Pending (2) keeps it open; failed (3) ends the link, the sale stays unpaid...
    assert _post_callback(link_server, callback_form(A_KEY, link_id, code, "2", "1000")).is_success
    assert await _sale_state(db, sale["id"]) == ("pending", ["open"])
    assert _post_callback(link_server, callback_form(A_KEY, link_id, code, "3", "1000")).is_success
    assert await _sale_state(db, sale["id"]) == ("pending", ["failed"])
    # ...so a new link can be made; paid with the wrong amount, it is flagged, not paid.
    second = _invoke(client, "payment-link", {"sale_id": sale["id"]})
    assert second["bill_code"] != code
    second_id = fake.bills()[-1]["billExternalReferenceNo"]
    short = callback_form(A_KEY, second_id, second["bill_code"], "1", "100")
    assert _post_callback(link_server, short).status_code == 200
    assert await _sale_state(db, sale["id"]) == ("pending", ["failed", "flagged"])


async def test_a_link_paid_after_its_sale_was_voided_is_flagged(
    link_server: ServerProcess,
    shop: tuple[Any, Client],
    fake: FakeToyyibPay,
    db: asyncpg.Pool,
) -> None:
    user, client = shop
    sale, link, link_id = _linked_sale(client, user.id, "8.00", fake)
    client.rpc("void_sale", {"sale_id": sale["id"], "reason": "cancelled"}).execute()
    # The customer pays anyway: the money is real, the sale is gone — for a person to resolve.
    paid = callback_form(A_KEY, link_id, link["bill_code"], "1", "800")
    assert _post_callback(link_server, paid).status_code == 200
    assert await _sale_state(db, sale["id"]) == ("pending", ["flagged"])
    status = await db.fetchval(
        "select status from public.sales where id = $1", uuid.UUID(sale["id"])
    )
    assert status == "void"


def test_paid_void_unknown_and_other_tenants_sales_get_no_link(
    link_server: ServerProcess, make_user: Callable[..., Any], fake: FakeToyyibPay
) -> None:
    alice, bob = make_user(), make_user()
    a, b = signed_in(link_server, alice), signed_in(link_server, bob)
    _configure(a, A_KEY, "catA")
    _configure(b, B_KEY, "catB")
    cash = _pending_sale(a, alice.id, paid_in_cash=True)
    voided = _pending_sale(a, alice.id)
    a.rpc("void_sale", {"sale_id": voided["id"], "reason": "customer left"}).execute()
    alices_unpaid = _pending_sale(a, alice.id)
    bills = len(fake.bills())
    cases = [
        (a, {"sale_id": cash["id"]}, 409, "already paid"),
        (a, {"sale_id": voided["id"]}, 409, "void"),
        (a, {"sale_id": str(uuid.uuid4())}, 404, "not found"),
        (a, {"sale_id": "nope"}, 400, "sale_id"),
        (a, None, 400, "sale_id"),
        (b, {"sale_id": alices_unpaid["id"]}, 404, "not found"),  # never "forbidden"
    ]
    for client, body, status, words in cases:
        with pytest.raises(FunctionsHttpError) as info:
            _invoke(client, "payment-link", body)
        assert (info.value.status, words in info.value.message.lower()) == (status, True), body
    assert len(fake.bills()) == bills
    assert a.table("payment_links").select("id").execute().data == []


async def test_tenant_bs_callback_can_never_mark_tenant_as_sale(
    link_server: ServerProcess,
    make_user: Callable[..., Any],
    fake: FakeToyyibPay,
    db: asyncpg.Pool,
) -> None:
    alice, bob = make_user(), make_user()
    a, b = signed_in(link_server, alice), signed_in(link_server, bob)
    _configure(a, A_KEY, "catA")
    _configure(b, B_KEY, "catB")
    a_sale, a_link, a_link_id = _linked_sale(a, alice.id, "50.00", fake)
    b_sale, b_link, b_link_id = _linked_sale(b, bob.id, "50.00", fake)
    assert fake.bills()[-1]["userSecretKey"] == B_KEY

    # B hashes a "paid" callback for A's link with B's own key: refused.
    aimed = callback_form(B_KEY, a_link_id, a_link["bill_code"], "1", "5000")
    assert _post_callback(link_server, aimed).status_code == 403
    # B's own link id with A's bill code, or A's link id with B's bill code: no such link.
    mixed = callback_form(B_KEY, b_link_id, a_link["bill_code"], "1", "5000")
    assert _post_callback(link_server, mixed).status_code == 404
    crossed = callback_form(B_KEY, a_link_id, b_link["bill_code"], "1", "5000")
    assert _post_callback(link_server, crossed).status_code == 404
    assert await _sale_state(db, a_sale["id"]) == ("pending", ["open"])
    # B's valid callback settles B's sale only.
    own = callback_form(B_KEY, b_link_id, b_link["bill_code"], "1", "5000")
    assert _post_callback(link_server, own).status_code == 200
    assert await _sale_state(db, b_sale["id"]) == ("paid", ["paid"])
    assert await _sale_state(db, a_sale["id"]) == ("pending", ["open"])
    # Neither reads the other's links or settings.
    assert b.table("payment_links").select("sale_id").execute().data == [{"sale_id": b_sale["id"]}]
    assert [r["category_code"] for r in b.table("payment_settings").select("*").execute().data] == [
        "catB"
    ]


async def test_a_lost_callback_is_settled_by_the_requery_job(
    link_server: ServerProcess,
    shop: tuple[Any, Client],
    fake: FakeToyyibPay,
    db: asyncpg.Pool,
) -> None:
    user, client = shop
    sale, link, link_id = _linked_sale(client, user.id, "12.30", fake)
    fake.transactions[link["bill_code"]] = [
        {
            "billpaymentStatus": "1",
            "billpaymentAmount": "12.30",
            "billpaymentInvoiceNo": "TP2611300077",
            "billExternalReferenceNo": link_id,
        }
    ]
    # The periodic job, run now by the server's own worker, with no platform account set.
    async with db.acquire() as conn, conn.transaction():
        await enqueue(conn, "pocketbizz.payments.requery_pending", {"timestamp": 0}, queue=QUEUE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (await _sale_state(db, sale["id"]))[0] != "pending":
            break
        await asyncio.sleep(0.2)
    assert await _sale_state(db, sale["id"]) == ("paid", ["paid"])
    assert ("getBillTransactions", {"billCode": link["bill_code"]}) in fake.requests


def test_concurrent_requests_for_one_sale_make_one_bill(
    link_server: ServerProcess, shop: tuple[Any, Client], fake: FakeToyyibPay
) -> None:
    user, client = shop
    sale = _pending_sale(client, user.id)
    bills = len(fake.bills())
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: _invoke(
                    signed_in(link_server, user), "payment-link", {"sale_id": sale["id"]}
                ),
                range(4),
            )
        )
    assert len({a["bill_code"] for a in answers}) == 1
    assert len(fake.bills()) == bills + 1


# --- sealing ---------------------------------------------------------------------------------


def test_a_sealed_key_opens_only_for_its_tenant_and_server_key() -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    sealed = sealing.seal("server key one", tenant, A_KEY)
    assert sealed != sealing.seal("server key one", tenant, A_KEY)  # a fresh nonce each time
    assert sealing.unseal("server key one", tenant, sealed) == A_KEY
    for key, owner, value in [
        ("server key one", other, sealed),
        ("server key two", tenant, sealed),
        ("server key one", tenant, sealed[:-1] + bytes([sealed[-1] ^ 1])),
        ("server key one", tenant, b"\x02" + sealed[1:]),
    ]:
        with pytest.raises(sealing.SealError):
            sealing.unseal(key, owner, value)


def test_the_secrets_key_is_generated_once_in_the_data_dir(tmp_path: Any) -> None:
    from pocketbizz.settings import Settings

    first = Settings(data_dir=tmp_path).secrets_key_material
    assert first == Settings(data_dir=tmp_path).secrets_key_material
    assert (tmp_path / "secrets_key").stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path, secrets_key="x" * 40).secrets_key_material == "x" * 40
