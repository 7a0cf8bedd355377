"""Phoenix frames of the two protocol versions the SDKs speak, chosen per socket by `vsn`.

1.0.0 (supabase-py): one JSON object `{event, topic, payload, ref}` per text frame. Server frames
always carry the `ref` key: on replies it echoes the request's ref (a string, or null when the
request had none); on pushes (changes, broadcasts, system messages) it is null.

2.0.0 (supabase-js, Dart, Swift): text frames are JSON arrays `[join_ref, ref, topic, event,
payload]` both ways, and broadcasts may travel as binary frames (layouts as supabase/realtime's
V2 serializer and realtime-js's serializer):
- kind 3, client → server, "user broadcast push": byte 0 = 3; bytes 1-5 = byte lengths of
  join_ref, ref, topic, user event and metadata; byte 6 = payload encoding (0 binary, 1 JSON);
  then those five UTF-8 fields; then the user payload.
- kind 4, server → client, "user broadcast": byte 0 = 4; bytes 1-3 = byte lengths of topic,
  user event and metadata; byte 4 = encoding; then topic, user event, metadata, payload.
A broadcast that arrived as kind 3 reaches 2.0.0 sockets as kind 4 and 1.0.0 sockets as JSON
(binary payloads cannot reach them and are skipped), as supabase/realtime does.

The official clients silently drop a frame that breaks these rules, so they live here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

PHOENIX_TOPIC = "phoenix"
V1 = "1.0.0"
V2 = "2.0.0"
KIND_USER_BROADCAST_PUSH = 3
KIND_USER_BROADCAST = 4
ENCODING_BINARY = 0
ENCODING_JSON = 1
# Every length in a binary frame header is one byte.
MAX_FIELD_BYTES = 255


class FrameError(ValueError):
    """A client frame we cannot act on; the reason goes back to the client."""

    def __init__(
        self,
        reason: str,
        *,
        topic: str | None = None,
        ref: str | None = None,
        join_ref: str | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.ref = ref
        self.join_ref = join_ref


@dataclass(frozen=True)
class Broadcast:
    """A user broadcast on its way to sockets (and, through NOTIFY, to other processes)."""

    event: str
    payload: bytes  # JSON text when `is_json`, else the raw bytes the client sent
    is_json: bool
    # Sent as a kind-3 binary frame: 2.0.0 sockets get it back as kind 4, as Supabase does.
    binary_origin: bool

    def json_message(self) -> dict[str, Any]:
        """The 1.0.0 / text form; only for JSON payloads."""
        return {"type": "broadcast", "event": self.event, "payload": orjson.Fragment(self.payload)}


@dataclass(frozen=True)
class Frame:
    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None = None
    broadcast: Broadcast | None = None  # the user broadcast of a kind-3 frame


def _exact_number(value: Any) -> Any:
    # Money stays exact on the wire: a Decimal is written as the JSON number it spells.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_exact_number).decode()


def _optional_ref(value: Any, name: str, topic: str | None = None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise FrameError(f"malformed message: '{name}' must be a string or null", topic=topic)


def _checked(topic: Any, event: Any, payload: Any, ref: str | None, join_ref: str | None) -> Frame:
    if not isinstance(topic, str) or not topic:
        raise FrameError("malformed message: 'topic' must be a non-empty string", ref=ref)
    if not isinstance(event, str) or not event:
        raise FrameError(
            "malformed message: 'event' must be a non-empty string", topic=topic, ref=ref
        )
    if not isinstance(payload, dict):
        raise FrameError(
            "malformed message: 'payload' must be an object",
            topic=topic,
            ref=ref,
            join_ref=join_ref,
        )
    return Frame(topic, event, payload, ref, join_ref)


class Codec:
    """Reads and writes the frames of one protocol version."""

    vsn: str

    def decode(self, data: str | bytes) -> Frame:
        raise NotImplementedError

    def encode(
        self,
        topic: str,
        event: str,
        payload: Any,
        ref: str | None = None,
        join_ref: str | None = None,
    ) -> str:
        raise NotImplementedError

    def encode_broadcast(self, topic: str, message: Broadcast) -> str | bytes | None:
        """A broadcast as this protocol delivers it; None when it cannot reach such sockets."""
        raise NotImplementedError

    # -- frames every protocol shares -------------------------------------------------------
    def reply(
        self,
        topic: str,
        ref: str | None,
        response: dict[str, Any] | None = None,
        join_ref: str | None = None,
    ) -> str:
        payload = {"status": "ok", "response": response or {}}
        return self.encode(topic, "phx_reply", payload, ref, join_ref)

    def error_reply(
        self, topic: str, ref: str | None, reason: str, join_ref: str | None = None
    ) -> str:
        payload = {"status": "error", "response": {"reason": reason}}
        return self.encode(topic, "phx_reply", payload, ref, join_ref)

    def system(
        self,
        topic: str,
        *,
        extension: str,
        message: str,
        ok: bool = True,
        join_ref: str | None = None,
    ) -> str:
        payload = {
            "channel": topic.removeprefix("realtime:"),
            "extension": extension,
            "message": message,
            "status": "ok" if ok else "error",
        }
        return self.encode(topic, "system", payload, None, join_ref)

    def close(self, topic: str, join_ref: str | None = None) -> str:
        return self.encode(topic, "phx_close", {}, None, join_ref)


class V1Codec(Codec):
    vsn = V1

    def decode(self, data: str | bytes) -> Frame:
        if isinstance(data, bytes):
            raise FrameError("malformed message: binary frames are not supported (vsn 1.0.0)")
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameError("malformed message: not JSON") from exc
        if not isinstance(message, dict):
            # V2 array frames ([join_ref, ref, topic, event, payload]) land here too.
            raise FrameError("malformed message: expected a JSON object (vsn 1.0.0)")
        raw_ref = message.get("ref")
        ref = raw_ref if isinstance(raw_ref, str) else None
        topic = message.get("topic")
        frame = _checked(topic, message.get("event"), message.get("payload", {}), ref, None)
        if raw_ref is not None and ref is None:
            raise FrameError("malformed message: 'ref' must be a string or null", topic=topic)
        join_ref = message.get("join_ref")
        return Frame(
            frame.topic,
            frame.event,
            frame.payload,
            ref,
            join_ref if isinstance(join_ref, str) else None,
        )

    def encode(
        self,
        topic: str,
        event: str,
        payload: Any,
        ref: str | None = None,
        join_ref: str | None = None,
    ) -> str:
        # 1.0.0 frames carry no join_ref (the Phoenix V1 serializer leaves it out).
        return _dumps({"event": event, "topic": topic, "payload": payload, "ref": ref})

    def encode_broadcast(self, topic: str, message: Broadcast) -> str | None:
        if not message.is_json:
            return None
        return self.encode(topic, "broadcast", message.json_message())


class V2Codec(Codec):
    vsn = V2

    def decode(self, data: str | bytes) -> Frame:
        if isinstance(data, bytes):
            return _decode_user_broadcast_push(data)
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameError("malformed message: not JSON") from exc
        if not isinstance(message, list) or len(message) < 5:
            raise FrameError(
                "malformed message: expected a JSON array [join_ref, ref, topic, event, payload]"
                " (vsn 2.0.0)"
            )
        join_ref, ref, topic, event, payload = message[:5]
        ref = _optional_ref(ref, "ref", topic if isinstance(topic, str) else None)
        join_ref = _optional_ref(join_ref, "join_ref", topic if isinstance(topic, str) else None)
        return _checked(topic, event, payload, ref, join_ref)

    def encode(
        self,
        topic: str,
        event: str,
        payload: Any,
        ref: str | None = None,
        join_ref: str | None = None,
    ) -> str:
        return _dumps([join_ref, ref, topic, event, payload])

    def encode_broadcast(self, topic: str, message: Broadcast) -> str | bytes:
        if not message.binary_origin:
            return self.encode(topic, "broadcast", message.json_message())
        topic_bytes = topic.encode()
        event_bytes = message.event.encode()
        encoding = ENCODING_JSON if message.is_json else ENCODING_BINARY
        header = bytes([KIND_USER_BROADCAST, len(topic_bytes), len(event_bytes), 0, encoding])
        return header + topic_bytes + event_bytes + message.payload


def _decode_user_broadcast_push(data: bytes) -> Frame:
    """A kind-3 frame; any inconsistency is a FrameError, never an exception further up."""
    if not data:
        raise FrameError("malformed message: empty binary frame")
    if data[0] != KIND_USER_BROADCAST_PUSH:
        raise FrameError(f"malformed message: unsupported binary frame kind {data[0]}")
    if len(data) < 7:
        raise FrameError("malformed message: binary frame header is truncated")
    sizes = data[1:6]
    encoding = data[6]
    offset = 7
    fields: list[str] = []
    for size in sizes:
        chunk = data[offset : offset + size]
        if len(chunk) != size:
            raise FrameError("malformed message: binary frame is shorter than its header says")
        try:
            fields.append(chunk.decode())
        except UnicodeDecodeError as exc:
            raise FrameError("malformed message: binary frame field is not UTF-8") from exc
        offset += size
    join_ref, ref, topic, event, metadata = fields
    where = {"topic": topic or None, "ref": ref or None, "join_ref": join_ref or None}
    if not topic:
        raise FrameError("malformed message: 'topic' must be a non-empty string", **where)
    if not event:
        raise FrameError("malformed message: broadcast event must be non-empty", **where)
    if encoding not in (ENCODING_BINARY, ENCODING_JSON):
        raise FrameError(f"malformed message: unknown payload encoding {encoding}", **where)
    if metadata:
        try:
            meta = orjson.loads(metadata)
        except orjson.JSONDecodeError as exc:
            raise FrameError("malformed message: metadata is not JSON", **where) from exc
        if not isinstance(meta, dict):
            raise FrameError("malformed message: metadata must be a JSON object", **where)
    payload = data[offset:]
    if encoding == ENCODING_JSON:
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise FrameError("malformed message: broadcast payload is not JSON", **where) from exc
    message = Broadcast(event, bytes(payload), encoding == ENCODING_JSON, binary_origin=True)
    return Frame(
        topic,
        "broadcast",
        {"type": "broadcast", "event": event},
        ref or None,
        join_ref or None,
        broadcast=message,
    )


CODECS: dict[str, Codec] = {V1: V1Codec(), V2: V2Codec()}


class Push:
    """A server push that many sockets receive (changes, broadcasts, presence diffs): refs are
    null, as Phoenix fastlanes them, so it is encoded at most once per protocol version."""

    __slots__ = ("_encoded", "event", "payload", "topic")

    def __init__(self, topic: str, event: str, payload: Any) -> None:
        self.topic = topic
        self.event = event
        self.payload = payload
        self._encoded: dict[str, str | bytes | None] = {}

    def encoded(self, codec: Codec) -> str | bytes | None:
        try:
            return self._encoded[codec.vsn]
        except KeyError:
            pass
        value: str | bytes | None
        if isinstance(self.payload, Broadcast):
            value = codec.encode_broadcast(self.topic, self.payload)
        else:
            value = codec.encode(self.topic, self.event, self.payload)
        self._encoded[codec.vsn] = value
        return value


def loads_exact(text: str) -> Any:
    """JSON from PostgreSQL with numbers kept exact (numeric columns are money)."""
    return json.loads(text, parse_float=Decimal)
