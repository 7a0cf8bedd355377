"""RPC: find the function a call means (by name and argument names), call it with named
arguments as bind parameters, and shape its result — scalar, composite, set or void — as JSON
in the same single statement the table endpoints use."""

from __future__ import annotations

from typing import Any

import orjson

from pocketbizz.errors import ApiError
from pocketbizz.rest.query import Query
from pocketbizz.rest.schema_cache import Function, SchemaCache, Table, cast_type, quote
from pocketbizz.rest.sql import Builder, rows_statement


def resolve_function(cache: SchemaCache, name: str, given: set[str]) -> Function:
    candidates = cache.functions.get(name, [])
    matches = [fn for fn in candidates if fn.required <= given <= fn.arg_names]
    if len(matches) > 1:
        # Overloads the named arguments cannot tell apart: PostgREST refuses to guess.
        signatures = ", ".join(
            f"public.{name}({', '.join(f'{a.name} => {a.type}' for a in fn.args)})"
            for fn in matches
        )
        raise ApiError(
            f"Could not choose the best candidate function between: {signatures}",
            status=300,
            code="PGRST203",
            hint="Try renaming the parameters or the function itself in the database "
            "so function overloading can be resolved",
        )
    if matches:
        return matches[0]
    for fn in candidates:  # a single unnamed json argument takes the whole body
        if len(fn.args) == 1 and not fn.args[0].name:
            return fn
    if not given:
        for fn in candidates:
            if not fn.required:
                return fn
    args = ", ".join(sorted(given))
    raise ApiError(
        f"Could not find the function public.{name}({args}) in the schema cache",
        status=404,
        code="PGRST202",
        hint="Check the function's name and argument names.",
    )


def call_expression(b: Builder, fn: Function, args: dict[str, Any], raw_body: str | None) -> str:
    """`public.fn(a => $1::text::int, …)`; values travel as text (JSON text for json args)."""
    name = f"public.{quote(fn.name)}"
    if len(fn.args) == 1 and not fn.args[0].name:
        return f"{name}({b.param(raw_body or '{}')}::text::{fn.args[0].type})"
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


def function_table(cache: SchemaCache, fn: Function) -> Table | None:
    """The row shape of a composite result, for `select`/filters on it."""
    if fn.return_table is not None:
        return cache.tables[fn.return_table]
    if fn.out_columns:
        return Table(fn.name, True, {c.name: c for c in fn.out_columns})
    return None


def result_statement(
    b: Builder,
    cache: SchemaCache,
    fn: Function,
    call: str,
    query: Query,
    *,
    max_rows: int,
    count: bool,
    max_bytes: int | None = None,
) -> str:
    """`(total, n, body)` for a non-void function: rows as for a table when the result has
    columns (so `select`, filters and order apply), else the plain JSON value(s)."""
    shape = function_table(cache, fn)
    if shape is not None:
        limit: int | None = None
        if fn.returns_set:
            limit = min(query.limit, max_rows) if query.limit is not None else max_rows
        if not count:
            return rows_statement(b, shape, call, query, limit=limit, max_bytes=max_bytes)
        # The count and the page read one materialized call: the function runs once.
        return rows_statement(
            b,
            shape,
            "_call",
            query,
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
