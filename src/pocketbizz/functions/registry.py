"""The functions served at /functions/v1/{name}, by name."""

from __future__ import annotations

from dataclasses import dataclass

from pocketbizz.functions import analytics, events, receipt, send_receipt
from pocketbizz.functions.context import FunctionHandler
from pocketbizz.payments import links as payment_links
from pocketbizz.payments import service as payments


@dataclass(frozen=True)
class RegisteredFunction:
    handler: FunctionHandler
    # Most functions read a tenant's data: anon callers get a 401 before any SQL runs.
    requires_user: bool = True


FUNCTIONS: dict[str, RegisteredFunction] = {
    "analytics": RegisteredFunction(analytics.run),
    "receipt": RegisteredFunction(receipt.run),
    "subscribe": RegisteredFunction(payments.subscribe),
    "payment-settings": RegisteredFunction(payment_links.payment_settings),
    "payment-link": RegisteredFunction(payment_links.payment_link),
    "send-receipt": RegisteredFunction(send_receipt.run),
    # Before sign-in the app reports with the anon key and a device id.
    "events": RegisteredFunction(events.run, requires_user=False),
}
