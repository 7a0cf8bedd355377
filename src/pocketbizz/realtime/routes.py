"""The WebSocket endpoint `/realtime/v1/websocket?apikey=<key>&vsn=1.0.0|2.0.0`, and the
HTTP broadcast `POST /realtime/v1/api/broadcast/{topic}/events/{event}`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

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
from pocketbizz.realtime.channels import broadcast_scope
from pocketbizz.realtime.frames import CODECS, V1, Broadcast
from pocketbizz.realtime.service import SERVICE_KEY, RealtimeService
from pocketbizz.realtime.session import (
    MAX_BROADCAST_BYTES,
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


async def _http_broadcast(request: Request) -> Response:
    identity = request_identity(request)
    if identity.role not in ("anon", "authenticated", "service_role"):
        raise Forbidden("broadcast needs an API key or a signed-in user", code="forbidden")
    if int(request.headers.get("content-length") or 0) > MAX_BROADCAST_BYTES:
        raise PayloadTooLarge(f"broadcast payload is larger than {MAX_BROADCAST_BYTES} bytes")
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest("broadcast payload must be a JSON object", code="invalid_json") from exc
    if not isinstance(payload, dict):
        raise BadRequest("broadcast payload must be a JSON object", code="invalid_json")
    topic = TOPIC_PREFIX + request.path_params["topic"]
    if len(topic) > MAX_TOPIC_LENGTH:
        raise BadRequest(f"topic is longer than {MAX_TOPIC_LENGTH} characters")
    message = Broadcast(
        request.path_params["event"], orjson.dumps(payload), is_json=True, binary_origin=False
    )
    service = app_state(request).services.get(SERVICE_KEY)
    if not isinstance(service, RealtimeService):
        raise ApiError("realtime is not running", status=503, code="unavailable")
    # The public channel of the caller's tenant (anon: the public scope), as a socket's.
    scope = broadcast_scope(identity, private=False)
    note = service.listener.broadcast_note(scope, topic, message)
    if len(note) > MAX_BROADCAST_BYTES:
        raise PayloadTooLarge(f"broadcast payload is larger than {MAX_BROADCAST_BYTES} bytes")
    service.hub.broadcast(scope, topic, message, None)
    await service.listener.publish(note)
    return Response(status_code=202)


async def http_broadcast(request: Request) -> Response:
    """`channel.http_send(event, payload)`: a broadcast over HTTP to a public channel of the
    caller's tenant (or of the public scope, for anon)."""
    try:
        return await _http_broadcast(request)
    except ApiError as exc:
        return universal_response(exc)


routes: list[Any] = [
    WebSocketRoute("/websocket", realtime_socket),
    Route("/api/broadcast/{topic}/events/{event}", http_broadcast, methods=["POST"]),
]
