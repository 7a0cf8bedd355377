"""How the data API answers: media types (JSON array, single object, CSV, nulls stripped),
`Content-Range`, `Preference-Applied`, and PostgREST's status codes for each outcome."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from pocketbizz.errors import ApiError, PostgrestCode, PostgrestError
from pocketbizz.rest.query import Preferences

JSON = "application/json; charset=utf-8"
OBJECT = "application/vnd.pgrst.object+json"
CSV = "text/csv"
PLAN = "application/vnd.pgrst.plan"
# EXPLAIN options PostgREST passes through from `Accept: …; options=analyze|verbose`.
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


@dataclass(frozen=True)
class PlanRequest:
    """`Accept: application/vnd.pgrst.plan+json; for="…"; options=analyze|verbose`."""

    format: str  # 'json' | 'text'
    options: tuple[str, ...]
    for_media: str

    @property
    def media_type(self) -> str:
        return f'{PLAN}+{self.format}; for="{self.for_media}"; charset=utf-8'


def plan_of(request: Request) -> PlanRequest | None:
    """The execution plan the request asks for instead of rows, if any."""
    accept = request.headers.get("accept") or ""
    start = accept.find(PLAN)
    if start < 0:
        return None
    media, *params = (p.strip() for p in accept[start:].split(";"))
    suffix = media[len(PLAN) :]
    if suffix not in ("", "+json", "+text"):
        return None
    options: tuple[str, ...] = ()
    for_media = "application/json"
    for param in params:
        name, _, value = param.partition("=")
        value = value.strip().strip('"')
        if name.strip() == "options":
            wanted = value.split("|")
            options = tuple(o for o in PLAN_OPTIONS if o in wanted)
        elif name.strip() == "for" and value:
            for_media = value
    return PlanRequest("json" if suffix == "+json" else "text", options, for_media)


def accept_of(request: Request) -> str:
    accept = request.headers.get("accept") or "*/*"
    if OBJECT in accept:
        return OBJECT
    if CSV in accept:
        return CSV
    if any(
        m in accept
        for m in ("*/*", "application/json", "application/*", "application/vnd.pgrst.array+json")
    ):
        return JSON
    raise PostgrestError(
        PostgrestCode.MEDIA_TYPE, "None of these media types are available: " + accept
    )


def strips_nulls(request: Request) -> bool:
    return "nulls=stripped" in (request.headers.get("accept") or "")


def single_error(n: int) -> ApiError:
    return PostgrestError(
        PostgrestCode.SINGULARITY,
        "Cannot coerce the result to a single JSON object",
        details=f"The result contains {n} rows",
    )


def render(
    body: str | None,
    n: int,
    accept: str,
    status: int,
    headers: dict[str, str],
    *,
    head: bool = False,
) -> Response:
    if head or body is None:
        return Response(status_code=status, headers=headers, media_type=None)
    if accept == OBJECT:
        # json_agg of exactly one row: the object is the array minus its brackets.
        return Response(body[1:-1], status, headers, media_type=f"{OBJECT}; charset=utf-8")
    if accept == CSV:
        return Response(_csv(body), status, headers, media_type="text/csv; charset=utf-8")
    return Response(body, status, headers, media_type=JSON)


# CSV is rendered from the JSON rows in Python; above this size, in a worker thread so one
# large export does not hold the event loop (JSON bodies pass through as they are).
_CSV_INLINE_BYTES = 64 * 1024


async def render_rows(
    body: str | None,
    n: int,
    accept: str,
    status: int,
    headers: dict[str, str],
    *,
    head: bool = False,
) -> Response:
    """`render`, with a large CSV conversion off the event loop."""
    if accept == CSV and not head and body is not None and len(body) > _CSV_INLINE_BYTES:
        text = await asyncio.to_thread(_csv, body)
        return Response(text, status, headers, media_type="text/csv; charset=utf-8")
    return render(body, n, accept, status, headers, head=head)


def _csv(body: str) -> str:
    rows = orjson.loads(body)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def applied(prefs: Preferences) -> dict[str, str]:
    return {"Preference-Applied": ", ".join(prefs.applied)} if prefs.applied else {}


def read_range(offset: int, n: int, total: int | None) -> tuple[int, str]:
    total_text = "*" if total is None else str(total)
    if n == 0:
        return 200, f"*/{total_text}"
    status = 206 if total is not None and n < total else 200
    return status, f"{offset}-{offset + n - 1}/{total_text}"


def mutation_response(
    body: str | None,
    n: int,
    prefs: Preferences,
    accept: str,
    kind: str,
    *,
    inserted: int | None = None,
) -> Response:
    """`inserted`: rows an upsert inserted (rather than updated or skipped), when known."""
    counted = prefs.count is not None
    if kind == "insert":
        content_range = f"*/{n if counted else '*'}"
        # PostgREST: an upsert that inserted no row answers 200, otherwise 201.
        upserted_only = prefs.resolution and (inserted if inserted is not None else n) == 0
        status = 200 if upserted_only else 201
    else:
        total = str(n) if counted else "*"
        content_range = f"0-{n - 1}/{total}" if n else f"*/{total}"
        status = 200
    headers = {"Content-Range": content_range, **applied(prefs)}
    if prefs.ret != "representation":
        return Response(status_code=status if kind == "insert" else 204, headers=headers)
    return render(body, n, accept, status, headers)
