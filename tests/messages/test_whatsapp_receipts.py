"""WhatsApp receipts: send-receipt through the official client, the sender against a local
Cloud API over real HTTP (media upload, template, retries, permanent errors), and the webhook
(verification, signatures, duplicate and out-of-order statuses)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx
import pytest
from harness import ServerProcess
from messages.fake_graph import APP_SECRET, VERIFY_TOKEN, FakeGraph, graph_error
from postgrest.exceptions import APIError
from supabase import create_client
from supabase_functions.errors import FunctionsHttpError

from pocketbizz.db import Database
from pocketbizz.messages.phone import normalise
from pocketbizz.messages.service import deliver_receipt, pool_transactions
from pocketbizz.messages.whatsapp import GraphError
from pocketbizz.settings import Settings


@pytest.mark.parametrize(
    "given,expected",
    [
        ("012-345 6789", "60123456789"),
        ("+60 12-345 6789", "60123456789"),
        ("0060123456789", "60123456789"),
        ("60123456789", "60123456789"),
        ("011-2345 6789", "601123456789"),
        ("(03) 2345 6789", "60323456789"),
        ("12345", None),
        ("+65 9123 4567", None),
        ("012-345 678x", None),
        ("", None),
    ],
)
def test_malaysian_numbers_normalise(given: str, expected: str | None) -> None:
    assert normalise(given) == expected


def signed_up(server: ServerProcess) -> Any:
    client = create_client(server.url, server.anon_key)
    email = f"wa-{uuid4().hex[:12]}@example.com"
    res = client.auth.sign_up({"email": email, "password": "correct horse battery"})
    assert res.user is not None
    return client, res.user.id


def sell(client: Any, user_id: str) -> dict[str, Any]:
    client.table("business_profiles").update(
        {"business_name": "Kedai Roti Aminah", "negative_stock_policy": "allow"}
    ).eq("business_owner_id", user_id).execute()
    product = (
        client.table("products")
        .insert({"sku": f"ROTI-{uuid4().hex[:8]}", "name": "Roti Canai", "sale_price": "23.52"})
        .execute()
    )
    items = [{"product_id": product.data[0]["id"], "quantity": 1}]
    return dict(
        client.rpc("create_sale", {"items": items, "payment_method": "cash"}).execute().data
    )


def send(client: Any, body: dict[str, Any]) -> Any:
    return client.functions.invoke("send-receipt", {"body": body, "responseType": "json"})


def test_without_whatsapp_only_the_wa_me_link(make_user: Callable[..., Any]) -> None:
    user = make_user()
    sale = sell(user.client, user.id)
    answer = send(user.client, {"sale_id": sale["id"], "phone": "012-345 6789"})
    assert answer["status"] == "not_configured" and "message_id" not in answer
    link = urlsplit(answer["wa_me_url"])
    assert (link.scheme, link.netloc, link.path) == ("https", "wa.me", "/60123456789")
    text = parse_qs(link.query)["text"][0]
    assert sale["sale_number"] in text and "RM 23.50" in text
    receipt_url = text.splitlines()[-1]
    assert "/r/" in receipt_url and httpx.get(receipt_url).status_code == 200
    assert user.client.table("outbound_messages").select("*").execute().data == []


def test_bad_phone_and_other_tenants_sale(make_user: Callable[..., Any]) -> None:
    a, b = make_user(), make_user()
    sale = sell(a.client, a.id)
    with pytest.raises(FunctionsHttpError) as refused:
        send(a.client, {"sale_id": sale["id"], "phone": "12345"})
    assert refused.value.status == 400
    with pytest.raises(FunctionsHttpError) as hidden:
        send(b.client, {"sale_id": sale["id"], "phone": "0123456789"})
    assert hidden.value.status == 404


async def queued(server: ServerProcess, phone: str = "012-345 6789") -> tuple[Any, Any, UUID]:
    client, user_id = signed_up(server)
    sale = sell(client, user_id)
    answer = send(client, {"sale_id": sale["id"], "phone": phone})
    assert answer["status"] == "queued" and answer["wa_me_url"].startswith("https://wa.me/601")
    return client, sale, UUID(answer["message_id"])


def message(client: Any, message_id: UUID) -> dict[str, Any]:
    rows = client.table("outbound_messages").select("*").eq("id", str(message_id)).execute().data
    assert len(rows) == 1
    return dict(rows[0])


async def settled(
    client: Any, message_id: UUID, done: Callable[[dict[str, Any]], bool], limit_s: float = 40
) -> dict[str, Any]:
    """The message once the server's job worker has brought it where `done` says."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        row = message(client, message_id)
        if done(row):
            return row
        assert asyncio.get_running_loop().time() < deadline, row
        await asyncio.sleep(0.2)


def is_(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row["status"] == status


async def test_receipt_reaches_the_api_as_media_and_template(
    wa_server: ServerProcess, graph: FakeGraph, wa_settings: Settings, db: Database
) -> None:
    client, sale, message_id = await queued(wa_server)
    row = await settled(client, message_id, is_("sent"))
    assert (row["to_phone"], row["attempts"]) == ("60123456789", 1)
    assert row["provider_message_id"].startswith("wamid.")

    [upload] = graph.sent("media")
    assert upload.authorization == f"Bearer {wa_settings.whatsapp_token}"
    assert upload.fields == {"messaging_product": "whatsapp", "type": "application/pdf"}
    filename, media_type, pdf = upload.files["file"]
    assert media_type == "application/pdf" and pdf.startswith(b"%PDF-")
    assert filename == f"Resit-{sale['sale_number']}.pdf"
    [sent] = graph.sent("messages")
    template = sent.json["template"]
    assert sent.json["to"] == "60123456789" and sent.json["type"] == "template"
    assert template["name"] == "receipt_ready" and template["language"] == {"code": "ms"}
    header, body = template["components"]
    assert header["parameters"][0]["document"]["filename"] == filename
    assert header["parameters"][0]["document"]["id"]
    assert body["parameters"] == [
        {"type": "text", "text": "Kedai Roti Aminah"},
        {"type": "text", "text": "RM 23.50"},
    ]
    # The job running again (say, after a lost acknowledgement) sends nothing more.
    assert await deliver_receipt(pool_transactions(db), wa_settings, message_id) is None
    assert len(graph.sent("messages")) == 1


async def test_server_error_then_success_is_sent_once(
    wa_server: ServerProcess, graph: FakeGraph
) -> None:
    graph.script("messages", graph_error(500, 2, "Service temporarily unavailable."))
    client, _, message_id = await queued(wa_server)
    row = await settled(client, message_id, is_("sent"))
    assert (row["attempts"], row["error_code"]) == (2, None)
    assert len(graph.sent("messages")) == 2  # the refused call and the accepted one
    assert len(graph.sent("media")) == 2


@pytest.mark.parametrize("code", [130429, 131056])
async def test_rate_limits_are_retried(
    wa_server: ServerProcess, graph: FakeGraph, code: int
) -> None:
    graph.script("messages", graph_error(400, code, "Rate limit hit."))
    client, _, message_id = await queued(wa_server)
    row = await settled(client, message_id, is_("sent"))
    assert row["attempts"] == 2 and len(graph.sent("messages")) == 2


async def test_undeliverable_fails_with_metas_code(
    wa_server: ServerProcess, graph: FakeGraph, wa_settings: Settings, db: Database
) -> None:
    graph.script("messages", graph_error(400, 131026, "Message undeliverable."))
    client, _, message_id = await queued(wa_server)
    row = await settled(client, message_id, is_("failed"))
    assert (row["error_code"], row["error_detail"]) == (131026, "Message undeliverable.")
    assert row["attempts"] == 1
    assert await deliver_receipt(pool_transactions(db), wa_settings, message_id) is None
    assert len(graph.sent("messages")) == 1


async def test_the_sender_alone_keeps_a_retryable_failure_queued(
    wa_server: ServerProcess, graph: FakeGraph, wa_settings: Settings, db: Database
) -> None:
    """What the job sees on a 5xx: the message stays queued with the error, and it raises."""
    graph.script("messages", graph_error(503, 2, "Service temporarily unavailable."))
    client, _, message_id = await queued(wa_server)
    row = await settled(client, message_id, lambda r: r["error_code"] == 2)
    assert row["status"] == "queued"
    with pytest.raises(GraphError) as refused:
        graph.script("messages", graph_error(500, 1, "An unknown error occurred."))
        await deliver_receipt(pool_transactions(db), wa_settings, message_id)
    assert refused.value.retryable and refused.value.code == 1


async def test_messages_are_the_owners_and_never_client_written(
    wa_server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    client, sale, message_id = await queued(wa_server)
    other, _ = signed_up(wa_server)
    assert other.table("outbound_messages").select("*").execute().data == []
    for write in (
        lambda c: c.table("outbound_messages").update({"status": "read"}).eq("id", str(message_id)),
        lambda c: c.table("outbound_messages").insert(
            {"sale_id": sale["id"], "to_phone": "60123456789"}
        ),
        lambda c: c.table("outbound_messages").delete().eq("id", str(message_id)),
    ):
        with pytest.raises(APIError):
            write(client).execute()
    assert message(client, message_id)["status"] != "read"  # the refused update did nothing


def test_webhook_verification(wa_server: ServerProcess) -> None:
    url = f"{wa_server.url}/webhooks/whatsapp"
    good = {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": VERIFY_TOKEN,
    }
    answer = httpx.get(url, params=good)
    assert answer.status_code == 200 and answer.text == "1158201444"
    assert httpx.get(url, params={**good, "hub.verify_token": "wrong"}).status_code == 403
    assert httpx.get(url, params={**good, "hub.mode": "unsubscribe"}).status_code == 403


def status_call(wamid: str, *statuses: str, errors: list[Any] | None = None) -> bytes:
    items = [
        {"id": wamid, "status": s, "timestamp": "1764500000", "recipient_id": "60123456789"}
        for s in statuses
    ]
    if errors:
        for item in items:
            item["errors"] = errors
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "1065",
                            },
                            "statuses": items,
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def post(server: ServerProcess, body: bytes, secret: str | None = APP_SECRET) -> httpx.Response:
    """A webhook call signed with `secret` (None: unsigned)."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={signature}"
    return httpx.post(f"{server.url}/webhooks/whatsapp", content=body, headers=headers)


async def test_webhook_statuses_in_any_order_never_go_back(
    wa_server: ServerProcess, graph: FakeGraph, wa_settings: Settings, db: Database
) -> None:
    client, _, message_id = await queued(wa_server)
    wamid = (await settled(client, message_id, is_("sent")))["provider_message_id"]

    # Forged or unsigned: refused, nothing applied.
    forged = status_call(wamid, "read")
    assert post(wa_server, forged, secret="not-the-app-secret").status_code == 403
    assert post(wa_server, forged, secret=None).status_code == 403
    assert message(client, message_id)["status"] == "sent"

    assert post(wa_server, status_call(wamid, "delivered")).status_code == 200
    assert message(client, message_id)["status"] == "delivered"
    assert post(wa_server, status_call(wamid, "read")).status_code == 200
    assert post(wa_server, status_call(wamid, "read")).status_code == 200  # a duplicate
    assert post(wa_server, status_call(wamid, "sent", "delivered")).status_code == 200  # late
    failed = [
        {
            "code": 131026,
            "title": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."},
        }
    ]
    assert post(wa_server, status_call(wamid, "failed", errors=failed)).status_code == 200
    row = message(client, message_id)
    assert (row["status"], row["error_code"]) == ("read", None)


async def test_webhook_failure_is_recorded_with_its_code(
    wa_server: ServerProcess, graph: FakeGraph, wa_settings: Settings, db: Database
) -> None:
    client, _, message_id = await queued(wa_server)
    wamid = (await settled(client, message_id, is_("sent")))["provider_message_id"]
    failed = [
        {
            "code": 131026,
            "title": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."},
        }
    ]
    assert post(wa_server, status_call(wamid, "failed", errors=failed)).status_code == 200
    row = message(client, message_id)
    assert (row["status"], row["error_code"], row["error_detail"]) == (
        "failed",
        131026,
        "Message Undeliverable.",
    )


async def test_status_arriving_before_the_send_is_recorded_is_applied(
    wa_server: ServerProcess, graph: FakeGraph
) -> None:
    wamid = f"wamid.{uuid4().hex}"
    accepted = {"messaging_product": "whatsapp", "messages": [{"id": wamid}]}
    graph.script("messages", (200, accepted))
    # Meta's webhook can beat the sender's own bookkeeping: kept until the wamid is known.
    assert post(wa_server, status_call(wamid, "delivered")).status_code == 200
    client, _, message_id = await queued(wa_server)
    row = await settled(client, message_id, is_("delivered"))
    assert row["provider_message_id"] == wamid
