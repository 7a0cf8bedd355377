"""A Swagger 2.0 description of the exposed schema, built from the schema cache as PostgREST
does for `GET /rest/v1/`."""

from __future__ import annotations

from typing import Any

from pocketbizz.rest.schema_cache import Column, Function, SchemaCache, Table

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


def _property(column: Column, table: Table) -> dict[str, Any]:
    if column.is_array:
        prop: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    else:
        kind, fmt = _FORMATS.get(column.type, ("string", None))
        prop = {"type": kind}
        if fmt:
            prop["format"] = fmt
    prop["description"] = column.type + (
        "\n\nNote:\nThis is a Primary Key.<pk/>" if column.name in table.primary_key else ""
    )
    if column.default is not None:
        prop["default"] = column.default
    return prop


def _definition(table: Table) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [
            c.name for c in table.columns.values() if not c.nullable and c.default is None
        ],
        "properties": {c.name: _property(c, table) for c in table.columns.values()},
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
    if fn.description:
        path["post"]["summary"] = fn.description
    return path


def openapi_document(cache: SchemaCache, base_url: str) -> dict[str, Any]:
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
        "definitions": {name: _definition(t) for name, t in sorted(cache.tables.items())},
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
