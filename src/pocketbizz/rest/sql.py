"""One SQL statement per request, producing the response JSON inside PostgreSQL, rendered
from a plan (`plan.py`: the names of the request already resolved against the schema cache).

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
from pocketbizz.rest.plan import (
    EmbedPlan,
    Field,
    Filter,
    FilterPlan,
    MutatePlan,
    Order,
    Output,
    ReadPlan,
)
from pocketbizz.rest.schema_cache import OWNER_COLUMN, Table, quote

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


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Builder:
    """Renders plans: accumulates bind parameters and fresh table aliases while SQL is
    assembled. Everything it reads about the schema comes with the plan."""

    def __init__(self, *, max_rows: int | None = None) -> None:
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

    def column(self, table: Table, alias: str, field: Field) -> str:
        """The SQL for a field of `table`'s row `alias`, with its JSON path."""
        if field.computed is None:
            expr = f"{alias}.{quote(field.name)}"
        else:
            # A computed field: the function of the row (cast, as `_m` rows are records).
            expr = f"{field.computed.sql_name}({alias}::{table.sql_name})"
        for arrow, key in field.json_path:
            step = key if _is_int(key) else f"{self.param(key)}::text"
            expr = f"({expr}{arrow}{step})"
        return expr

    def value(self, text: str, typ: str) -> str:
        return f"{self.param(text)}::text::{typ}"

    def condition(self, table: Table, alias: str, planned: Filter) -> str:
        expr = self.column(table, alias, planned.field)
        typ = planned.field.type
        cond = planned.condition
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

    def where(self, table: Table, alias: str, nodes: tuple[FilterPlan, ...]) -> list[str]:
        return [self.node(table, alias, n) for n in nodes]

    def node(self, table: Table, alias: str, node: FilterPlan) -> str:
        if isinstance(node, Filter):
            return self.condition(table, alias, node)
        parts = [self.node(table, alias, child) for child in node.children]
        joined = f" {node.op} ".join(f"({p})" for p in parts) if parts else "true"
        return f"not ({joined})" if node.negated else f"({joined})"

    def order(self, table: Table, alias: str, terms: tuple[Order, ...]) -> str:
        rendered = []
        for term in terms:
            expr = self.column(table, alias, term.field)
            nulls = f" nulls {term.nulls}" if term.nulls else ""
            rendered.append(f"{expr} {'desc' if term.desc else 'asc'}{nulls}")
        return " order by " + ", ".join(rendered) if rendered else ""

    # -- select lists and embeds -------------------------------------------------------------

    def select_list(self, plan: ReadPlan, alias: str) -> Projection:
        table = plan.table
        columns: list[str] = []
        inner: list[str] = []
        joins: list[str] = []
        # With an aggregate, the level groups by its other fields and by the parent columns
        # its embeds join on (so their correlated subqueries read grouped columns only).
        grouped: list[str] = []
        aggregated = plan.aggregated
        for item in plan.select:
            if isinstance(item, Output):
                if item.aggregate:
                    columns.append(self.aggregate(table, alias, item))
                elif item.field is None:
                    columns.append(f"{alias}.*")
                else:
                    expr = self.column(table, alias, item.field)
                    cast = f"::{item.cast}" if item.cast else ""
                    columns.append(f"{expr}{cast} as {quote(item.name)}")
                    grouped.append(f"{expr}{cast}")
                continue
            if aggregated and item.selected and not item.spread:
                grouped.extend(f"{alias}.{quote(a)}" for a, _ in item.relationship.pairs)
            if not item.selected:
                # An embed with no columns is not in the result; it may still filter.
                if item.inner:
                    inner.append(self.exists(table, alias, item))
            elif item.spread and aggregated:
                spread_columns, spread_groups, join, exists = self.spread_grouped(
                    table, alias, item
                )
                columns.extend(spread_columns)
                grouped.extend(spread_groups)
                joins.append(join)
                if exists:
                    inner.append(exists)
            elif item.spread:
                row, join, exists = self.spread(table, alias, item)
                columns.append(f"{row}.*")
                joins.append(join)
                if exists:
                    inner.append(exists)
            else:
                sub, exists = self.embed(table, alias, item)
                columns.append(f"{sub} as {quote(item.name)}")
                if exists:
                    inner.append(exists)
        group_by = (
            " group by " + ", ".join(dict.fromkeys(grouped)) if aggregated and grouped else ""
        )
        return Projection(", ".join(columns), inner, "".join(joins), group_by, aggregated)

    def aggregate(self, table: Table, alias: str, item: Output) -> str:
        assert item.aggregate is not None
        if item.field is None:
            arg = "*"  # count()
        else:
            expr = self.column(table, alias, item.field)
            arg = f"{expr}::{item.cast}" if item.cast else expr
        after = f"::{item.aggregate_cast}" if item.aggregate_cast else ""
        return f"{item.aggregate}({arg}){after} as {quote(item.name)}"

    def spread(
        self, parent: Table, parent_alias: str, embed: EmbedPlan
    ) -> tuple[str, str, str | None]:
        """`...target(cols)`: a LEFT JOIN LATERAL of the one related row; its columns join
        the parent's select list (nulls when there is no row), as PostgREST spreads."""
        level = embed.read
        target = level.table
        alias = self.alias()
        join = self.join_on(embed, parent_alias, alias)
        shape = self.select_list(level, alias)
        conds = join + self.where(target, alias, level.filters) + shape.inner
        body = (
            f"select {shape.columns} from {self.source(embed, parent, parent_alias)} "
            f"{alias}{shape.joins} where {_all(conds)}{shape.group_by}"
            f"{self.order(target, alias, level.order)} limit 1"
        )
        row = f"s{alias}"
        exists = self.exists(parent, parent_alias, embed) if embed.inner else None
        return row, f" left join lateral ({body}) {row} on true", exists

    def spread_grouped(
        self, parent: Table, parent_alias: str, embed: EmbedPlan
    ) -> tuple[list[str], list[str], str, str | None]:
        """A spread under an aggregating level: its columns are the level's own, so the
        lateral row carries their values (input casts applied) and the level groups by the
        plain ones and aggregates the others (PostgREST: "as if they were columns of the
        top-level resource"). Returns the select-list entries, the GROUP BY expressions, the
        join and the `!inner` condition."""
        level = embed.read
        target = level.table
        alias = self.alias()
        row = f"s{alias}"
        values: list[str] = []
        columns: list[str] = []
        grouped: list[str] = []
        for n, item in enumerate(level.select):
            assert isinstance(item, Output)  # the planner allows named fields only
            value = f"_v{n}"
            if item.field is None:  # count(): the related rows, 1 each (null with none)
                values.append(f"1 as {value}")
            else:
                cast = f"::{item.cast}" if item.cast else ""
                values.append(f"{self.column(target, alias, item.field)}{cast} as {value}")
            if item.aggregate:
                after = f"::{item.aggregate_cast}" if item.aggregate_cast else ""
                columns.append(f"{item.aggregate}({row}.{value}){after} as {quote(item.name)}")
            else:
                columns.append(f"{row}.{value} as {quote(item.name)}")
                grouped.append(f"{row}.{value}")
        conds = self.join_on(embed, parent_alias, alias) + self.where(target, alias, level.filters)
        body = (
            f"select {', '.join(values) or 'null'} from "
            f"{self.source(embed, parent, parent_alias)} {alias} where {_all(conds)} limit 1"
        )
        exists = self.exists(parent, parent_alias, embed) if embed.inner else None
        return columns, grouped, f" left join lateral ({body}) {row} on true", exists

    def embed(self, parent: Table, parent_alias: str, embed: EmbedPlan) -> tuple[str, str | None]:
        rel = embed.relationship
        level = embed.read
        target = level.table
        alias = self.alias()
        join = self.join_on(embed, parent_alias, alias)
        shape = self.select_list(level, alias)
        conds = join + self.where(target, alias, level.filters) + shape.inner
        body = (
            f"select {shape.columns or 'null'} from {self.source(embed, parent, parent_alias)} "
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
        exists = self.exists(parent, parent_alias, embed) if embed.inner else None
        return sub, exists

    def exists(self, parent: Table, parent_alias: str, embed: EmbedPlan) -> str:
        """`!inner`: the parent row stays only if the embed (and its own `!inner` embeds,
        with their filters) finds a row."""
        level = embed.read
        alias = self.alias()
        conds = self.join_on(embed, parent_alias, alias)
        conds += self.where(level.table, alias, level.filters)
        for child in level.embeds:
            if child.inner:
                conds.append(self.exists(level.table, alias, child))
        source = self.source(embed, parent, parent_alias)
        return f"exists (select 1 from {source} {alias} where {_all(conds)})"

    def source(self, embed: EmbedPlan, parent: Table, parent_alias: str) -> str:
        """Where the related rows come from: the target table, or the computed
        relationship's function of the parent row."""
        function = embed.relationship.function
        if function is not None:
            # Found among the parent's row-type functions, so in the parent's schema.
            return f"{quote(parent.schema)}.{quote(function)}({parent_alias}::{parent.sql_name})"
        return embed.read.table.sql_name

    def join_on(self, embed: EmbedPlan, parent_alias: str, alias: str) -> list[str]:
        """The conditions tying a related row (`alias`) to its parent row."""
        rel = embed.relationship
        if rel.function is not None:
            return []  # the function already chose them
        if embed.junction is None:
            return [f"{alias}.{quote(b)} = {parent_alias}.{quote(a)}" for a, b in rel.pairs]
        j = self.alias()
        on = [f"{j}.{quote(b)} = {parent_alias}.{quote(a)}" for a, b in rel.pairs]
        on += [f"{j}.{quote(a)} = {alias}.{quote(b)}" for a, b in rel.junction_pairs]
        return [f"exists (select 1 from {embed.junction.sql_name} {j} where {' and '.join(on)})"]


@dataclass(frozen=True)
class Projection:
    """One level's select list, the `exists` conditions its `!inner` embeds add to its WHERE,
    the lateral joins its spread embeds add to its FROM, and its GROUP BY (with aggregates)."""

    columns: str
    inner: list[str]
    joins: str
    group_by: str
    aggregated: bool = False


# ---------------------------------------------------------------------------------------------
# Statements. Each returns (total, n, body): the exact/estimated total or null, the number of
# rows, and the JSON text of the rows (null when no representation was asked for).


def _all(conditions: list[str]) -> str:
    return " and ".join(conditions) if conditions else "true"


def _is_int(text: str) -> bool:
    return _INTEGER.fullmatch(text) is not None


def rows_statement(
    b: Builder,
    plan: ReadPlan,
    source: str,
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
    table = plan.table
    shape = b.select_list(plan, "t0")
    conds = b.where(table, "t0", plan.filters) + shape.inner
    where = f" where {' and '.join(conds)}" if conds else ""
    rows = f"select {shape.columns} from {source} t0{shape.joins}{where}{shape.group_by}"
    page = f"{rows}{b.order(table, 't0', plan.order)}"
    if limit is not None:
        page += f" limit {limit}"
    if plan.offset:
        page += f" offset {plan.offset}"
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


def count_plan_statement(b: Builder, plan: ReadPlan, source: str) -> str:
    """What `EXPLAIN` estimates the filtered row count from (Prefer: count=planned)."""
    conds = b.where(plan.table, "t0", plan.filters)
    for embed in plan.embeds:
        if embed.inner:
            conds.append(b.exists(plan.table, "t0", embed))
    where = f" where {' and '.join(conds)}" if conds else ""
    return f"explain (format json) select 1 from {source} t0{where}"


# The column of `_u` saying a row was inserted; `mutation_statement` counts it as `inserted`.
_INSERTED = "_pb_inserted"


def _insert(b: Builder, plan: MutatePlan, rows_json: str) -> str:
    """A data-modifying CTE `_m` inserting every JSON row in one statement (all or nothing)."""
    table = plan.table
    columns = plan.columns
    returning = plan.returning is not None
    doc = b.param(rows_json)
    exprs = []
    for name in columns:
        col = table.columns[name]
        if plan.missing_default:
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
    if plan.resolution:
        target = plan.on_conflict
        # The body's other columns are set; a body of only the key sets the key to itself
        # (as PostgREST does), so the existing row is still returned. Conflict columns are
        # otherwise left out: clients often hold no UPDATE grant on a key (`id`).
        updates = (
            [c for c in columns if c not in target]
            or [c for c in columns if c in target]
            or [c for c in target if c != OWNER_COLUMN]
            or list(target)
        )
        if plan.resolution == "ignore-duplicates":
            insert += f" on conflict ({', '.join(quote(c) for c in target)}) do nothing"
        else:
            sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updates)
            insert += f" on conflict ({', '.join(quote(c) for c in target)}) do update set {sets}"
        if plan.tracks_inserts:
            # Which rows were inserted (not updated) sets the status: xmax is 0 on a new row.
            rows = ", ".join(f"{quote(c)}" for c in table.columns) if returning else "1"
            return (
                f"with _u as ({insert} returning {'t0.*' if returning else '1'}, "
                f"t0.xmax::text = '0' as {_INSERTED}), _m as (select {rows} from _u) "
            )
    return f"with _m as ({insert} returning {'t0.*' if returning else '1'}) "


def _update(b: Builder, plan: MutatePlan, patch_json: str) -> str:
    table = plan.table
    doc = b.param(patch_json)
    sets = ", ".join(f"{quote(c)} = _r.{quote(c)}" for c in plan.columns)
    conds = b.where(table, "t0", plan.filters)
    where = f" where {' and '.join(conds)}" if conds else ""
    return (
        f"with _m as (update {table.sql_name} as t0 set {sets} "
        f"from jsonb_populate_record(null::{table.sql_name}, {doc}::text::jsonb) as _r{where} "
        f"returning {'t0.*' if plan.returning is not None else '1'}) "
    )


def _delete(b: Builder, plan: MutatePlan) -> str:
    conds = b.where(plan.table, "t0", plan.filters)
    where = f" where {' and '.join(conds)}" if conds else ""
    return (
        f"with _m as (delete from {plan.table.sql_name} as t0{where} "
        f"returning {'t0.*' if plan.returning is not None else '1'}) "
    )


def mutation_statement(
    b: Builder,
    plan: MutatePlan,
    body_json: str = "",
    *,
    strip_nulls: bool = False,
    max_bytes: int | None = None,
) -> str:
    """The write as a CTE `_m`, then `(total, n, body[, size][, inserted])`: the changed rows
    read through `plan.returning` (body null for `return=minimal`); `inserted` counts the
    rows an upsert inserted when `plan.tracks_inserts`."""
    if plan.kind == "insert":
        with_sql = _insert(b, plan, body_json)
    elif plan.kind == "update":
        with_sql = _update(b, plan, body_json)
    else:
        with_sql = _delete(b, plan)
    inserted = ""
    if plan.tracks_inserts:
        inserted = f", (select count(*) from _u where {_INSERTED}) as inserted"
    if plan.returning is None:
        return (
            f"{with_sql}select null::bigint as total, count(*) as n, null::text as body"
            f"{inserted} from _m"
        )
    rows = rows_statement(
        b, plan.returning, "_m", limit=None, strip_nulls=strip_nulls, max_bytes=max_bytes
    )
    return f"{with_sql}select _s.*{inserted} from ({rows}) _s"
