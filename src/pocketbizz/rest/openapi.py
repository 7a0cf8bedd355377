"""A Swagger 2.0 description of the exposed schema, built from the schema cache as PostgREST
does for `GET /rest/v1/`.

As in PostgREST, SQL comments become descriptions (a multi-line comment on a table or function
gives its first line as the operation's summary, the rest as its description) and a column
whose CHECK constraint limits it to a list (`channel in ('walk-in', ...)`) gets that list as
its `enum`. Column comments and CHECK constraints are read by `load_notes`; the tables' and
functions' own comments come with the schema cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from pocketbizz.rest.schema_cache import SCHEMA, Column, Function, SchemaCache, Table

_FORMATS: dict[str, tuple[str, str | None]] = {
    "integer": ("integer", "int32"),
    "smallint": ("integer", "int16"),
    "bigint": ("integer", "int64"),
    "numeric": ("number", None),
    "real": ("number", "float"),
    "double precision": ("number", "double"),
    "boolean": ("boolean", None),
    "uuid": ("string", "uuid"),
    "date": ("string", "date"),
    "timestamp with time zone": ("string", "date-time"),
    "timestamp without time zone": ("string", "date-time"),
    "json": ("object", None),
    "jsonb": ("object", None),
}


@dataclass(frozen=True)
class ColumnNote:
    description: str | None = None
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaNotes:
    """What the document says about columns beyond their types, keyed by (table, column)."""

    columns: dict[tuple[str, str], ColumnNote] = field(default_factory=dict)

    def column(self, table: str, column: str) -> ColumnNote:
        return self.columns.get((table, column), _NO_NOTE)


_NO_NOTE = ColumnNote()

_COLUMN_COMMENTS = """
select c.relname, a.attname, pg_catalog.col_description(c.oid, a.attnum) as descr
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f')
  and a.attnum > 0 and not a.attisdropped
  and pg_catalog.col_description(c.oid, a.attnum) is not null
"""

# CHECK constraints on one column; `enum_values` keeps those that list the allowed values.
_COLUMN_CHECKS = """
select c.relname, a.attname, pg_catalog.pg_get_constraintdef(con.oid) as definition
from pg_catalog.pg_constraint con
join pg_catalog.pg_class c on c.oid = con.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = con.conkey[1]
where n.nspname = $1 and con.contype = 'c' and pg_catalog.cardinality(con.conkey) = 1
order by c.relname, a.attname, con.conname
"""

# PostgreSQL prints `col in ('a', 'b')` as `CHECK ((col = ANY (ARRAY['a'::text, 'b'::text])))`
# (with casts around both sides for varchar columns).
_ENUM_CHECK = re.compile(
    r"CHECK \(\(\(?(?P<column>\w+|\"(?:[^\"]|\"\")+\")\)?(?:::[\w ]+)? = ANY \(\(?ARRAY\["
    r"(?P<items>.*?)\](?:\)::[\w ]+\[\])?\)\)\)"
)
_ENUM_ITEM = re.compile(r"'((?:[^']|'')*)'::[\w ]+")


def enum_values(definition: str) -> tuple[str, tuple[str, ...]] | None:
    """(column, allowed values) of a CHECK that lists them, as pg_get_constraintdef prints it;
    None for any other CHECK."""
    match = _ENUM_CHECK.fullmatch(definition)
    if match is None:
        return None
    items = list(_ENUM_ITEM.finditer(match["items"]))
    # Every item must be a quoted literal: an ARRAY of expressions is not a list of values.
    if not items or ", ".join(m[0] for m in items) != match["items"]:
        return None
    column = match["column"]
    if column.startswith('"'):
        column = column[1:-1].replace('""', '"')
    return column, tuple(m[1].replace("''", "'") for m in items)


async def load_notes(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, schema: str = SCHEMA
) -> SchemaNotes:
    """Column comments and enum-like CHECK constraints of the exposed schema."""
    descriptions = {
        (r["relname"], r["attname"]): r["descr"] for r in await conn.fetch(_COLUMN_COMMENTS, schema)
    }
    enums: dict[tuple[str, str], tuple[str, ...]] = {}
    for r in await conn.fetch(_COLUMN_CHECKS, schema):
        found = enum_values(r["definition"])
        if found is not None and found[0] == r["attname"]:
            key = (r["relname"], r["attname"])
            # Two lists on one column: only values in both pass.
            enums[key] = tuple(v for v in enums[key] if v in found[1]) if key in enums else found[1]
    keys = descriptions.keys() | enums.keys()
    return SchemaNotes({k: ColumnNote(descriptions.get(k), enums.get(k, ())) for k in sorted(keys)})


def _summary(comment: str | None) -> dict[str, str]:
    """PostgREST's split of a comment: the first line is the summary, the rest the description."""
    if not comment:
        return {}
    summary, _, rest = comment.strip().partition("\n")
    return {"summary": summary.strip(), **({"description": rest.strip()} if rest.strip() else {})}


def _property(column: Column, table: Table, note: ColumnNote) -> dict[str, Any]:
    if column.is_array:
        prop: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    else:
        kind, fmt = _FORMATS.get(column.type, ("string", None))
        prop = {"type": kind}
        if fmt:
            prop["format"] = fmt
    parts = [note.description or column.type]
    if column.name in table.primary_key:
        parts.append("Note:\nThis is a Primary Key.<pk/>")
    prop["description"] = "\n\n".join(parts)
    if note.enum:
        prop["enum"] = list(note.enum)
    if column.default is not None:
        prop["default"] = column.default
    return prop


def _definition(table: Table, notes: SchemaNotes) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [
            c.name for c in table.columns.values() if not c.nullable and c.default is None
        ],
        "properties": {
            c.name: _property(c, table, notes.column(table.name, c.name))
            for c in table.columns.values()
        },
        **({"description": table.description} if table.description else {}),
    }


def _table_paths(table: Table) -> dict[str, Any]:
    ref = {"$ref": f"#/definitions/{table.name}"}
    filters = [
        {"name": c.name, "in": "query", "required": False, "type": "string", "format": c.type}
        for c in table.columns.values()
    ]
    common = [
        {"$ref": "#/parameters/select"},
        {"$ref": "#/parameters/order"},
        {"$ref": "#/parameters/limit"},
        {"$ref": "#/parameters/offset"},
    ]
    ok = {
        "200": {"description": "OK", "schema": {"type": "array", "items": ref}},
        "206": {"description": "Partial Content"},
    }
    path: dict[str, Any] = {
        "get": {"tags": [table.name], "parameters": filters + common, "responses": ok},
    }
    if not table.is_view:
        body = {"name": table.name, "in": "body", "required": False, "schema": ref}
        path["post"] = {
            "tags": [table.name],
            "parameters": [body, {"$ref": "#/parameters/prefer"}],
            "responses": {"201": {"description": "Created"}},
        }
        path["patch"] = {
            "tags": [table.name],
            "parameters": [*filters, body],
            "responses": {"204": {"description": "No Content"}},
        }
        path["delete"] = {
            "tags": [table.name],
            "parameters": filters,
            "responses": {"204": {"description": "No Content"}},
        }
    for operation in path.values():
        operation.update(_summary(table.description))
    return path


def _rpc_path(fn: Function) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": sorted(fn.required),
        "properties": {
            a.name: {"type": _FORMATS.get(a.type, ("string", None))[0], "format": a.type}
            for a in fn.args
            if a.name
        },
    }
    body = [{"name": "args", "in": "body", "required": True, "schema": schema}]
    path: dict[str, Any] = {
        "post": {
            "tags": ["(rpc) " + fn.name],
            "parameters": body,
            "responses": {"200": {"description": "OK"}},
        },
    }
    # GET runs a VOLATILE function too (read-only), but, as PostgREST lists it since 13.0.5
    # (PR #4174), only STABLE and IMMUTABLE functions get a GET here: a volatile one is
    # meant to be POSTed, and fails with 405 if it writes under GET.
    if fn.volatility != "v":
        path["get"] = {
            "tags": ["(rpc) " + fn.name],
            "parameters": [
                {
                    "name": a.name,
                    "in": "query",
                    "required": not a.has_default,
                    "type": "string",
                    "format": a.type,
                }
                for a in fn.args
                if a.name
            ],
            "responses": {"200": {"description": "OK"}},
        }
    for operation in path.values():
        operation.update(_summary(fn.description))
    return path


def openapi_document(
    cache: SchemaCache, base_url: str, notes: SchemaNotes | None = None
) -> dict[str, Any]:
    notes = notes or SchemaNotes()
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["Introspection"],
                "summary": "OpenAPI description (this document)",
                "responses": {"200": {"description": "OK"}},
            }
        }
    }
    for name in sorted(cache.tables):
        paths[f"/{name}"] = _table_paths(cache.tables[name])
    for name in sorted(cache.functions):
        paths[f"/rpc/{name}"] = _rpc_path(cache.functions[name][0])
    host = base_url.split("://", 1)[-1].split("/", 1)[0]
    return {
        "swagger": "2.0",
        "info": {
            "title": "PocketBizz data API",
            "version": "1",
            "description": "PostgREST-compatible access to the public schema",
        },
        "host": host,
        "basePath": "/rest/v1/",
        "schemes": [base_url.split("://", 1)[0]],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": {name: _definition(t, notes) for name, t in sorted(cache.tables.items())},
        "parameters": {
            "select": {
                "name": "select",
                "in": "query",
                "type": "string",
                "description": "Filtering columns",
            },
            "order": {"name": "order", "in": "query", "type": "string", "description": "Ordering"},
            "limit": {
                "name": "limit",
                "in": "query",
                "type": "string",
                "description": "Limiting and pagination",
            },
            "offset": {
                "name": "offset",
                "in": "query",
                "type": "string",
                "description": "Limiting and pagination",
            },
            "prefer": {
                "name": "Prefer",
                "in": "header",
                "type": "string",
                "enum": ["return=representation", "return=minimal", "count=exact"],
            },
        },
    }
