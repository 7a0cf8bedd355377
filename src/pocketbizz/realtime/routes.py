"""The WebSocket endpoint `/realtime/v1/websocket?apikey=<key>&vsn=1.0.0|2.0.0`, and the
HTTP broadcast `POST /realtime/v1/api/broadcast/{topic}/events/{event}`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from pocketbizz.db import Identity
from pocketbizz.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    Unauthorized,
    universal_response,
)
from pocketbizz.gateway import request_identity
from pocketbizz.gateway.identity import api_key_identity
from pocketbizz.realtime import authorization
from pocketbizz.realtime.channels import broadcast_scope
from pocketbizz.realtime.frames import CODECS, V1, Broadcast
from pocketbizz.realtime.service import (
    MAX_BROADCAST_BYTES,
    SERVICE_KEY,
    BroadcastTooLarge,
    RealtimeService,
)
from pocketbizz.realtime.session import (
    MAX_TOPIC_LENGTH,
    TOPIC_PREFIX,
    Session,
)
from pocketbizz.state import app_state


async def _refuse(ws: WebSocket, exc: ApiError) -> None:
    """Answer the handshake with an HTTP error when the server can, else close at once."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(universal_response(exc))
    else:
        await ws.close(code=1008, reason=exc.message[:120])


async def realtime_socket(ws: WebSocket) -> None:
    state = app_state(ws)
    apikey = ws.query_params.get("apikey") or ws.headers.get("apikey") or ""
    try:
        key_identity = api_key_identity(apikey, state.settings.secret)
    except Unauthorized as exc:
        await _refuse(ws, exc)
        return
    vsn = ws.query_params.get("vsn", V1)
    codec = CODECS.get(vsn)
    if codec is None:
        await _refuse(
            ws,
            BadRequest(
                f"unsupported vsn {vsn!r}; use vsn=1.0.0 or vsn=2.0.0", code="unsupported_vsn"
            ),
        )
        return
    service = state.services.get(SERVICE_KEY)
    if not isinstance(service, RealtimeService):
        await _refuse(ws, ApiError("realtime is not running", status=503, code="unavailable"))
        return
    await ws.accept()
    session = Session(
        ws,
        service=service,
        codec=codec,
        apikey=apikey,
        key_identity=key_identity,
        secret=state.settings.secret,
        max_frame_bytes=state.settings.max_body_bytes,
    )
    service.sessions.add(session)
    try:
        await session.run()
    finally:
        service.sessions.discard(session)


def _service(request: Request) -> RealtimeService:
    service = app_state(request).services.get(SERVICE_KEY)
    if not isinstance(service, RealtimeService):
        raise ApiError("realtime is not running", status=503, code="unavailable")
    return service


def _caller(request: Request) -> Identity:
    identity = request_identity(request)
    if identity.role not in ("anon", "authenticated", "service_role"):
        raise Forbidden("broadcast needs an API key or a signed-in user", code="forbidden")
    return identity


async def _body(request: Request) -> bytes:
    if int(request.headers.get("content-length") or 0) > MAX_BROADCAST_BYTES:
        raise PayloadTooLarge(f"broadcast payload is larger than {MAX_BROADCAST_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BROADCAST_BYTES:
        raise PayloadTooLarge(f"broadcast payload is larger than {MAX_BROADCAST_BYTES} bytes")
    return body


async def _send(
    service: RealtimeService,
    identity: Identity,
    sub_topic: str,
    message: Broadcast,
    *,
    private: bool,
) -> bool:
    """One broadcast from HTTP, as a socket of this identity would send it; False when a
    private topic's policies refuse it (INSERT on realtime.messages)."""
    topic = TOPIC_PREFIX + sub_topic
    if not sub_topic or len(topic) > MAX_TOPIC_LENGTH:
        raise BadRequest(f"topic must be 1 to {MAX_TOPIC_LENGTH - len(TOPIC_PREFIX)} characters")
    if private and not await authorization.may_send(service.db, identity, sub_topic, "broadcast"):
        return False
    try:
        await service.broadcast(broadcast_scope(identity, private=private), topic, message)
    except BroadcastTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from exc
    return True


async def _http_broadcast(request: Request) -> Response:
    identity = _caller(request)
    body = await _body(request)
    event = request.path_params["event"]
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        # httpSend() of an ArrayBuffer: the bytes as they are, for 2.0.0 sockets only.
        message = Broadcast(event, body, is_json=False, binary_origin=True)
    else:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(
                "broadcast payload must be a JSON object", code="invalid_json"
            ) from exc
        if not isinstance(payload, dict):
            raise BadRequest("broadcast payload must be a JSON object", code="invalid_json")
        message = Broadcast(event, orjson.dumps(payload), is_json=True, binary_origin=False)
    private = request.query_params.get("private") == "true"
    sub_topic = request.path_params["topic"]
    if not await _send(_service(request), identity, sub_topic, message, private=private):
        raise Forbidden(
            f"You do not have permissions to write to this Channel topic: {sub_topic}",
            code="unauthorized",
        )
    return Response(status_code=202)


async def _http_broadcast_batch(request: Request) -> Response:
    identity = _caller(request)
    try:
        body = orjson.loads(await _body(request))
    except orjson.JSONDecodeError as exc:
        raise BadRequest("body must be JSON", code="invalid_json") from exc
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not all(
        isinstance(m, dict)
        and isinstance(m.get("topic"), str)
        and isinstance(m.get("event"), str)
        and isinstance(m.get("payload"), dict)
        for m in messages
    ):
        raise BadRequest(
            "body must be {messages: [{topic, event, payload, private?}]}", code="invalid_json"
        )
    service = _service(request)
    for m in messages:
        message = Broadcast(
            m["event"], orjson.dumps(m["payload"]), is_json=True, binary_origin=False
        )
        # A private message the policies refuse is left out, as supabase/realtime does.
        await _send(service, identity, m["topic"], message, private=m.get("private") is True)
    return Response(status_code=202)


def _protocol_errors(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return universal_response(exc)

    return endpoint


routes: list[Any] = [
    WebSocketRoute("/websocket", realtime_socket),
    # channel.send() before the channel is joined (the REST fallback of supabase-js).
    Route("/api/broadcast", _protocol_errors(_http_broadcast_batch), methods=["POST"]),
    # channel.httpSend() (supabase-js) and channel.http_send() (supabase-py).
    Route(
        "/api/broadcast/{topic}/events/{event}",
        _protocol_errors(_http_broadcast),
        methods=["POST"],
    ),
]
