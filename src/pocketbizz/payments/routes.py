"""ToyyibPay's two ways back to us: the server-to-server callback (POST, form-encoded, hashed)
and the payer's browser returning (GET, display only). /webhooks/toyyibpay is for PocketBizz's
own subscriptions (the platform's key); /webhooks/toyyibpay/link for payment links (each
tenant's own key)."""

from __future__ import annotations

import html
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from pocketbizz.payments import links, repository, service, toyyibpay
from pocketbizz.payments.runtime import payments_transaction
from pocketbizz.state import app_state

_FIELDS = ("refno", "status", "reason", "billcode", "order_id", "amount", "hash")


async def callback(request: Request) -> Response:
    settings = app_state(request).settings
    if not service.configured(settings):
        return PlainTextResponse("payments are not configured", status_code=404)
    fields = await _callback_fields(request)
    # Before anything is looked up: a forged callback learns nothing and changes nothing.
    if not toyyibpay.valid_callback(settings.toyyibpay_secret_key or "", fields):
        return PlainTextResponse("invalid hash", status_code=403)
    payment_id = _uuid(fields["order_id"])
    if payment_id is None:
        return _unknown_bill()
    return await _settle(request, service.settle, payment_id, fields)


async def link_callback(request: Request) -> Response:
    """A payment link's callback: hashed with the key of the tenant whose link it names, so
    another tenant's key (or none) can never settle it."""
    state = app_state(request)
    fields = await _callback_fields(request)
    link_id = _uuid(fields["order_id"])
    if link_id is None:
        return _unknown_bill()
    async with payments_transaction(state.db) as conn:
        account = await repository.link_secret(conn, link_id, fields["billcode"])
    key = None if account is None else links.callback_key(state.settings, account)
    if key is None:
        return _unknown_bill()
    if not toyyibpay.valid_callback(key, fields):
        return PlainTextResponse("invalid hash", status_code=403)
    return await _settle(request, links.settle, link_id, fields)


async def _callback_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: str(form.get(name) or "") for name in _FIELDS}


async def _settle(
    request: Request, apply: service.Settle, row_id: uuid.UUID, fields: dict[str, str]
) -> Response:
    """Apply a verified callback's evidence with `apply`; OK, or 404 when no such bill."""
    evidence = toyyibpay.Evidence(
        fields["status"], fields["amount"], fields["refno"] or None, fields["reason"] or None
    )
    async with payments_transaction(app_state(request).db) as conn:
        status = await apply(conn, row_id, fields["billcode"], evidence)
    return _unknown_bill() if status is None else PlainTextResponse("OK")


async def link_return_page(request: Request) -> Response:
    """The payer's page after paying a link: what the server knows, never what the query says."""
    link = await _known(request, repository.find_link)
    if link is None:
        return _page("Payment not found", "We know no such payment.", 404)
    status = str(link["status"])
    business = link["business_name"] or "the shop"
    detail = f"{business}, sale {link['sale_number']}, RM {link['amount']}. Status: {status}."
    return _page(_LINK_TITLES.get(status, status), detail, 200)


_LINK_TITLES = {
    "paid": "Payment received — thank you",
    "open": "Payment not confirmed yet",
    "failed": "Payment failed",
    "flagged": "Payment under review",
}

_TITLES = {
    "paid": "Payment received — your plan is active",
    "pending": "Payment not confirmed yet",
    "failed": "Payment failed",
    "flagged": "Payment under review",
}


async def return_page(request: Request) -> Response:
    """What the server knows, whatever the query string claims (it is not authenticated)."""
    payment = await _known(request, repository.find_payment)
    if payment is None:
        return _page("Payment not found", "We know no such payment.", 404)
    status = str(payment["status"])
    detail = (
        f"Plan {payment['plan']} for {payment['months']} month(s), RM {payment['amount']}. "
        f"Status: {status}."
    )
    return _page(_TITLES.get(status, status), detail, 200)


Find = Callable[[asyncpg.Connection, uuid.UUID, str], Awaitable[asyncpg.Record | None]]


async def _known(request: Request, find: Find) -> asyncpg.Record | None:
    """What `find` knows of the payment or link the return URL's order_id and billcode name."""
    row_id = _uuid(request.query_params.get("order_id", ""))
    if row_id is None:
        return None
    async with payments_transaction(app_state(request).db) as conn:
        return await find(conn, row_id, request.query_params.get("billcode", ""))


def _page(title: str, detail: str, status: int) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _unknown_bill() -> Response:
    return PlainTextResponse("unknown bill", status_code=404)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


routes = [
    Route("/webhooks/toyyibpay", callback, methods=["POST"]),
    Route("/webhooks/toyyibpay/return", return_page, methods=["GET"]),
    Route(links.CALLBACK_PATH, link_callback, methods=["POST"]),
    Route(links.RETURN_PATH, link_return_page, methods=["GET"]),
]
