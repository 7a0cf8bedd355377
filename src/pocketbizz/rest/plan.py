"""The middle step of a data-API request, as in PostgREST: parse → plan → render.

`query.py` parses the request's text; this module checks it against the schema cache and
resolves everything the SQL depends on — which column or computed field a name means and the
type its values compare as, which relationship an embed follows, which embedded-level params
(`items.order=…`) belong to which embed — into frozen plans (`ReadPlan`, `MutatePlan`,
`CallPlan`). `sql.py` renders plans only, and never consults the schema cache. Every error a
request can have short of the database's own (an unknown column, an ambiguous embed, …) is
raised here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pocketbizz.errors import ApiError, PostgrestCode, PostgrestError
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
    Function,
    Relationship,
    SchemaCache,
    Table,
    cast_type,
)


def unknown_column(table: str, column: str) -> ApiError:
    return ApiError(f"column {table}.{column} does not exist", status=400, code="42703")


def unknown_write_column(table: str, column: str) -> ApiError:
    return PostgrestError(
        PostgrestCode.COLUMN_NOT_FOUND,
        f"Could not find the '{column}' column of '{table}' in the schema cache",
    )


# ---------------------------------------------------------------------------------------------
# Plans


@dataclass(frozen=True)
class Field:
    """A name of the request resolved on its level: a column, or a computed field (a function
    of the row), with its JSON path; `type` is what values compare as (after the path)."""

    name: str
    type: str
    json_path: tuple[tuple[str, str], ...] = ()
    computed: Function | None = None


@dataclass(frozen=True)
class Filter:
    field: Field
    condition: Condition  # the operator and value(s), as parsed


@dataclass(frozen=True)
class FilterTree:
    op: str  # 'and' | 'or'
    negated: bool
    children: tuple[FilterPlan, ...]


FilterPlan = Filter | FilterTree


@dataclass(frozen=True)
class Order:
    field: Field
    desc: bool = False
    nulls: str | None = None


@dataclass(frozen=True)
class Output:
    """One entry of a select list: a field (None for `*`, or for `count()`), maybe
    cast or aggregated, under its output name."""

    field: Field | None
    name: str
    cast: str | None = None
    aggregate: str | None = None
    aggregate_cast: str | None = None


@dataclass(frozen=True)
class EmbedPlan:
    """An embed resolved: the relationship it follows (and the junction table of a
    many-to-many one) and the plan of the related level, its params merged in."""

    name: str  # the output name
    relationship: Relationship
    junction: Table | None
    inner: bool
    spread: bool
    read: ReadPlan

    @property
    def selected(self) -> bool:
        """Whether the embed appears in the result (an empty select only filters)."""
        return bool(self.read.select)


@dataclass(frozen=True)
class ReadPlan:
    """One level of a read: the table (or row shape) read, its select list with its embeds,
    its filters, order, limit and offset. `aggregated` when the select list aggregates (the
    level then groups by its other fields), itself or through a spread: a spread's columns
    count as the level's own, as in PostgREST."""

    table: Table
    select: tuple[Output | EmbedPlan, ...]
    filters: tuple[FilterPlan, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int | None = None

    @property
    def aggregated(self) -> bool:
        return any(
            (isinstance(i, Output) and i.aggregate is not None)
            or (isinstance(i, EmbedPlan) and i.spread and i.read.aggregated)
            for i in self.select
        )

    @property
    def embeds(self) -> tuple[EmbedPlan, ...]:
        return tuple(i for i in self.select if isinstance(i, EmbedPlan))


@dataclass(frozen=True)
class MutatePlan:
    """An INSERT (`on_conflict` and `resolution` for an upsert), UPDATE or DELETE of `table`,
    and the plan of the rows it answers with (None for `return=minimal`)."""

    kind: str  # 'insert' | 'update' | 'delete'
    table: Table
    columns: tuple[str, ...] = ()
    filters: tuple[FilterPlan, ...] = ()
    missing_default: bool = False
    resolution: str | None = None
    on_conflict: tuple[str, ...] = ()
    returning: ReadPlan | None = None

    @property
    def tracks_inserts(self) -> bool:
        """Whether the insert tells inserted rows from updated or skipped ones (the upsert's
        status depends on it): upserts into tables, by xmax, which views lack."""
        return self.kind == "insert" and self.resolution is not None and not self.table.is_view


@dataclass(frozen=True)
class CallPlan:
    """An RPC call: the function chosen among its overloads, the arguments it is called with
    (the raw body for a single unnamed json argument), and the plan of its rows when its
    result has columns (None for a scalar, a set of scalars or void)."""

    function: Function
    args: tuple[tuple[str, Any], ...]
    raw_body: str | None
    result: ReadPlan | None
    read_only: bool


# ---------------------------------------------------------------------------------------------
# Planning reads


class _NestedLookup:
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
            raise PostgrestError(
                PostgrestCode.NOT_EMBEDDED,
                f"'{path}' is not an embedded resource in this request",
                hint=f"Verify that '{path}' is included in the 'select' query parameter.",
            )


class Planner:
    """Builds plans against one schema cache."""

    def __init__(self, cache: SchemaCache) -> None:
        self.cache = cache

    def read(self, table: Table, query: Query) -> ReadPlan:
        """The plan of a read of `table` (or of a row shape: a function's result, the rows a
        write returns)."""
        nested = _NestedLookup(query)
        select = self._select(table, query.select, nested, ())
        nested.check_all_used()
        return ReadPlan(
            table,
            select,
            self._filters(table, query.filters),
            self._order(table, query.order),
            query.limit,
            query.offset,
        )

    # -- fields, filters, order ----------------------------------------------------------------

    def field(self, table: Table, ref: FieldRef) -> Field:
        col = table.columns.get(ref.name)
        computed: Function | None = None
        if col is not None:
            typ = cast_type(col.type)
        elif ref.name in table.computed:
            computed = table.computed[ref.name]
            typ = cast_type(computed.return_type)
        else:
            raise unknown_column(table.name, ref.name)
        for arrow, _ in ref.json_path:
            typ = "text" if arrow == "->>" else "jsonb"
        return Field(ref.name, typ, ref.json_path, computed)

    def _filters(self, table: Table, nodes: list[FilterNode]) -> tuple[FilterPlan, ...]:
        return tuple(self._filter(table, node) for node in nodes)

    def _filter(self, table: Table, node: FilterNode) -> FilterPlan:
        if isinstance(node, Condition):
            field = self.field(table, node.ref)
            if node.op == "in" and not node.quantifier and field.type.endswith("[]"):
                raise PostgrestError(
                    PostgrestCode.QUERY_PARAM, "in. is not supported on array columns"
                )
            return Filter(field, node)
        children = tuple(self._filter(table, child) for child in node.children)
        return FilterTree(node.op, node.negated, children)

    def _order(self, table: Table, terms: list[OrderTerm]) -> tuple[Order, ...]:
        return tuple(Order(self.field(table, t.ref), t.desc, t.nulls) for t in terms)

    # -- select lists and embeds -------------------------------------------------------------

    def _select(
        self,
        table: Table,
        items: list[SelectItem],
        nested: _NestedLookup,
        path: tuple[str, ...],
    ) -> tuple[Output | EmbedPlan, ...]:
        planned: list[Output | EmbedPlan] = []
        aggregated = any(_aggregates(i) for i in items)
        for item in items:
            if isinstance(item, SelectField):
                planned.append(self._output(table, item, aggregated))
                continue
            # A spread's columns group or are aggregated at this level: plain columns only
            # (PostgREST documents no `*` or nested embed there).
            if (
                aggregated
                and item.spread
                and any(
                    not isinstance(i, SelectField) or (i.ref.name == "*" and not i.aggregate)
                    for i in item.select
                )
            ):
                raise PostgrestError(
                    PostgrestCode.QUERY_PARAM,
                    "A spread combined with aggregate functions takes named columns only",
                    hint=f"Name the columns of '{item.target}' to group by or aggregate.",
                )
            # A spread's nested params are addressed by its target (it has no output name).
            step = item.target if item.spread and item.select else item.output_name
            planned.append(self._embed(table, item, nested, (*path, step)))
        return tuple(planned)

    def _output(self, table: Table, item: SelectField, aggregated: bool) -> Output:
        if item.ref.name == "*":
            if aggregated and not item.aggregate:
                raise PostgrestError(
                    PostgrestCode.QUERY_PARAM,
                    "'*' cannot be selected together with aggregate functions",
                    hint="Name the columns to group by.",
                )
            field = None
        else:
            field = self.field(table, item.ref)
        return Output(field, item.output_name, item.cast, item.aggregate, item.aggregate_cast)

    def _embed(
        self, parent: Table, embed: Embed, nested: _NestedLookup, path: tuple[str, ...]
    ) -> EmbedPlan:
        rel = self.relationship(parent, embed)
        if embed.spread and embed.select and not rel.to_one:
            raise PostgrestError(
                PostgrestCode.SPREAD_NOT_TO_ONE,
                f"A spread operation on '{embed.target}' is not possible",
                details=f"'{parent.name}' and '{embed.target}' do not form a many-to-one or "
                "one-to-one relationship",
            )
        target = self.cache.tables[rel.target]
        level = nested.apply(path, embed)
        select = self._select(target, embed.select, nested, path)
        read = ReadPlan(
            target,
            select,
            self._filters(target, level.filters),
            self._order(target, level.order),
            level.limit,
            level.offset,
        )
        junction = self.cache.tables[rel.junction] if rel.junction is not None else None
        return EmbedPlan(embed.output_name, rel, junction, embed.inner, embed.spread, read)

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
            using = f" using the hint '{embed.hint}'" if embed.hint else ""
            raise PostgrestError(
                PostgrestCode.NO_RELATIONSHIP,
                f"Could not find a relationship between '{parent.name}' and "
                f"'{embed.target}' in the schema cache",
                details=f"Searched for a foreign key relationship between '{parent.name}' and "
                f"'{embed.target}'{using} in the schema '{parent.schema}', "
                "but no matches were found.",
            )
        if len(candidates) > 1:
            raise PostgrestError(
                PostgrestCode.AMBIGUOUS_RELATIONSHIP,
                f"Could not embed because more than one relationship was found for "
                f"'{parent.name}' and '{embed.target}'",
                details=[_described(r) for r in candidates],
                hint=f"Try changing '{embed.target}' to one of the following: "
                + ", ".join(f"'{r.target}!{r.constraint}'" for r in candidates)
                + ". Find the desired relationship in the 'details' key.",
            )
        return candidates[0]

    # -- writes ----------------------------------------------------------------------------------

    def insert(
        self,
        table: Table,
        columns: list[str],
        query: Query,
        *,
        missing_default: bool,
        resolution: str | None,
        returning: bool,
    ) -> MutatePlan:
        for name in columns:
            if name not in table.columns:
                raise unknown_write_column(table.name, name)
        for name in query.on_conflict or ():
            if name not in table.columns:
                raise unknown_write_column(table.name, name)
        target = conflict_target(table, query.on_conflict) if resolution else ()
        return MutatePlan(
            "insert",
            table,
            tuple(columns),
            missing_default=missing_default,
            resolution=resolution,
            on_conflict=target,
            returning=self._returning(table, query) if returning else None,
        )

    def update(
        self, table: Table, columns: list[str], query: Query, *, returning: bool
    ) -> MutatePlan:
        for name in columns:
            if name not in table.columns:
                raise unknown_write_column(table.name, name)
        return MutatePlan(
            "update",
            table,
            tuple(columns),
            filters=self._filters(table, query.filters),
            returning=self._returning(table, query) if returning else None,
        )

    def delete(self, table: Table, query: Query, *, returning: bool) -> MutatePlan:
        return MutatePlan(
            "delete",
            table,
            filters=self._filters(table, query.filters),
            returning=self._returning(table, query) if returning else None,
        )

    def _returning(self, table: Table, query: Query) -> ReadPlan:
        # The filters chose the rows to change; the changed rows may no longer match them.
        return self.read(table, Query(select=query.select, nested=query.nested))

    # -- calls ---------------------------------------------------------------------------------

    def call(
        self,
        name: str,
        args: dict[str, Any],
        raw_body: str | None,
        query: Query,
        *,
        read_only: bool,
    ) -> CallPlan:
        """The function `args` name among the overloads of `name`, and the plan of its result
        rows when they have columns (so `select`, filters and order apply to them)."""
        fn = resolve_function(self.cache, name, set(args))
        shape = function_table(self.cache, fn)
        result = self.read(shape, query) if shape is not None and not fn.is_void else None
        return CallPlan(fn, tuple(args.items()), raw_body, result, read_only)


def _aggregates(item: SelectItem) -> bool:
    """Whether a select item aggregates at its level: an aggregate field, or a spread whose
    own fields aggregate (they count as the level's)."""
    if isinstance(item, SelectField):
        return item.aggregate is not None
    return item.spread and any(isinstance(i, SelectField) and i.aggregate for i in item.select)


def _described(rel: Relationship) -> dict[str, str]:
    """A candidate of an ambiguous embed as PostgREST's PGRST201 `details` list it."""

    def cols(names: Iterable[str]) -> str:
        return "(" + ", ".join(names) + ")"

    if rel.junction is not None:
        to_table, to_target = rel.junction_constraints
        using = (
            f"{rel.junction} using {to_table}{cols(j for _, j in rel.pairs)} and "
            f"{to_target}{cols(j for j, _ in rel.junction_pairs)}"
        )
    else:
        using = (
            f"{rel.constraint} using {rel.table}{cols(a for a, _ in rel.pairs)} and "
            f"{rel.target}{cols(b for _, b in rel.pairs)}"
        )
    return {
        "cardinality": rel.cardinality,
        "embedding": f"{rel.table} with {rel.target}",
        "relationship": using,
    }


def resolve_function(cache: SchemaCache, name: str, given: set[str]) -> Function:
    candidates = cache.functions.get(name, [])
    matches = [fn for fn in candidates if fn.required <= given <= fn.arg_names]
    if len(matches) > 1:
        # Overloads the named arguments cannot tell apart: PostgREST refuses to guess.
        signatures = ", ".join(
            f"{cache.schema}.{name}({', '.join(f'{a.name} => {a.type}' for a in fn.args)})"
            for fn in matches
        )
        raise PostgrestError(
            PostgrestCode.AMBIGUOUS_FUNCTION,
            f"Could not choose the best candidate function between: {signatures}",
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
    raise PostgrestError(
        PostgrestCode.NO_FUNCTION,
        f"Could not find the function {cache.schema}.{name}({args}) in the schema cache",
        hint="Check the function's name and argument names.",
    )


def function_table(cache: SchemaCache, fn: Function) -> Table | None:
    """The row shape of a composite result, for `select`/filters on it."""
    if fn.return_table is not None:
        return cache.tables[fn.return_table]
    if fn.out_columns:
        return Table(fn.name, True, {c.name: c for c in fn.out_columns})
    return None


def conflict_target(table: Table, on_conflict: list[str] | None) -> tuple[str, ...]:
    """The ON CONFLICT columns. Tenant keys include `business_owner_id`, which clients never
    name (`on_conflict=id`): when the named columns are not a key on their own but are one
    together with the owner column, the owner column is added — it is the caller's anyway."""
    target = tuple(on_conflict) if on_conflict else table.primary_key
    if not target:
        raise PostgrestError(
            PostgrestCode.QUERY_PARAM,
            f"'{table.name}' has no primary key; name the conflict columns with on_conflict",
        )
    for name in target:
        if name not in table.columns:
            raise unknown_write_column(table.name, name)
    if not table.is_unique(target) and OWNER_COLUMN in table.columns:
        widened = (OWNER_COLUMN, *(c for c in target if c != OWNER_COLUMN))
        if table.is_unique(widened):
            return widened
    return target
