"""`analytics`: the seed's sales report for a date range, computed by `public.analytics`."""

from __future__ import annotations

from datetime import date

from pocketbizz.errors import BadRequest
from pocketbizz.functions.context import FunctionContext, RawJson


def _date(body: dict[str, object], key: str) -> date:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadRequest(f"{key} is required, as YYYY-MM-DD", code="invalid_argument")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{key} must be a date as YYYY-MM-DD", code="invalid_argument") from exc


async def run(ctx: FunctionContext) -> RawJson:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    start, end = _date(body, "start_date"), _date(body, "end_date")
    # ::text keeps numeric money exact: decoding jsonb here would turn it into floats.
    text = await ctx.conn.fetchval("select public.analytics($1::date, $2::date)::text", start, end)
    return RawJson(text)
