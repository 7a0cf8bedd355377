"""ToyyibPay's API as its reference documents it: form-encoded POSTs to /index.php/api/<name>,
JSON answers (usually a one-element array), an error as a body carrying `msg`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(20.0, connect=10.0)


@dataclass(frozen=True)
class Evidence:
    """What ToyyibPay says happened to a bill (a callback's fields, or a re-query's answer)."""

    status: str
    amount: str
    ref: str | None
    reason: str | None


class ToyyibPayError(Exception):
    """ToyyibPay unreachable, or answering an error (its own message when it gave one)."""


async def _call(base_url: str, name: str, fields: Mapping[str, str]) -> Any:
    url = f"{base_url.rstrip('/')}/index.php/api/{name}"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(url, data=dict(fields))
    except httpx.HTTPError as exc:
        raise ToyyibPayError(f"ToyyibPay is unreachable ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        raise ToyyibPayError(f"ToyyibPay answered {response.status_code} without JSON") from None
    message = _error_message(body)
    if response.status_code >= 400 or message is not None:
        raise ToyyibPayError(message or f"ToyyibPay answered {response.status_code}")
    return body


def _error_message(body: Any) -> str | None:
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict) and "msg" in first:
        return str(first["msg"])
    return None


async def create_bill(base_url: str, fields: Mapping[str, str]) -> str:
    """The new bill's code."""
    body = await _call(base_url, "createBill", fields)
    first = body[0] if isinstance(body, list) and body else body
    code = first.get("BillCode") if isinstance(first, dict) else None
    if not isinstance(code, str) or not code:
        raise ToyyibPayError("ToyyibPay answered without a bill code")
    return code


async def bill_transactions(base_url: str, bill_code: str) -> list[dict[str, Any]]:
    body = await _call(base_url, "getBillTransactions", {"billCode": bill_code})
    return [t for t in body if isinstance(t, dict)] if isinstance(body, list) else []


def payment_url(base_url: str, bill_code: str) -> str:
    """Where the payer pays a bill: the host's root followed by the bill code."""
    return f"{base_url.rstrip('/')}/{bill_code}"


def callback_hash(secret_key: str, status: str, order_id: str, refno: str) -> str:
    """md5(userSecretKey . status . order_id . refno . "ok"), as ToyyibPay's own plugin checks."""
    return hashlib.md5(f"{secret_key}{status}{order_id}{refno}ok".encode()).hexdigest()


def valid_callback(secret_key: str, form: Mapping[str, str]) -> bool:
    expected = callback_hash(
        secret_key, form.get("status", ""), form.get("order_id", ""), form.get("refno", "")
    )
    return hmac.compare_digest(expected.encode(), form.get("hash", "").encode())
