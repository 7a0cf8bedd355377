"""RPC rendering: the call of a planned function (`plan.CallPlan`) with named arguments as
bind parameters, and its result — scalar, composite, set or void — shaped as JSON in the same
single statement the table endpoints use. Which function a call means is decided by the plan
(`plan.resolve_function`)."""

from __future__ import annotations

from typing import Any

import orjson

from pocketbizz.rest.plan import CallPlan
from pocketbizz.rest.schema_cache import cast_type, quote
from pocketbizz.rest.sql import Builder, rows_statement


def call_expression(b: Builder, plan: CallPlan) -> str:
    """`schema.fn(a => $1::text::int, …)`; values travel as text (JSON text for json args)."""
    fn = plan.function
    name = fn.sql_name
    if len(fn.args) == 1 and not fn.args[0].name:
        return f"{name}({b.param(plan.raw_body or '{}')}::text::{fn.args[0].type})"
    args = dict(plan.args)
    rendered = []
    for arg in fn.args:
        if arg.name not in args:
            continue
        value = args[arg.name]
        text = _arg_text(value, arg.type)
        typ = cast_type(arg.type)
        if isinstance(value, dict) and typ not in ("json", "jsonb"):
            # A composite (row-type) argument given as a JSON object, as PostgREST takes it.
            expr = f"jsonb_populate_record(null::{typ}, {b.param(text)}::text::jsonb)"
        elif arg.is_array and isinstance(value, list):
            expr = f"array(select jsonb_array_elements_text({b.param(text)}::text::jsonb))::{typ}"
        else:
            expr = f"{b.param(text)}::text::{typ}"
        rendered.append(f"{quote(arg.name)} => {expr}")
    return f"{name}({', '.join(rendered)})"


def _arg_text(value: Any, typ: str) -> str | None:
    if value is None:
        return None
    if typ in ("json", "jsonb") or isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def call_statement(
    b: Builder,
    plan: CallPlan,
    *,
    max_rows: int,
    count: bool,
    max_bytes: int | None = None,
) -> str:
    """The statement of a call: `select fn(…)` for a void function, else `(total, n, body)`:
    rows as for a table when the result has columns (`plan.result`), else the plain JSON
    value(s)."""
    fn = plan.function
    call = call_expression(b, plan)
    if fn.is_void:
        return f"select {call}"
    if plan.result is not None:
        limit: int | None = None
        if fn.returns_set:
            wanted = plan.result.limit
            limit = min(wanted, max_rows) if wanted is not None else max_rows
        if not count:
            return rows_statement(b, plan.result, call, limit=limit, max_bytes=max_bytes)
        # The count and the page read one materialized call: the function runs once.
        return rows_statement(
            b,
            plan.result,
            "_call",
            limit=limit,
            exact_count=True,
            with_sql=f"with _call as materialized (select * from {call}) ",
            max_bytes=max_bytes,
        )
    total = "count(*)" if count else "null::bigint"
    if fn.returns_set:
        return (
            f"select {total} as total, count(*) as n, "
            f"coalesce(json_agg(_r.v), '[]'::json)::text as body from {call} as _r(v)"
        )
    # A NULL result is the JSON `null`, not an empty body.
    total = "1::bigint" if count else "null::bigint"
    return f"select {total} as total, 1 as n, coalesce(to_json({call})::text, 'null') as body"
