"""What the data API may expose: tables, views, columns, keys, relationships and functions of
the exposed schemas (`public` unless PB_REST_SCHEMAS lists others, as PostgREST's db-schemas),
read from the catalog once and reloaded on NOTIFY — never per request.

Only identifiers found here ever reach SQL, so this module is also the API's allow-list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from pocketbizz.errors import PostgrestCode, PostgrestError

SCHEMA = "public"
# The column that ties every tenant row to its owner; an FK made of it alone links every
# table to `users` and must not make a real relationship look ambiguous.
OWNER_COLUMN = "business_owner_id"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # without typmod, usable in a cast: 'numeric', 'uuid', 'text[]'
    nullable: bool
    default: str | None  # the default expression as the catalog prints it
    is_array: bool = False

    @property
    def element_type(self) -> str:
        return self.type[:-2] if self.is_array else self.type


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    is_view: bool
    columns: dict[str, Column]
    primary_key: tuple[str, ...] = ()
    unique_keys: list[tuple[str, ...]] = field(default_factory=list)
    description: str | None = None
    # Computed fields: functions of one argument of this table's row type, selected,
    # filtered and ordered like columns (PostgREST's computed fields).
    computed: dict[str, Function] = field(default_factory=dict)
    # Computed relationships: such functions returning another table's rows, embedded by
    # the function's name (`products?select=sku,top_lines(*)`).
    computed_relations: dict[str, Function] = field(default_factory=dict)
    schema: str = SCHEMA

    @property
    def sql_name(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        wanted = set(columns)
        return any(set(key) == wanted for key in [self.primary_key, *self.unique_keys] if key)


@dataclass(frozen=True)
class Relationship:
    """How rows of `table` reach rows of `target`: join on all the FK's column pairs, or,
    many-to-many, through the rows of a `junction` table."""

    table: str
    target: str
    constraint: str  # the FK's name; the junction table's name for many-to-many
    # (column in table, column in target) pairs; with a junction, in the junction instead.
    pairs: tuple[tuple[str, str], ...]
    to_one: bool
    junction: str | None = None
    # (column in junction, column in target) pairs.
    junction_pairs: tuple[tuple[str, str], ...] = ()
    # A computed relationship: the target rows are `function(parent row)`.
    function: str | None = None
    # PostgREST's names: many-to-one, one-to-one, one-to-many or many-to-many.
    cardinality: str = "many-to-one"
    # Many-to-many: the junction's FKs to `table` and to `target`.
    junction_constraints: tuple[str, str] = ("", "")

    @property
    def owner_only(self) -> bool:
        return all(a == OWNER_COLUMN for a, _ in self.pairs)


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    has_default: bool
    is_array: bool


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[Argument, ...]
    return_type: str
    returns_set: bool
    # The table whose row type the function returns, if any (setof products, products).
    return_table: str | None
    returns_composite: bool
    is_void: bool
    volatility: str  # 'i' immutable, 's' stable, 'v' volatile
    # OUT / TABLE columns of a `returns table (...)` or OUT-parameter function.
    out_columns: tuple[Column, ...] = ()
    description: str | None = None
    schema: str = SCHEMA

    @property
    def sql_name(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    @property
    def required(self) -> frozenset[str]:
        return frozenset(a.name for a in self.args if not a.has_default)

    @property
    def arg_names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.args)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# Catalog type names whose bare cast is lossy: `::character` means char(1), so `'DZ'::character`
# is `'D'`. Values cast to the unbounded type instead and PostgreSQL compares as it would
# with a literal (`iso = 'DZ'`).
_LOSSLESS_CASTS = {"character": "bpchar", "character[]": "bpchar[]"}


def cast_type(type_name: str) -> str:
    """The type to cast a request value to for a column or argument of `type_name`."""
    return _LOSSLESS_CASTS.get(type_name, type_name)


_TABLES = """
select c.oid, c.relname, c.relkind in ('v', 'm') as is_view, obj_description(c.oid) as descr
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f')
"""

# An identity column (BY DEFAULT) has no pg_attrdef row; its default is its sequence's next
# value, which `Prefer: missing=default` needs (as PostgREST's schema cache reads it). The
# sequence is found through pg_depend, which needs no USAGE on the schema (the role reading
# the catalog may hold none on an exposed schema).
_COLUMNS = """
select a.attrelid, a.attname, a.atttypid::regtype::text as type, not a.attnotnull as nullable,
       case when a.attidentity = 'd'
            then (select format('nextval(%L::regclass)', format('%I.%I', sn.nspname, s.relname))
                  from pg_catalog.pg_depend dep
                  join pg_catalog.pg_class s on s.oid = dep.objid
                  join pg_catalog.pg_namespace sn on sn.oid = s.relnamespace
                  where dep.classid = 'pg_catalog.pg_class'::regclass
                    and dep.refclassid = 'pg_catalog.pg_class'::regclass
                    and dep.refobjid = a.attrelid and dep.refobjsubid = a.attnum
                    and dep.deptype = 'i')
            else pg_catalog.pg_get_expr(d.adbin, d.adrelid) end as default_expr,
       t.typcategory = 'A' as is_array
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_type t on t.oid = a.atttypid
left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where n.nspname = $1 and a.attnum > 0 and not a.attisdropped
  and c.relkind in ('r', 'p', 'v', 'm', 'f')
order by a.attrelid, a.attnum
"""

_CONSTRAINTS = """
select con.conname, con.contype::text as contype, c.relname,
       array(select a.attname from unnest(con.conkey) with ordinality k(n, i)
             join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n
             order by k.i)::text[] as cols,
       rc.relname as ref_table,
       array(select a.attname from unnest(con.confkey) with ordinality k(n, i)
             join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n
             order by k.i)::text[] as ref_cols,
       rn.nspname as ref_schema
from pg_catalog.pg_constraint con
join pg_catalog.pg_class c on c.oid = con.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_class rc on rc.oid = con.confrelid
left join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = $1 and con.contype in ('p', 'u', 'f')
"""

# Unique indexes count as keys too (a partial one does not: it cannot back ON CONFLICT alone).
_UNIQUE_INDEXES = """
select c.relname,
       array(select a.attname from unnest(i.indkey) with ordinality k(n, o)
             join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n
             order by k.o)::text[] as cols
from pg_catalog.pg_index i
join pg_catalog.pg_class c on c.oid = i.indrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and i.indisunique and i.indpred is null and 0 <> all(i.indkey)
"""

_FUNCTIONS = """
select p.proname, p.provolatile::text as volatility, p.proretset,
       p.prorettype::regtype::text as return_type,
       coalesce(p.proargnames, '{}')::text[] as arg_names,
       coalesce(p.proargmodes::text[], '{}') as arg_modes,
       array(select t::regtype::text from unnest(p.proargtypes) t)::text[] as in_types,
       array(select t::regtype::text
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) t)::text[] as all_types,
       array(select typ.typcategory = 'A' from unnest(p.proargtypes) with ordinality t(o, i)
             join pg_catalog.pg_type typ on typ.oid = t.o order by t.i) as in_arrays,
       p.pronargs, p.pronargdefaults,
       rt.typtype = 'c' or p.prorettype = 'record'::regtype as returns_composite,
       rc.relname as return_table, rcn.nspname as return_schema,
       p.prorettype = 'void'::regtype as is_void,
       obj_description(p.oid, 'pg_proc') as descr
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_type rt on rt.oid = p.prorettype
left join pg_catalog.pg_class rc on rc.oid = rt.typrelid
left join pg_catalog.pg_namespace rcn on rcn.oid = rc.relnamespace
where n.nspname = $1 and p.prokind = 'f' and p.provariadic = 0
"""


@dataclass
class SchemaCache:
    """One exposed schema's objects. The cache of the first exposed schema (the default, as
    in PostgREST) also holds the others' in `profiles`, chosen by Accept-/Content-Profile;
    grants and RLS still decide what a role may read in each."""

    tables: dict[str, Table]
    foreign_keys: list[ForeignKey]
    functions: dict[str, list[Function]]
    schema: str = SCHEMA
    profiles: dict[str, SchemaCache] = field(default_factory=dict)

    @property
    def schemas(self) -> list[str]:
        """The exposed schemas, the default first."""
        return [self.schema, *self.profiles]

    def profile(self, schema: str | None) -> SchemaCache:
        """The cache of the schema a request's profile header names (None: the default)."""
        if schema is None or schema == self.schema:
            return self
        cache = self.profiles.get(schema)
        if cache is None:
            raise PostgrestError(
                PostgrestCode.UNACCEPTABLE_SCHEMA,
                f"The schema must be one of the following: {', '.join(self.schemas)}",
            )
        return cache

    @classmethod
    async def load(
        cls, conn: asyncpg.Connection, schemas: tuple[str, ...] = (SCHEMA,)
    ) -> SchemaCache:
        """Read the catalog in one REPEATABLE READ snapshot: DDL committed between two of
        the queries below can't make them disagree (a column of a table not yet seen)."""
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await cls.read(conn, schemas)

    @classmethod
    async def read(
        cls, conn: asyncpg.Connection, schemas: tuple[str, ...] = (SCHEMA,)
    ) -> SchemaCache:
        """The catalog of `schemas` (the default first) as the caller's transaction sees it
        (`load` opens one itself)."""
        default, *others = schemas
        cache = await cls._read_schema(conn, default)
        for schema in others:
            cache.profiles[schema] = await cls._read_schema(conn, schema)
        return cache

    @classmethod
    async def _read_schema(cls, conn: asyncpg.Connection, schema: str) -> SchemaCache:
        tables: dict[str, Table] = {}
        by_oid: dict[int, Table] = {}
        for row in await conn.fetch(_TABLES, schema):
            table = Table(
                row["relname"], row["is_view"], {}, description=row["descr"], schema=schema
            )
            tables[table.name] = table
            by_oid[row["oid"]] = table
        for row in await conn.fetch(_COLUMNS, schema):
            table = by_oid[row["attrelid"]]
            table.columns[row["attname"]] = Column(
                row["attname"], row["type"], row["nullable"], row["default_expr"], row["is_array"]
            )
        foreign_keys: list[ForeignKey] = []
        for row in await conn.fetch(_CONSTRAINTS, schema):
            table = tables[row["relname"]]
            cols = tuple(row["cols"])
            if row["contype"] == "p":
                table.primary_key = cols
            elif row["contype"] == "u":
                table.unique_keys.append(cols)
            elif row["ref_schema"] == schema and row["ref_table"] in tables:
                foreign_keys.append(
                    ForeignKey(
                        row["conname"],
                        row["relname"],
                        cols,
                        row["ref_table"],
                        tuple(row["ref_cols"]),
                    )
                )
        for row in await conn.fetch(_UNIQUE_INDEXES, schema):
            cols = tuple(row["cols"])
            table = tables[row["relname"]]
            if cols != table.primary_key and cols not in table.unique_keys:
                table.unique_keys.append(cols)
        functions: dict[str, list[Function]] = {}
        for row in await conn.fetch(_FUNCTIONS, schema):
            fn = _function(row, schema, tables)
            if fn is None:
                continue
            row_of = _row_type_table(fn, tables, schema)
            if row_of is not None and fn.return_table is not None:
                row_of.computed_relations.setdefault(fn.name, fn)
            elif row_of is not None and not fn.returns_set and not fn.is_void:
                row_of.computed.setdefault(fn.name, fn)
            if all(a.name for a in fn.args) or fn.args[0].type in ("json", "jsonb"):
                functions.setdefault(fn.name, []).append(fn)
        return cls(tables, foreign_keys, functions, schema)

    def relationships(self, table: str, target: str) -> list[Relationship]:
        """Every FK path between `table` and `target`, in both directions."""
        found: list[Relationship] = []
        source_table = self.tables.get(table)
        target_table = self.tables.get(target)
        for fk in self.foreign_keys:
            if fk.table == table and fk.ref_table == target:
                one = source_table is not None and source_table.is_unique(fk.columns)
                found.append(
                    Relationship(
                        table,
                        target,
                        fk.name,
                        tuple(zip(fk.columns, fk.ref_columns, strict=True)),
                        to_one=True,
                        cardinality="one-to-one" if one else "many-to-one",
                    )
                )
            if fk.table == target and fk.ref_table == table and fk.table != table:
                # One-to-one when the child's FK columns are themselves a key.
                one = target_table is not None and target_table.is_unique(fk.columns)
                found.append(
                    Relationship(
                        table,
                        target,
                        fk.name,
                        tuple(zip(fk.ref_columns, fk.columns, strict=True)),
                        to_one=one,
                        cardinality="one-to-one" if one else "one-to-many",
                    )
                )
        return found + self._many_to_many(table, target)

    def _many_to_many(self, table: str, target: str) -> list[Relationship]:
        """Through a junction: a third table with an FK to each side whose columns are all
        part of its primary key, as PostgREST detects them. FKs of the owner column alone
        (every tenant table has one to `users`) make no junction."""
        found: list[Relationship] = []
        for to_table in self.foreign_keys:
            junction = self.tables.get(to_table.table)
            if (
                to_table.ref_table != table
                or junction is None
                or junction.name in (table, target)
                or set(to_table.columns) <= {OWNER_COLUMN}
            ):
                continue
            for to_target in self.foreign_keys:
                if (
                    to_target.table != junction.name
                    or to_target.ref_table != target
                    or to_target is to_table
                    or set(to_target.columns) <= {OWNER_COLUMN}
                    or not set(to_table.columns) | set(to_target.columns)
                    <= set(junction.primary_key)
                ):
                    continue
                found.append(
                    Relationship(
                        table,
                        target,
                        junction.name,
                        tuple(zip(to_table.ref_columns, to_table.columns, strict=True)),
                        to_one=False,
                        junction=junction.name,
                        junction_pairs=tuple(
                            zip(to_target.columns, to_target.ref_columns, strict=True)
                        ),
                        cardinality="many-to-many",
                        junction_constraints=(to_table.name, to_target.name),
                    )
                )
        return found


def _table_name(type_name: str, schema: str) -> str:
    """`products`, `public.products` or `public."Odd name"` → the table's name (a table of
    a schema outside the search path is always printed qualified)."""
    for prefix in (f"{schema}.", f"{quote(schema)}."):
        type_name = type_name.removeprefix(prefix)
    return type_name[1:-1].replace('""', '"') if type_name.startswith('"') else type_name


def _row_type_table(fn: Function, tables: dict[str, Table], schema: str) -> Table | None:
    if len(fn.args) != 1 or fn.args[0].is_array:
        return None
    return tables.get(_table_name(fn.args[0].type, schema))


def _function(row: asyncpg.Record, schema: str, tables: dict[str, Table]) -> Function | None:
    modes: list[str] = list(row["arg_modes"])
    names: list[str] = list(row["arg_names"])
    in_types: list[str] = list(row["in_types"])
    in_arrays: list[bool] = list(row["in_arrays"])
    # Only IN/INOUT arguments are passed; their names come from proargnames by position.
    if modes:
        in_names = [
            names[i] if i < len(names) else "" for i, m in enumerate(modes) if m in ("i", "b")
        ]
    else:
        in_names = names[: len(in_types)] + [""] * (len(in_types) - len(names))
    n_defaults = row["pronargdefaults"]
    args = tuple(
        Argument(in_names[i], in_types[i], i >= len(in_types) - n_defaults, in_arrays[i])
        for i in range(len(in_types))
    )
    # Unnamed arguments cannot be called with named JSON; one unnamed json argument takes the
    # whole body, and one of a table's row type may be a computed field of that table.
    if any(not a.name for a in args) and not (
        len(args) == 1
        and (args[0].type in ("json", "jsonb") or _table_name(args[0].type, schema) in tables)
    ):
        return None
    all_types: list[str] = list(row["all_types"])
    out_columns = tuple(
        Column(names[i], all_types[i], True, None, all_types[i].endswith("[]"))
        for i, m in enumerate(modes)
        if m in ("o", "b", "t") and i < len(names) and i < len(all_types)
    )
    return_table = row["return_table"] if row["return_schema"] == schema else None
    if return_table is not None and return_table not in tables:
        return_table = None
    return Function(
        name=row["proname"],
        args=args,
        return_type=row["return_type"],
        returns_set=row["proretset"],
        return_table=return_table,
        returns_composite=bool(row["returns_composite"]),
        is_void=row["is_void"],
        volatility=row["volatility"],
        out_columns=out_columns,
        description=row["descr"],
        schema=schema,
    )
