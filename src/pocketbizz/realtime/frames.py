"""Phoenix V1 frames (`vsn=1.0.0`): one JSON object per text frame.

Server frames always carry the `ref` key: on replies it echoes the request's ref (a string, or
null when the request had none); on pushes (changes, broadcasts, system messages) it is null.
The official clients silently drop a frame that breaks these rules, so they live here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

PHOENIX_TOPIC = "phoenix"


class FrameError(ValueError):
    """A client frame we cannot act on; the reason goes back to the client."""

    def __init__(self, reason: str, *, topic: str | None = None, ref: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.ref = ref


@dataclass(frozen=True)
class Frame:
    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None


def parse_frame(text: str) -> Frame:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError("malformed message: not JSON") from exc
    if not isinstance(message, dict):
        # V2 array frames ([join_ref, ref, topic, event, payload]) land here too.
        raise FrameError("malformed message: expected a JSON object (vsn 1.0.0)")
    ref = message.get("ref")
    ref = ref if isinstance(ref, str) else None
    topic = message.get("topic")
    event = message.get("event")
    payload = message.get("payload", {})
    if not isinstance(topic, str) or not topic:
        raise FrameError("malformed message: 'topic' must be a non-empty string", ref=ref)
    if not isinstance(event, str) or not event:
        raise FrameError(
            "malformed message: 'event' must be a non-empty string", topic=topic, ref=ref
        )
    if not isinstance(payload, dict):
        raise FrameError("malformed message: 'payload' must be an object", topic=topic, ref=ref)
    if "ref" in message and message["ref"] is not None and ref is None:
        raise FrameError("malformed message: 'ref' must be a string or null", topic=topic)
    return Frame(topic, event, payload, ref)


def _exact_number(value: Any) -> Any:
    # Money stays exact on the wire: a Decimal is written as the JSON number it spells.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(topic: str, event: str, payload: Any, ref: str | None = None) -> str:
    frame = {"event": event, "topic": topic, "payload": payload, "ref": ref}
    return orjson.dumps(frame, default=_exact_number).decode()


def reply(topic: str, ref: str | None, response: dict[str, Any] | None = None) -> str:
    return encode(topic, "phx_reply", {"status": "ok", "response": response or {}}, ref)


def error_reply(topic: str, ref: str | None, reason: str) -> str:
    return encode(topic, "phx_reply", {"status": "error", "response": {"reason": reason}}, ref)


def system(topic: str, *, extension: str, message: str, ok: bool = True) -> str:
    payload = {
        "channel": topic.removeprefix("realtime:"),
        "extension": extension,
        "message": message,
        "status": "ok" if ok else "error",
    }
    return encode(topic, "system", payload)


def close(topic: str) -> str:
    return encode(topic, "phx_close", {})


def loads_exact(text: str) -> Any:
    """JSON from PostgreSQL with numbers kept exact (numeric columns are money)."""
    return json.loads(text, parse_float=Decimal)
