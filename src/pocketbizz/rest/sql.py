"""One SQL statement per request, producing the response JSON inside PostgreSQL.

Reads select into a subquery and aggregate it with `json_agg`; embeds are correlated subqueries
joined on every column of their foreign key; writes are data-modifying CTEs whose rows feed the
same read builder. Identifiers come only from the schema cache (quoted); every value is a bind
parameter, sent as text and cast to the column's type by PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from pocketbizz.errors import ApiError
from pocketbizz.rest.query import (
    Condition,
    Embed,
    FieldRef,
    FilterNode,
    NestedParams,
    OrderTerm,
    Query,
    SelectField,
    SelectItem,
)
from pocketbizz.rest.schema_cache import (
    OWNER_COLUMN,
    Relationship,
    SchemaCache,
    Table,
    cast_type,
    quote,
)

_INTEGER = re.compile(r"-?[0-9]{1,9}")
_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_TEXT_MATCH = {"like": "like", "ilike": "ilike", "match": "~", "imatch": "~*"}
_ARRAY_OPS = {
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",  # does not extend to the right of
    "nxl": "&>",  # does not extend to the left of
    "adj": "-|-",
}
_FTS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS = {
    "null": "is null",
    "not_null": "is not null",
    "true": "is true",
    "false": "is false",
    "unknown": "is unknown",
}


def unknown_column(table: str, column: str) -> ApiError:
    return ApiError(f"column {table}.{column} does not exist", status=400, code="42703")


def unknown_write_column(table: str, column: str) -> ApiError:
    return ApiError(
        f"Could not find the '{column}' column of '{table}' in the schema cache",
        status=400,
        code="PGRST204",
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Builder:
    """Accumulates bind parameters and fresh table aliases while SQL is assembled."""

    def __init__(self, cache: SchemaCache, *, max_rows: int | None = None) -> None:
        self.cache = cache
        # Rows per embedded level (to-many), like `rest_max_rows` at the top: without it
        # `a(*,b(*,c(*)))` multiplies row counts level by level.
        self.max_rows = max_rows
        self.params: list[Any] = []
        self._aliases = 0

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases}"

    # -- expressions ----------------------------------------------------------------------

    def column(self, table: Table, alias: str, ref: FieldRef) -> tuple[str, str]:
        """The SQL for a column (with its JSON path) and the type values compare as."""
        col = table.columns.get(ref.name)
        if col is not None:
            expr = f"{alias}.{quote(col.name)}"
            typ = cast_type(col.type)
        elif ref.name in table.computed:
            # A computed field: the function of the row (cast, as `_m` rows are records).
            fn = table.computed[ref.name]
            expr = f"public.{quote(fn.name)}({alias}::{table.sql_name})"
            typ = cast_type(fn.return_type)
        else:
            raise unknown_column(table.name, ref.name)
        for arrow, key in ref.json_path:
            step = key if _is_int(key) else f"{self.param(key)}::text"
            expr = f"({expr}{arrow}{step})"
            typ = "text" if arrow == "->>" else "jsonb"
        return expr, typ

    def value(self, text: str, typ: str) -> str:
        return f"{self.param(text)}::text::{typ}"

    def condition(self, table: Table, alias: str, cond: Condition) -> str:
        expr, typ = self.column(table, alias, cond.ref)
        op = cond.op
        value = cond.value or ""
        if cond.quantifier:
            # `like(any).{a*,b*}` → `col like any ('{a%,b%}'::text[])`.
            if op in _COMPARE:
                sql = f"{expr} {_COMPARE[op]} {cond.quantifier}({self.param(value)}::text::{typ}[])"
            else:
                if op in ("like", "ilike"):
                    value = value.replace("*", "%")
                pattern = f"{self.param(value)}::text::text[]"
                sql = f"{expr}::text {_TEXT_MATCH[op]} {cond.quantifier}({pattern})"
        elif op in _COMPARE:
            sql = f"{expr} {_COMPARE[op]} {self.value(value, typ)}"
        elif op in _TEXT_MATCH:
            if op in ("like", "ilike"):
                value = value.replace("*", "%")
            sql = f"{expr}::text {_TEXT_MATCH[op]} {self.param(value)}::text"
        elif op == "in":
            if typ.endswith("[]"):
                raise ApiError("in. is not supported on array columns", code="PGRST100")
            if not cond.values:
                sql = "false"
            else:
                sql = f"{expr} = any({self.param(list(cond.values))}::text[]::{typ}[])"
        elif op == "is":
            sql = f"{expr} {_IS[value.lower()]}"
        elif op == "isdistinct":
            sql = f"{expr} is distinct from {self.value(value, typ)}"
        elif op in _ARRAY_OPS:
            sql = f"{expr} {_ARRAY_OPS[op]} {self.value(value, typ)}"
        else:
            config = f"{self.param(cond.modifier)}::regconfig, " if cond.modifier else ""
            vector = expr if typ == "tsvector" else f"to_tsvector({config}{expr}::text)"
            sql = f"{vector} @@ {_FTS[op]}({config}{self.param(value)}::text)"
        return f"not ({sql})" if cond.negated else sql

    def where(self, table: Table, alias: str, nodes: list[FilterNode]) -> list[str]:
        return [self.node(table, alias, n) for n in nodes]

    def node(self, table: Table, alias: str, node: FilterNode) -> str:
        if isinstance(node, Condition):
            return self.condition(table, alias, node)
        parts = [self.node(table, alias, child) for child in node.children]
        joined = f" {node.op} ".join(f"({p})" for p in parts) if parts else "true"
        return f"not ({joined})" if node.negated else f"({joined})"

    def order(self, table: Table, alias: str, terms: list[OrderTerm]) -> str:
        rendered = []
        for term in terms:
            expr, _ = self.column(table, alias, term.ref)
            nulls = f" nulls {term.nulls}" if term.nulls else ""
            rendered.append(f"{expr} {'desc' if term.desc else 'asc'}{nulls}")
        return " order by " + ", ".join(rendered) if rendered else ""

    # -- select lists and embeds -------------------------------------------------------------

    def select_list(
        self,
        table: Table,
        alias: str,
        items: list[SelectItem],
        nested: NestedLookup,
        path: tuple[str, ...],
    ) -> Projection:
        columns: list[str] = []
        inner: list[str] = []
        joins: list[str] = []
        # With an aggregate, the level groups by its other fields and by the parent columns
        # its embeds join on (so their correlated subqueries read grouped columns only).
        grouped: list[str] = []
        aggregated = any(isinstance(i, SelectField) and i.aggregate for i in items)
        for item in items:
            if isinstance(item, SelectField):
                if item.aggregate:
                    columns.append(self.aggregate(table, alias, item))
                    continue
                if item.ref.name == "*":
                    if aggregated:
                        raise ApiError(
                            "'*' cannot be selected together with aggregate functions",
                            status=400,
                            code="PGRST100",
                            hint="Name the columns to group by.",
                        )
                    columns.append(f"{alias}.*")
                    continue
                expr, _ = self.column(table, alias, item.ref)
                cast = f"::{item.cast}" if item.cast else ""
                columns.append(f"{expr}{cast} as {quote(item.output_name)}")
                grouped.append(f"{expr}{cast}")
                continue
            if aggregated and item.spread:
                raise ApiError(
                    "Spread embeds cannot be combined with aggregate functions here",
                    status=400,
                    code="PGRST100",
                )
            if aggregated and item.select:
                rel = self.relationship(table, item)
                grouped.extend(f"{alias}.{quote(a)}" for a, _ in rel.pairs)
            if not item.select:
                # An embed with no columns is not in the result; it may still filter.
                embed_path = (*path, item.output_name)
                self.relationship(table, item)  # still a real relationship, or PGRST200
                nested.apply(embed_path, item)
                if item.inner:
                    inner.append(self.exists(table, alias, item, nested, embed_path))
            elif item.spread:
                row, join, exists = self.spread(table, alias, item, nested, (*path, item.target))
                columns.append(f"{row}.*")
                joins.append(join)
                if exists:
                    inner.append(exists)
            else:
                sub, exists = self.embed(table, alias, item, nested, (*path, item.output_name))
                columns.append(f"{sub} as {quote(item.output_name)}")
                if exists:
                    inner.append(exists)
        group_by = (
            " group by " + ", ".join(dict.fromkeys(grouped)) if aggregated and grouped else ""
        )
        return Projection(", ".join(columns), inner, "".join(joins), group_by, aggregated)

    def aggregate(self, table: Table, alias: str, item: SelectField) -> str:
        assert item.aggregate is not None
        if item.ref.name == "*":
            arg = "*"  # count()
        else:
            expr, _ = self.column(table, alias, item.ref)
            arg = f"{expr}::{item.cast}" if item.cast else expr
        after = f"::{item.aggregate_cast}" if item.aggregate_cast else ""
        return f"{item.aggregate}({arg}){after} as {quote(item.output_name)}"

    def spread(
        self,
        parent: Table,
        parent_alias: str,
        embed: Embed,
        nested: NestedLookup,
        path: tuple[str, ...],
    ) -> tuple[str, str, str | None]:
        """`...target(cols)`: a LEFT JOIN LATERAL of the one related row; its columns join
        the parent's select list (nulls when there is no row), as PostgREST spreads."""
        rel = self.relationship(parent, embed)
        if not rel.to_one:
            raise ApiError(
                f"A spread operation on '{embed.target}' is not possible",
                status=400,
                code="PGRST119",
                details=f"'{parent.name}' and '{embed.target}' do not form a many-to-one or "
                "one-to-one relationship",
            )
        target = self.cache.tables[rel.target]
        level = nested.apply(path, embed)
        alias = self.alias()
        join = self.join_on(rel, parent_alias, alias)
        shape = self.select_list(target, alias, embed.select, nested, path)
        conds = join + self.where(target, alias, level.filters) + shape.inner
        body = (
            f"select {shape.columns} from {self.source(rel, parent, parent_alias)} "
            f"{alias}{shape.joins} where {_all(conds)}{shape.group_by}"
            f"{self.order(target, alias, level.order)} limit 1"
        )
        row = f"s{alias}"
        exists = self.exists(parent, parent_alias, embed, nested, path) if embed.inner else None
        return row, f" left join lateral ({body}) {row} on true", exists

    def embed(
        self,
        parent: Table,
        parent_alias: str,
        embed: Embed,
        nested: NestedLookup,
        path: tuple[str, ...],
    ) -> tuple[str, str | None]:
        rel = self.relationship(parent, embed)
        target = self.cache.tables[rel.target]
        level = nested.apply(path, embed)
        alias = self.alias()
        join = self.join_on(rel, parent_alias, alias)
        shape = self.select_list(target, alias, embed.select, nested, path)
        conds = join + self.where(target, alias, level.filters) + shape.inner
        body = (
            f"select {shape.columns or 'null'} from {self.source(rel, parent, parent_alias)} "
            f"{alias}{shape.joins} where {_all(conds)}{shape.group_by}"
            f"{self.order(target, alias, level.order)}"
        )
        limit = level.limit
        if self.max_rows is not None and not rel.to_one:
            limit = self.max_rows if limit is None else min(limit, self.max_rows)
        if limit is not None:
            body += f" limit {limit}"
        if level.offset is not None:
            body += f" offset {level.offset}"
        row = f"e{alias}"
        if rel.to_one:
            # The level's own limit/offset apply inside; the outer `limit 1` picks the row.
            sub = f"(select row_to_json({row}) from ({body}) {row} limit 1)"
        else:
            sub = f"coalesce((select json_agg({row}) from ({body}) {row}), '[]'::json)"
        exists = self.exists(parent, parent_alias, embed, nested, path) if embed.inner else None
        return sub, exists

    def exists(
        self,
        parent: Table,
        parent_alias: str,
        embed: Embed,
        nested: NestedLookup,
        path: tuple[str, ...],
    ) -> str:
        """`!inner`: the parent row stays only if the embed (and its own `!inner` embeds,
        with their filters) finds a row."""
        rel = self.relationship(parent, embed)
        target = self.cache.tables[rel.target]
        level = nested.apply(path, embed)
        alias = self.alias()
        conds = self.join_on(rel, parent_alias, alias)
        conds += self.where(target, alias, level.filters)
        for child in embed.select:
            if isinstance(child, Embed) and child.inner:
                conds.append(self.exists(target, alias, child, nested, (*path, child.output_name)))
        source = self.source(rel, parent, parent_alias)
        return f"exists (select 1 from {source} {alias} where {_all(conds)})"

    def source(self, rel: Relationship, parent: Table, parent_alias: str) -> str:
        """Where the related rows come from: the target table, or the computed
        relationship's function of the parent row."""
        if rel.function is not None:
            return f"public.{quote(rel.function)}({parent_alias}::{parent.sql_name})"
        return self.cache.tables[rel.target].sql_name

    def join_on(self, rel: Relationship, parent_alias: str, alias: str) -> list[str]:
        """The conditions tying a related row (`alias`) to its parent row."""
        if rel.function is not None:
            return []  # the function already chose them
        if rel.junction is None:
            return [f"{alias}.{quote(b)} = {parent_alias}.{quote(a)}" for a, b in rel.pairs]
        junction = self.cache.tables[rel.junction]
        j = self.alias()
        on = [f"{j}.{quote(b)} = {parent_alias}.{quote(a)}" for a, b in rel.pairs]
        on += [f"{j}.{quote(a)} = {alias}.{quote(b)}" for a, b in rel.junction_pairs]
        return [f"exists (select 1 from {junction.sql_name} {j} where {' and '.join(on)})"]

    def relationship(self, parent: Table, embed: Embed) -> Relationship:
        fn = parent.computed_relations.get(embed.target)
        if fn is not None and fn.return_table is not None:
            return Relationship(
                parent.name,
                fn.return_table,
                fn.name,
                (),
                to_one=not fn.returns_set,
                function=fn.name,
            )
        candidates = self.cache.relationships(parent.name, embed.target)
        if embed.hint:
            hint = embed.hint
            candidates = [
                r
                for r in candidates
                if r.constraint == hint or any(hint in pair for pair in r.pairs)
            ]
        if len(candidates) > 1 and any(not r.owner_only for r in candidates):
            candidates = [r for r in candidates if not r.owner_only]
        if not candidates:
            raise ApiError(
                f"Could not find a relationship between '{parent.name}' and "
                f"'{embed.target}' in the schema cache",
                status=400,
                code="PGRST200",
                hint="Check the foreign keys between these tables.",
            )
        if len(candidates) > 1:
            raise ApiError(
                f"Could not embed because more than one relationship was found for "
                f"'{parent.name}' and '{embed.target}'",
                status=300,
                code="PGRST201",
                details=[
                    {"relationship": r.constraint, "cardinality": "one" if r.to_one else "many"}
                    for r in candidates
                ],
                hint=f"Try changing '{embed.target}' to one of: "
                + ", ".join(f"'{embed.target}!{r.constraint}'" for r in candidates),
            )
        return candidates[0]


@dataclass(frozen=True)
class Projection:
    """One level's select list, the `exists` conditions its `!inner` embeds add to its WHERE,
    the lateral joins its spread embeds add to its FROM, and its GROUP BY (with aggregates)."""

    columns: str
    inner: list[str]
    joins: str
    group_by: str
    aggregated: bool = False


class NestedLookup:
    """Hands embedded-level params (`items.order=…`) to the embed they name, and remembers
    which were used so a param naming no embed is an error rather than silently ignored."""

    def __init__(self, query: Query) -> None:
        self.params = query.nested
        self.used: set[tuple[str, ...]] = set()

    def apply(self, path: tuple[str, ...], embed: Embed) -> NestedParams:
        """The embed's own filters/order/limit merged with the params addressed to it."""
        key = path
        if key not in self.params and embed.alias is not None:
            key = (*path[:-1], embed.target)
        params = self.params.get(key)
        if params is None:
            return NestedParams(embed.filters, embed.order, embed.limit, embed.offset)
        self.used.add(key)
        return NestedParams(
            [*embed.filters, *params.filters],
            params.order or embed.order,
            params.limit if params.limit is not None else embed.limit,
            params.offset if params.offset is not None else embed.offset,
        )

    def check_all_used(self) -> None:
        unused = [p for p in self.params if p not in self.used]
        if unused:
            path = ".".join(unused[0])
            raise ApiError(
                f"'{path}' is not an embedded resource in this request",
                status=400,
                code="PGRST108",
                hint=f"Verify that '{path}' is included in the 'select' query parameter.",
            )


# ---------------------------------------------------------------------------------------------
# Statements. Each returns (total, n, body): the exact/estimated total or null, the number of
# rows, and the JSON text of the rows (null when no representation was asked for).


def _all(conditions: list[str]) -> str:
    return " and ".join(conditions) if conditions else "true"


def _is_int(text: str) -> bool:
    return _INTEGER.fullmatch(text) is not None


def rows_statement(
    b: Builder,
    table: Table,
    source: str,
    query: Query,
    *,
    limit: int | None,
    exact_count: bool = False,
    with_sql: str = "",
    strip_nulls: bool = False,
    count_cap: int | None = None,
    max_bytes: int | None = None,
) -> str:
    """Select from `source` (a table, a CTE or a function call) as JSON, with an optional count.
    With `max_bytes`, a body larger than that stays in the database: `body` is null and
    `size` says how large it was (see `check_size`)."""
    nested = NestedLookup(query)
    shape = b.select_list(table, "t0", query.select, nested, ())
    nested.check_all_used()
    conds = b.where(table, "t0", query.filters) + shape.inner
    where = f" where {' and '.join(conds)}" if conds else ""
    rows = f"select {shape.columns} from {source} t0{shape.joins}{where}{shape.group_by}"
    page = f"{rows}{b.order(table, 't0', query.order)}"
    if limit is not None:
        page += f" limit {limit}"
    if query.offset:
        page += f" offset {query.offset}"
    # Grouped rows are counted as the groups they make, not the rows they read.
    counted = rows if shape.aggregated else f"select 1 from {source} t0{where}"
    if count_cap is not None:
        # Prefer: count=estimated — exact up to the cap, then the planner's estimate.
        total = f"(select count(*) from ({counted} limit {count_cap}) _c)"
    elif exact_count:
        total = f"(select count(*) from ({counted}) _c)"
    else:
        total = "null::bigint"
    row = "json_strip_nulls(row_to_json(_r))" if strip_nulls else "_r"
    aggregate = (
        f"select {total} as total, count(_r) as n, "
        f"coalesce(json_agg({row}), '[]'::json)::text as body from ({page}) _r"
    )
    if max_bytes is None:
        return f"{with_sql}{aggregate}"
    return (
        f"{with_sql}select total, n, octet_length(body) as size, "
        f"case when octet_length(body) <= {int(max_bytes)} then body end as body "
        f"from ({aggregate}) _s"
    )


def check_size(row: asyncpg.Record, max_bytes: int) -> None:
    """Refuse a result `rows_statement(max_bytes=…)` kept back for its size."""
    size = row.get("size")
    if size is not None and size > max_bytes:
        raise ApiError(
            "The response is too large",
            status=400,
            code="54000",
            details=f"The result has {size} bytes; at most {max_bytes} are sent",
            hint="Select fewer columns or embeds, or page with limit and offset.",
        )


def explain_statement(statement: str, fmt: str, options: tuple[str, ...]) -> str:
    """EXPLAIN of a built statement (`Accept: application/vnd.pgrst.plan`); `options` come
    from a fixed list (`responses.PLAN_OPTIONS`), never from the request's text."""
    flags = "".join(f", {option}" for option in options)
    return f"explain (format {'json' if fmt == 'json' else 'text'}{flags}) {statement}"


def count_plan_statement(b: Builder, table: Table, source: str, query: Query) -> str:
    """What `EXPLAIN` estimates the filtered row count from (Prefer: count=planned)."""
    nested = NestedLookup(query)
    conds = b.where(table, "t0", query.filters)
    for item in query.select:
        if isinstance(item, Embed) and item.inner:
            conds.append(b.exists(table, "t0", item, nested, (item.output_name,)))
    where = f" where {' and '.join(conds)}" if conds else ""
    return f"explain (format json) select 1 from {source} t0{where}"


def insert_statement(
    b: Builder,
    table: Table,
    rows_json: str,
    columns: list[str],
    query: Query,
    *,
    missing_default: bool,
    resolution: str | None,
    returning: bool,
) -> str:
    """A data-modifying CTE `_m` inserting every JSON row in one statement (all or nothing)."""
    for name in columns:
        if name not in table.columns:
            raise unknown_write_column(table.name, name)
    doc = b.param(rows_json)
    exprs = []
    for name in columns:
        col = table.columns[name]
        if missing_default:
            default = col.default or "null"
            exprs.append(
                f"case when _j.doc ? {_literal(name)} then _r.{quote(name)} else {default} end"
            )
        else:
            exprs.append(f"_r.{quote(name)}")
    collist = ", ".join(quote(c) for c in columns)
    if columns:
        insert = (
            f"insert into {table.sql_name} as t0 ({collist}) select {', '.join(exprs)} "
            f"from jsonb_array_elements({doc}::text::jsonb) as _j(doc) "
            f"cross join lateral jsonb_populate_record(null::{table.sql_name}, _j.doc) as _r"
        )
    else:
        # Every row empty: one row of defaults per element, as PostgREST does.
        insert = (
            f"insert into {table.sql_name} as t0 select "
            f"from jsonb_array_elements({doc}::text::jsonb)"
        )
    for name in query.on_conflict or ():
        if name not in table.columns:
            raise unknown_write_column(table.name, name)
    if resolution:
        target = conflict_target(table, query.on_conflict)
        # The body's other columns are set; a body of only the key sets the key to itself
        # (as PostgREST does), so the existing row is still returned. Conflict columns are
        # otherwise left out: clients often hold no UPDATE grant on a key (`id`).
        updates = (
            [c for c in columns if c not in target]
            or [c for c in columns if c in target]
            or [c for c in target if c != OWNER_COLUMN]
            or list(target)
        )
        if resolution == "ignore-duplicates":
            insert += f" on conflict ({', '.join(quote(c) for c in target)}) do nothing"
        else:
            sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updates)
            insert += f" on conflict ({', '.join(quote(c) for c in target)}) do update set {sets}"
        if tracks_inserts(table, resolution):
            # Which rows were inserted (not updated) sets the status: xmax is 0 on a new row.
            rows = ", ".join(f"{quote(c)}" for c in table.columns) if returning else "1"
            return (
                f"with _u as ({insert} returning {'t0.*' if returning else '1'}, "
                f"t0.xmax::text = '0' as {_INSERTED}), _m as (select {rows} from _u) "
            )
    return f"with _m as ({insert} returning {'t0.*' if returning else '1'}) "


# The column of `_u` saying a row was inserted; `mutation_result` counts it as `inserted`.
_INSERTED = "_pb_inserted"


def tracks_inserts(table: Table, resolution: str | None) -> bool:
    """Whether an insert tells inserted rows from updated or skipped ones (the upsert's
    status depends on it): upserts into tables, by xmax, which views lack."""
    return resolution is not None and not table.is_view


def conflict_target(table: Table, on_conflict: list[str] | None) -> tuple[str, ...]:
    """The ON CONFLICT columns. Tenant keys include `business_owner_id`, which clients never
    name (`on_conflict=id`): when the named columns are not a key on their own but are one
    together with the owner column, the owner column is added — it is the caller's anyway."""
    target = tuple(on_conflict) if on_conflict else table.primary_key
    if not target:
        raise ApiError(
            f"'{table.name}' has no primary key; name the conflict columns with on_conflict",
            status=400,
            code="PGRST100",
        )
    for name in target:
        if name not in table.columns:
            raise unknown_write_column(table.name, name)
    if not table.is_unique(target) and OWNER_COLUMN in table.columns:
        widened = (OWNER_COLUMN, *(c for c in target if c != OWNER_COLUMN))
        if table.is_unique(widened):
            return widened
    return target


def update_statement(
    b: Builder,
    table: Table,
    patch_json: str,
    columns: list[str],
    query: Query,
    *,
    returning: bool,
) -> str:
    for name in columns:
        if name not in table.columns:
            raise unknown_write_column(table.name, name)
    doc = b.param(patch_json)
    sets = ", ".join(f"{quote(c)} = _r.{quote(c)}" for c in columns)
    conds = b.where(table, "t0", query.filters)
    where = f" where {' and '.join(conds)}" if conds else ""
    return (
        f"with _m as (update {table.sql_name} as t0 set {sets} "
        f"from jsonb_populate_record(null::{table.sql_name}, {doc}::text::jsonb) as _r{where} "
        f"returning {'t0.*' if returning else '1'}) "
    )


def delete_statement(b: Builder, table: Table, query: Query, *, returning: bool) -> str:
    conds = b.where(table, "t0", query.filters)
    where = f" where {' and '.join(conds)}" if conds else ""
    return (
        f"with _m as (delete from {table.sql_name} as t0{where} "
        f"returning {'t0.*' if returning else '1'}) "
    )


def mutation_result(
    b: Builder,
    table: Table,
    with_sql: str,
    query: Query,
    *,
    representation: bool,
    strip_nulls: bool = False,
    max_bytes: int | None = None,
    count_inserted: bool = False,
) -> str:
    """`(total, n, body[, size][, inserted])`; `count_inserted` for an insert statement
    built when `tracks_inserts` held."""
    inserted = ""
    if count_inserted:
        inserted = f", (select count(*) from _u where {_INSERTED}) as inserted"
    if not representation:
        return (
            f"{with_sql}select null::bigint as total, count(*) as n, null::text as body"
            f"{inserted} from _m"
        )
    # The filters chose the rows to change; the changed rows may no longer match them.
    shape = Query(select=query.select, nested=query.nested)
    rows = rows_statement(
        b,
        table,
        "_m",
        shape,
        limit=None,
        exact_count=False,
        strip_nulls=strip_nulls,
        max_bytes=max_bytes,
    )
    return f"{with_sql}select _s.*{inserted} from ({rows}) _s"
