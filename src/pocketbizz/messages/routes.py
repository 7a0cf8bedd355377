"""`/webhooks/whatsapp`: Meta's verification handshake (GET) and signed event calls (POST).

The POST body is checked against `X-Hub-Signature-256` (HMAC-SHA256 of the raw bytes with the
app secret) before anything is parsed or stored; a bad or missing signature is a 403.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pocketbizz.messages import service
from pocketbizz.state import app_state


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


async def verify(request: Request) -> Response:
    settings = app_state(request).settings
    query = request.query_params
    expected = settings.whatsapp_verify_token
    if (
        expected
        and query.get("hub.mode") == "subscribe"
        and _same(query.get("hub.verify_token", ""), expected)
    ):
        return PlainTextResponse(query.get("hub.challenge", ""))
    return PlainTextResponse("Forbidden", status_code=403)


async def receive(request: Request) -> Response:
    state = app_state(request)
    secret = state.settings.whatsapp_app_secret
    raw = await request.body()
    given = request.headers.get("x-hub-signature-256", "")
    if not secret or not given.startswith("sha256="):
        return PlainTextResponse("Forbidden", status_code=403)
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    if not _same(given.removeprefix("sha256="), expected):
        return PlainTextResponse("Forbidden", status_code=403)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return PlainTextResponse("Bad Request", status_code=400)
    await service.apply_webhook(state.db, payload)
    return PlainTextResponse("OK")


routes = [
    Route("/webhooks/whatsapp", verify, methods=["GET"]),
    Route("/webhooks/whatsapp", receive, methods=["POST"]),
]
