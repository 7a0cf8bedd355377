"""Routes of the data API: thin handlers — identity, one transaction, one statement, response.

Errors are rendered in PostgREST's shape; database errors keep their SQLSTATE as `code`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketbizz.db import Identity
from pocketbizz.errors import (
    ApiError,
    PostgrestCode,
    PostgrestError,
    from_postgres,
    postgrest_response,
)
from pocketbizz.gateway import request_identity
from pocketbizz.rest import responses, rpc, sql
from pocketbizz.rest.openapi import openapi_document
from pocketbizz.rest.plan import CallPlan, Planner, ReadPlan
from pocketbizz.rest.query import (
    Preferences,
    Query,
    Shape,
    parse_prefer,
    parse_query,
    query_shape,
)
from pocketbizz.rest.schema_cache import Function, SchemaCache, Table, quote
from pocketbizz.rest.service import SERVICE_KEY, ReadTemplate, RestService
from pocketbizz.state import app_state


class _Rollback(Exception):
    """`Prefer: tx=rollback`: answer as if committed, then roll back."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _service(request: Request) -> RestService:
    service = app_state(request).services.get(SERVICE_KEY)
    if not isinstance(service, RestService):
        raise PostgrestError(PostgrestCode.NO_SCHEMA_CACHE, "The data API is not ready")
    return service


def _select_profile(request: Request) -> tuple[SchemaCache, SchemaCache]:
    """The whole schema cache and the cache of the schema the request names, as PostgREST
    reads it: Accept-Profile for GET/HEAD, Content-Profile otherwise, the default schema
    when absent; an unexposed schema is 406 PGRST106."""
    root = _service(request).cache
    header = "accept-profile" if request.method in ("GET", "HEAD") else "content-profile"
    return root, root.profile(request.headers.get(header) or None)


def _cache(request: Request) -> SchemaCache:
    """The schema cache of the request's profile (chosen once, by `_run`)."""
    cache: SchemaCache = request.scope["pb.profile"][1]
    return cache


@contextlib.asynccontextmanager
async def _transaction(request: Request, identity: Identity) -> AsyncIterator[asyncpg.Connection]:
    """The request's transaction; in a schema other than the default, that schema leads the
    search path (then `public`), as PostgREST sets it, so functions resolve names in it."""
    root, cache = request.scope["pb.profile"]
    async with app_state(request).db.transaction(identity) as conn:
        if cache is not root:
            await conn.execute(
                "select set_config('search_path', $1, true)", f"{quote(cache.schema)}, public"
            )
        yield conn


def _table(cache: SchemaCache, name: str) -> Table:
    table = cache.tables.get(name)
    if table is None:
        raise PostgrestError(
            PostgrestCode.TABLE_NOT_FOUND,
            f"Could not find the table '{cache.schema}.{name}' in the schema cache",
        )
    return table


def _database_error(exc: asyncpg.PostgresError, identity: Identity, *, rpc: bool) -> ApiError:
    error = from_postgres(exc, anonymous=identity.role == "anon")
    # Bad input that reached the database (a wrong operator for a type, an ON CONFLICT naming
    # no key, …) is the caller's mistake: 400, never 5xx, which the client would retry.
    if error.status >= 500 and error.code[:2] in ("42", "22", "23", "21", "0A", "2F", "44", "54"):
        error.status = 400
    if error.code == "42883" and not rpc:
        error.status = 400
    return error


Handler = Callable[[Request, Identity], Awaitable[Response]]


async def _run(request: Request, handler: Handler) -> Response:
    root, cache = _select_profile(request)
    request.scope["pb.profile"] = (root, cache)
    try:
        response = await handler(request, request_identity(request))
    except _Rollback as done:
        response = done.response
    if len(root.schemas) > 1:  # PostgREST names the schema whenever there is a choice
        response.headers["Content-Profile"] = cache.schema
    return response


async def _render_error(request: Request, exc: Exception) -> Response:
    """The sub-app's one exception handler: every failure in PostgREST's shape; a database
    error keeps its SQLSTATE as `code`."""
    if isinstance(exc, asyncpg.PostgresError):
        # Raised inside a transaction, so the caller's identity was resolved (and cached).
        identity: Identity = request.scope["pb.identity"]
        rpc = "function" in request.path_params  # /rpc/{function}
        return postgrest_response(_database_error(exc, identity, rpc=rpc))
    if isinstance(exc, asyncpg.exceptions.DataError):  # an argument asyncpg cannot encode
        return postgrest_response(ApiError(str(exc), status=400, code="22P02"))
    if isinstance(exc, ApiError):
        return postgrest_response(exc)
    raise exc


# ---------------------------------------------------------------------------------------------
# Request details


def _params(request: Request) -> list[tuple[str, str]]:
    query_string: bytes = request.scope.get("query_string", b"")
    return parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True)


# Above this many query-string bytes, parsing runs in a worker thread: the GIL's switch
# interval then bounds how long it holds the event loop (a 64 kB `or=(…)` takes ~40 ms).
_PARSE_INLINE_BYTES = 8 * 1024


async def _query(request: Request, *, arg_names: frozenset[str] = frozenset()) -> Query:
    """The request's query string, parsed within the service's bounds."""
    service = _service(request)
    query_string: bytes = request.scope.get("query_string", b"")
    if len(query_string) > service.max_query_bytes:
        raise PostgrestError(
            PostgrestCode.QUERY_PARAM,
            "The query string is too long",
            details=f"{len(query_string)} bytes; at most {service.max_query_bytes} are accepted",
            hint="Send fewer filters, or split a long in.(…) list over several requests.",
        )
    parse = functools.partial(
        parse_query,
        _params(request),
        arg_names=arg_names,
        max_depth=service.max_filter_depth,
        max_embed_depth=service.max_embed_depth,
        aggregates=service.aggregates_enabled,
    )
    if len(query_string) <= _PARSE_INLINE_BYTES:
        return parse()
    return await asyncio.to_thread(parse)


async def _json_body(request: Request) -> tuple[Any, bytes]:
    raw = await request.body()
    try:
        return orjson.loads(raw or b"{}"), raw
    except orjson.JSONDecodeError as exc:
        raise PostgrestError(
            PostgrestCode.INVALID_BODY, "Empty or invalid json", details=str(exc)
        ) from None


async def _planned_count(conn: asyncpg.Connection, plan: ReadPlan) -> int:
    b = sql.Builder()
    statement = sql.count_plan_statement(b, plan, plan.table.sql_name)
    explained = await conn.fetchval(statement, *b.params)
    if isinstance(explained, str):
        explained = orjson.loads(explained)
    return int(explained[0]["Plan"]["Plan Rows"])


# ---------------------------------------------------------------------------------------------
# Tables and views


async def _read(request: Request, identity: Identity) -> Response:
    service = _service(request)
    cache = _cache(request)
    name = request.path_params["table"]
    table = _table(cache, name)
    explain = responses.plan_of(request)
    if explain is not None:
        read = Planner(cache).read(table, await _query(request))
        statement, params = _read_statement(service, read)
        return await _explain(request, identity, explain, statement, params)
    accept = responses.accept_of(request)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    cap = service.max_rows + 1 if prefs.count == "estimated" else None
    strip = responses.strips_nulls(request)
    exact = prefs.count == "exact"
    built: tuple[str, list[Any]] | None = None
    plan: ReadPlan | None = None
    query_string: bytes = request.scope.get("query_string", b"")
    # Planned and estimated counts need the plan; a long query string is parsed off the loop
    # (and one over the limit refused) by `_query`.
    inline = min(_PARSE_INLINE_BYTES, service.max_query_bytes)
    if prefs.count not in ("planned", "estimated") and len(query_string) <= inline:
        shape = query_shape(_params(request))
        key = (cache.schema, name, shape.pairs, prefs.count, strip)
        template = service.statements.get(key)
        if template is None:
            template = _read_template(service, cache, table, shape, exact=exact, strip=strip)
            if template is not None:
                service.remember(key, template, request.scope["pb.profile"][0])
        if template is not None:
            built = (template.statement, template.fill(shape.values))
            offset = template.offset
    if built is None:
        plan = Planner(cache).read(table, await _query(request))
        built = _read_statement(service, plan, exact=exact, strip=strip, count_cap=cap)
        offset = plan.offset or 0
    async with _transaction(request, identity) as conn:
        row = await _fetch_one(conn, built[0], *built[1])
        sql.check_size(row, service.max_response_bytes)
        total: int | None = row["total"]
        if plan is not None and (
            prefs.count == "planned"
            or (prefs.count == "estimated" and total is not None and total > service.max_rows)
        ):
            total = await _planned_count(conn, plan)
    n: int = row["n"]
    if accept == responses.OBJECT and n != 1:
        raise responses.single_error(n)
    status, content_range = responses.read_range(offset, n, total)
    headers = {"Content-Range": content_range, **responses.applied(prefs)}
    return await responses.render_rows(
        row["body"], n, accept, status, headers, head=request.method == "HEAD"
    )


def _read_statement(
    service: RestService,
    plan: ReadPlan,
    *,
    exact: bool = False,
    strip: bool = False,
    count_cap: int | None = None,
) -> tuple[str, list[Any]]:
    limit = min(plan.limit, service.max_rows) if plan.limit is not None else service.max_rows
    b = sql.Builder(max_rows=service.max_rows)
    statement = sql.rows_statement(
        b,
        plan,
        plan.table.sql_name,
        limit=limit,
        exact_count=exact,
        strip_nulls=strip,
        count_cap=count_cap,
        max_bytes=service.max_response_bytes,
    )
    return statement, b.params


def _read_template(
    service: RestService,
    cache: SchemaCache,
    table: Table,
    shape: Shape,
    *,
    exact: bool,
    strip: bool,
) -> ReadTemplate | None:
    """The read statement of `shape`, built once with a marker in place of each taken-out
    value; None when the query does not parse or plan (it is then built from its own values,
    which gives its own error) or a marker is not exactly one parameter."""
    markers = tuple(f"\x00pb-value-{i}\x00" for i in range(len(shape.masked)))
    try:
        query = parse_query(
            shape.with_values(markers),
            max_depth=service.max_filter_depth,
            max_embed_depth=service.max_embed_depth,
            aggregates=service.aggregates_enabled,
        )
        plan = Planner(cache).read(table, query)
    except ApiError:
        return None
    statement, params = _read_statement(service, plan, exact=exact, strip=strip)
    slots = []
    for marker in markers:
        found = [i for i, p in enumerate(params) if p == marker]
        if len(found) != 1 or marker in statement:
            return None
        slots.append(found[0])
    return ReadTemplate(statement, tuple(params), tuple(slots), plan.offset or 0)


async def _explain(
    request: Request,
    identity: Identity,
    explain: responses.PlanRequest,
    statement: str,
    params: list[Any],
    *,
    read_only: bool = True,
) -> Response:
    """The statement's execution plan instead of its rows. Plans show the schema and its
    data sizes, so only `service_role` may ask; the transaction is always rolled back, so
    `options=analyze` runs the statement but keeps nothing."""
    if identity.role != "service_role":
        raise PostgrestError(
            PostgrestCode.MEDIA_TYPE,
            f"None of these media types are available: {request.headers.get('accept')}",
        )
    async with _transaction(request, identity) as conn:
        if read_only:
            await conn.execute("set transaction read only")
        rows = await conn.fetch(
            sql.explain_statement(statement, explain.format, explain.options), *params
        )
        if explain.format == "json":
            body = rows[0][0] if isinstance(rows[0][0], str) else orjson.dumps(rows[0][0]).decode()
        else:
            body = "\n".join(r[0] for r in rows)
        raise _Rollback(Response(body, 200, media_type=explain.media_type))


async def _fetch_one(conn: asyncpg.Connection, statement: str, *params: Any) -> asyncpg.Record:
    row = await conn.fetchrow(statement, *params)
    assert row is not None  # every statement here aggregates: exactly one row
    return row


async def _insert(request: Request, identity: Identity) -> Response:
    service = _service(request)
    cache = _cache(request)
    table = _table(cache, request.path_params["table"])
    query = await _query(request)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    accept = responses.accept_of(request)
    payload, raw = await _json_body(request)
    if isinstance(payload, dict):
        rows, rows_json = [payload], b"[" + raw + b"]"
    elif isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        rows, rows_json = payload, raw
    else:
        raise PostgrestError(
            PostgrestCode.INVALID_BODY,
            "Empty or invalid json",
            details="Expected a JSON object or an array of objects",
        )
    columns = query.columns if query.columns is not None else _keys(rows)
    plan = Planner(cache).insert(
        table,
        columns,
        query,
        missing_default=prefs.missing_default,
        resolution=prefs.resolution,
        returning=prefs.ret == "representation",
    )
    b = sql.Builder(max_rows=service.max_rows)
    statement = sql.mutation_statement(
        b,
        plan,
        rows_json.decode(),
        strip_nulls=responses.strips_nulls(request),
        max_bytes=service.max_response_bytes,
    )
    return await _mutate(request, identity, statement, b.params, prefs, accept, kind="insert")


def _whole_rows_only(query: Query) -> None:
    """Limited updates and deletes are not supported: refuse rather than change every match."""
    if query.limit is not None or query.offset is not None or query.order:
        raise PostgrestError(
            PostgrestCode.QUERY_PARAM,
            "limit, offset and order are not supported on PATCH and DELETE",
            hint="Narrow the rows with filters, e.g. id=eq.<id>.",
        )


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


async def _update(request: Request, identity: Identity) -> Response:
    service = _service(request)
    cache = _cache(request)
    table = _table(cache, request.path_params["table"])
    query = await _query(request)
    _whole_rows_only(query)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    payload, raw = await _json_body(request)
    if not isinstance(payload, dict):
        raise PostgrestError(
            PostgrestCode.INVALID_BODY,
            "Empty or invalid json",
            details="PATCH takes one JSON object",
        )
    representation = prefs.ret == "representation"
    accept = responses.accept_of(request)
    if not payload:
        return responses.render(
            "[]" if representation else None,
            0,
            responses.JSON,
            200 if representation else 204,
            {"Content-Range": "*/*"},
        )
    plan = Planner(cache).update(table, list(payload), query, returning=representation)
    b = sql.Builder(max_rows=service.max_rows)
    statement = sql.mutation_statement(
        b,
        plan,
        raw.decode(),
        strip_nulls=responses.strips_nulls(request),
        max_bytes=service.max_response_bytes,
    )
    return await _mutate(request, identity, statement, b.params, prefs, accept, kind="update")


async def _delete(request: Request, identity: Identity) -> Response:
    service = _service(request)
    cache = _cache(request)
    table = _table(cache, request.path_params["table"])
    query = await _query(request)
    _whole_rows_only(query)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    plan = Planner(cache).delete(table, query, returning=prefs.ret == "representation")
    b = sql.Builder(max_rows=service.max_rows)
    statement = sql.mutation_statement(
        b,
        plan,
        strip_nulls=responses.strips_nulls(request),
        max_bytes=service.max_response_bytes,
    )
    return await _mutate(
        request, identity, statement, b.params, prefs, responses.accept_of(request), kind="delete"
    )


async def _mutate(
    request: Request,
    identity: Identity,
    statement: str,
    params: list[Any],
    prefs: Preferences,
    accept: str,
    *,
    kind: str,
) -> Response:
    async with _transaction(request, identity) as conn:
        row = await _fetch_one(conn, statement, *params)
        sql.check_size(row, _service(request).max_response_bytes)
        n: int = row["n"]
        # Checks that fail raise inside the transaction, so nothing is written.
        if prefs.strict and prefs.max_affected is not None and n > prefs.max_affected:
            raise PostgrestError(
                PostgrestCode.MAX_AFFECTED,
                "Query result exceeds max-affected preference constraint",
                details=f"The query affects {n} rows",
            )
        if accept == responses.OBJECT and n != 1:
            raise responses.single_error(n)
        response = responses.mutation_response(
            row["body"], n, prefs, accept, kind, inserted=row.get("inserted")
        )
        if prefs.rollback:
            raise _Rollback(response)
    return response


async def table_endpoint(request: Request) -> Response:
    handlers: dict[str, Handler] = {
        "GET": _read,
        "HEAD": _read,
        "POST": _insert,
        "PATCH": _update,
        "DELETE": _delete,
    }
    return await _run(request, handlers[request.method])


# ---------------------------------------------------------------------------------------------
# RPC


async def _rpc_arguments(
    request: Request, candidates: list[Function]
) -> tuple[Query, dict[str, Any], str | None]:
    """POST: named arguments in a JSON object (or the whole body for a single json argument);
    GET/HEAD: arguments among the query parameters, the rest being filters."""
    if request.method != "POST":
        arg_names = frozenset(a.name for f in candidates for a in f.args)
        query = await _query(request, arg_names=arg_names)
        return query, dict(query.extra), None
    payload, raw = await _json_body(request)
    query = await _query(request)
    raw_text = raw.decode() if raw else "{}"
    single_json = any(len(f.args) == 1 and not f.args[0].name for f in candidates)
    if isinstance(payload, dict) and not (single_json and not _named_match(candidates, payload)):
        return query, payload, raw_text
    if single_json:
        return query, {}, raw_text
    raise PostgrestError(
        PostgrestCode.INVALID_BODY,
        "Empty or invalid json",
        details="RPC arguments are a JSON object",
    )


def _named_match(candidates: list[Function], payload: dict[str, Any]) -> bool:
    given = set(payload)
    return any(f.args and f.args[0].name and f.required <= given <= f.arg_names for f in candidates)


async def _rpc(request: Request, identity: Identity) -> Response:
    service = _service(request)
    cache = _cache(request)
    name = request.path_params["function"]
    prefs = parse_prefer(request.headers.getlist("prefer"))
    explain = responses.plan_of(request)
    accept = responses.JSON if explain is not None else responses.accept_of(request)
    query, args, raw_text = await _rpc_arguments(request, cache.functions.get(name, []))
    # GET and HEAD run read-only, whatever the function's volatility: a function that
    # actually writes fails with 25006 (405), as in PostgREST.
    plan = Planner(cache).call(name, args, raw_text, query, read_only=request.method != "POST")
    fn = plan.function
    b = sql.Builder(max_rows=service.max_rows)
    statement = rpc.call_statement(
        b,
        plan,
        max_rows=service.max_rows,
        count=prefs.count is not None,
        max_bytes=service.max_response_bytes,
    )
    if explain is not None:
        return await _explain(
            request, identity, explain, statement, b.params, read_only=plan.read_only
        )
    async with _transaction(request, identity) as conn:
        if plan.read_only:
            await conn.execute("set transaction read only")
        if fn.is_void:
            await conn.execute(statement, *b.params)
            response = Response(status_code=204)
        else:
            row = await _fetch_one(conn, statement, *b.params)
            sql.check_size(row, service.max_response_bytes)
            response = await _rpc_response(request, plan, row, query, accept, prefs)
        if prefs.rollback:
            raise _Rollback(response)  # answered as if committed, then rolled back
    return response


async def _rpc_response(
    request: Request,
    plan: CallPlan,
    row: asyncpg.Record,
    query: Query,
    accept: str,
    prefs: Preferences,
) -> Response:
    fn = plan.function
    body: str = row["body"]
    n: int = row["n"]
    if not fn.returns_set:
        if plan.result is not None:
            # One composite value: an object (or null), not an array.
            body = body[1:-1] if n == 1 else "null"
        accept = responses.JSON if accept == responses.OBJECT else accept
    elif accept == responses.OBJECT and n != 1:
        raise responses.single_error(n)
    status, content_range = responses.read_range(query.offset or 0, n, row["total"])
    if not fn.returns_set:
        status = 200
    headers = {"Content-Range": content_range, **responses.applied(prefs)}
    return await responses.render_rows(
        body, n, accept, status, headers, head=request.method == "HEAD"
    )


async def rpc_endpoint(request: Request) -> Response:
    return await _run(request, _rpc)


# ---------------------------------------------------------------------------------------------
# OpenAPI


async def _openapi(request: Request, identity: Identity) -> Response:
    service = _service(request)
    document = openapi_document(_cache(request), str(request.base_url), service.notes)
    return Response(orjson.dumps(document), media_type="application/openapi+json")


async def openapi_endpoint(request: Request) -> Response:
    return await _run(request, _openapi)


routes: list[Any] = [
    Route("/", openapi_endpoint, methods=["GET", "HEAD"]),
    Route("/rpc/{function}", rpc_endpoint, methods=["GET", "HEAD", "POST"]),
    Route("/{table}", table_endpoint, methods=["GET", "HEAD", "POST", "PATCH", "DELETE"]),
]
error_handlers = {
    ApiError: _render_error,
    asyncpg.PostgresError: _render_error,
    asyncpg.exceptions.DataError: _render_error,
}
