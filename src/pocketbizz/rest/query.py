"""The PostgREST query language, parsed into plain values: `select` trees with embeds,
filter trees (`or=(…)`, `and=(…)`, `not.`), `order`, `limit`/`offset`, and `Prefer`.

Nothing here touches SQL or the schema; `sql.py` checks every name against the schema cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pocketbizz.errors import ApiError, PostgrestCode, PostgrestError

# Operators and the SQL they become (`%s` is the column expression, `{}` the value).
OPERATORS = frozenset(
    {
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "match",
        "imatch",
        "in",
        "is",
        "isdistinct",
        "cs",
        "cd",
        "ov",
        "sl",
        "sr",
        "nxl",
        "nxr",
        "adj",
        "fts",
        "plfts",
        "phfts",
        "wfts",
    }
)
# Default nesting bounds (settings `rest_max_filter_depth`, `rest_max_embed_depth`).
MAX_DEPTH = 16
MAX_EMBED_DEPTH = 8
# Operators taking PostgREST's `(any)` / `(all)` modifier: `col=like(any).{a*,b*}`.
QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
# Casts allowed in `select=col::type`: a short list, never free text.
CASTS = frozenset(
    {
        "text",
        "varchar",
        "int",
        "int2",
        "int4",
        "int8",
        "integer",
        "smallint",
        "bigint",
        "numeric",
        "real",
        "float4",
        "float8",
        "double precision",
        "boolean",
        "bool",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "json",
        "jsonb",
        "uuid",
    }
)
AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})
# `[field[::cast].]agg()[::cast]` once the alias is split off: `amount::int.sum()::text`.
_AGGREGATE = re.compile(r"^(?:(?P<field>.+)\.)?(?P<fn>[a-z]+)\(\)(?:::(?P<cast>[A-Za-z0-9_ ]+))?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$ ]*$")
_JSON_STEP = re.compile(r"(->>?)")


def parse_error(message: str, details: str | None = None) -> ApiError:
    return PostgrestError(PostgrestCode.QUERY_PARAM, message, details=details)


@dataclass(frozen=True)
class FieldRef:
    """A column, optionally followed by a JSON path: `data->a->>b`."""

    name: str
    json_path: tuple[tuple[str, str], ...] = ()

    @property
    def output_name(self) -> str:
        return self.json_path[-1][1] if self.json_path else self.name


@dataclass(frozen=True)
class SelectField:
    ref: FieldRef
    alias: str | None = None
    cast: str | None = None  # of the column (before an aggregate)
    # `amount.sum()`, `count()` (ref `*`): the other fields of the level become its GROUP BY.
    aggregate: str | None = None
    aggregate_cast: str | None = None  # of the aggregate's result: `amount.sum()::text`

    @property
    def output_name(self) -> str:
        return self.alias or self.aggregate or self.ref.output_name


@dataclass
class Embed:
    target: str
    alias: str | None
    hint: str | None
    inner: bool
    select: list[SelectItem]
    filters: list[FilterNode] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    # `...products(name)`: the embedded row's columns merge into the parent's (to-one only).
    spread: bool = False

    @property
    def output_name(self) -> str:
        return self.alias or self.target


SelectItem = SelectField | Embed


@dataclass(frozen=True)
class Condition:
    ref: FieldRef
    op: str
    negated: bool
    value: str | None  # None only for `in`
    values: tuple[str | None, ...] = ()  # `in.(…)` elements; None is SQL null
    modifier: str | None = None  # the fts language: `fts(english).cat`
    quantifier: str | None = None  # `any` | `all`: `like(any).{a*,b*}` against an array


@dataclass
class Logic:
    op: str  # 'and' | 'or'
    negated: bool
    children: list[FilterNode]


FilterNode = Condition | Logic


@dataclass(frozen=True)
class OrderTerm:
    ref: FieldRef
    desc: bool = False
    nulls: str | None = None  # 'first' | 'last'


@dataclass
class Query:
    """Everything a request's query string says, before it is checked against the schema."""

    select: list[SelectItem]
    filters: list[FilterNode] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    columns: list[str] | None = None
    on_conflict: list[str] | None = None
    # Parameters addressed at an embedded level, by path of output names.
    nested: dict[tuple[str, ...], NestedParams] = field(default_factory=dict)
    # Parameters not recognised as filters (RPC arguments on GET).
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class NestedParams:
    filters: list[FilterNode] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


# ---------------------------------------------------------------------------------------------
# Tokenising helpers


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses and double quotes (with backslash escapes)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    start = 0
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise parse_error("unbalanced parentheses", text)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quoted or depth != 0:
        raise parse_error("unbalanced parentheses or quotes", text)
    parts.append(text[start:])
    return parts


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _strip_spaces(text: str) -> str:
    """Drop whitespace outside double quotes, as PostgREST does for `select`."""
    out: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if quoted or not ch.isspace():
            out.append(ch)
    return "".join(out)


def _identifier(token: str, what: str = "identifier") -> str:
    name = _unquote(token)
    if not name or (token == name and not _IDENT.match(name)):
        raise parse_error(f"invalid {what}", token)
    # Aliases reach SQL quoted; control characters (NUL above all) never belong in one.
    if len(name) > 63 or any(ord(ch) < 32 for ch in name):
        raise parse_error(f"invalid {what}", token)
    return name


def parse_field_ref(text: str) -> FieldRef:
    pieces = _JSON_STEP.split(text)
    name = _identifier(pieces[0], "column name")
    path: list[tuple[str, str]] = []
    for i in range(1, len(pieces), 2):
        key = _unquote(pieces[i + 1])
        if not key:
            raise parse_error("invalid json path", text)
        path.append((pieces[i], key))
    return FieldRef(name, tuple(path))


# ---------------------------------------------------------------------------------------------
# select=


def parse_select(
    text: str,
    *,
    max_depth: int = MAX_EMBED_DEPTH,
    depth: int = 0,
    aggregates: bool = False,
) -> list[SelectItem]:
    """`depth` is the embedding level of `text`; embeds nest at most `max_depth` levels.
    `aggregates`: whether `amount.sum()` and `count()` are allowed (`rest_aggregates_enabled`)."""
    text = _strip_spaces(text)
    if not text:
        return [SelectField(FieldRef("*"))]
    return [_select_item(item, max_depth, depth, aggregates) for item in split_top(text)]


def _cast(text: str, item: str) -> str:
    if text.lower() not in CASTS:
        raise parse_error(f"unsupported cast '{text}'", item)
    return text.lower()


def _aggregate(alias: str | None, rest: str, item: str, allowed: bool) -> SelectField | None:
    match = _AGGREGATE.match(rest)
    if match is None or match["fn"] not in AGGREGATES:
        return None
    if not allowed:
        raise PostgrestError(
            PostgrestCode.AGGREGATES_NOT_ALLOWED, "Use of aggregate functions is not allowed"
        )
    after = _cast(match["cast"], item) if match["cast"] else None
    field_text = match["field"]
    if field_text is None:
        if match["fn"] != "count":
            raise parse_error(f"{match['fn']}() needs a column: column.{match['fn']}()", item)
        return SelectField(FieldRef("*"), alias, None, "count", after)
    before: str | None = None
    if "::" in field_text:
        field_text, cast_text = field_text.split("::", 1)
        before = _cast(cast_text, item)
    return SelectField(parse_field_ref(field_text), alias, before, match["fn"], after)


def _split_alias(item: str) -> tuple[str | None, str]:
    i = 0
    quoted = False
    while i < len(item):
        ch = item[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == ":":
            if item[i + 1 : i + 2] == ":":
                return None, item  # a cast comes first: no alias
            return _identifier(item[:i], "alias"), item[i + 1 :]
        elif not quoted and ch in "(-!":
            break
        i += 1
    return None, item


def _select_item(item: str, max_depth: int, depth: int, aggregates: bool) -> SelectItem:
    if not item:
        raise parse_error("empty select item")
    spread = item.startswith("...")
    if spread:
        item = item[3:]
    alias, rest = _split_alias(item)
    if spread and (alias or not rest.endswith(")")):
        raise parse_error("a spread takes an embedded resource without alias", item)
    aggregate = None if spread else _aggregate(alias, rest, item, aggregates)
    if aggregate is not None:
        return aggregate
    paren = rest.find("(")
    if paren > 0 and rest.endswith(")"):
        head, inner = rest[:paren], rest[paren + 1 : -1]
        names = head.split("!")
        target = _identifier(names[0], "relation name")
        hint: str | None = None
        inner_join = False
        for mod in names[1:]:
            if mod == "inner":
                inner_join = True
            elif mod == "left":
                inner_join = False
            elif mod:
                hint = _identifier(mod, "embed hint")
        if depth >= max_depth:
            raise too_deep("select parameter's embedding", max_depth)
        # `users()` selects nothing: the embed only filters (with `!inner`) and is left
        # out of the result, as in PostgREST.
        children: list[SelectItem] = (
            parse_select(inner, max_depth=max_depth, depth=depth + 1, aggregates=aggregates)
            if inner
            else []
        )
        return Embed(target, alias, hint, inner_join, children, spread=spread)
    if "(" in rest or ")" in rest:
        raise parse_error("failed to parse select parameter", item)
    cast: str | None = None
    if "::" in rest:
        rest, cast_text = rest.split("::", 1)
        cast = _cast(cast_text, item)
    if rest == "*":
        if alias or cast:
            raise parse_error("'*' takes no alias or cast", item)
        return SelectField(FieldRef("*"))
    return SelectField(parse_field_ref(rest), alias, cast)


# ---------------------------------------------------------------------------------------------
# Filters


def parse_filter(ref_text: str, expr: str) -> Condition:
    """`col` + `[not.]op[(mod)].value` → Condition."""
    ref = parse_field_ref(ref_text)
    negated = False
    if expr.startswith("not."):
        negated, expr = True, expr[4:]
    op, dot, value = expr.partition(".")
    modifier: str | None = None
    quantifier: str | None = None
    if "(" in op and op.endswith(")"):
        op, modifier = op[:-1].split("(", 1)
        if op in QUANTIFIABLE and modifier in ("any", "all"):
            quantifier, modifier = modifier, None
        elif op not in ("fts", "plfts", "phfts", "wfts") or not _IDENT.match(modifier):
            raise parse_error(f"failed to parse filter ({expr})")
    if not dot or op not in OPERATORS:
        raise parse_error(f"failed to parse filter ({expr})", f"unknown operator '{op}'")
    if op == "in":
        return Condition(ref, op, negated, None, parse_in_list(value))
    if op == "is" and value.lower() not in IS_VALUES:
        raise parse_error(f"failed to parse filter ({expr})", "is. takes null, true or false")
    return Condition(ref, op, negated, value, modifier=modifier, quantifier=quantifier)


def parse_in_list(text: str) -> tuple[str | None, ...]:
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise parse_error(f"failed to parse filter (in.{text})", "in. takes a list like (1,2)")
    inner = text[1:-1]
    if not inner:
        return ()
    items: list[str | None] = []
    for token in split_top(inner):
        if token == "null":
            items.append(None)
        elif token.startswith('"'):
            if not token.endswith('"') or len(token) < 2:
                raise parse_error(f"failed to parse filter (in.{text})")
            items.append(_unquote(token))
        else:
            items.append(token)
    return tuple(items)


def parse_logic(op: str, negated: bool, text: str, *, max_depth: int = MAX_DEPTH) -> Logic:
    """`(item,item,…)` → Logic, in one left-to-right pass over the text with an explicit stack
    of open trees: the work is linear in the text and the nesting is bounded by `max_depth`,
    so no query string can recurse the parser or hold the event loop."""

    def fail(detail: str | None = None) -> ApiError:
        return parse_error(f"failed to parse logic tree ({_excerpt(text)})", detail)

    if not text.startswith("("):
        raise fail("expected (…)")
    root = Logic(op, negated, [])
    stack = [root]
    i, n = 1, len(text)
    while True:
        # `i` is the start of an item of the innermost open tree.
        neg = text.startswith("not.", i)
        start = i + 4 if neg else i
        logic = next((w for w in ("and", "or") if text.startswith(w + "(", start)), None)
        if logic is not None:
            if len(stack) >= max_depth:
                raise too_deep("logic tree", max_depth)
            child = Logic(logic, neg, [])
            stack[-1].children.append(child)
            stack.append(child)
            i = start + len(logic) + 1
            continue
        end = _item_end(text, i)
        if end is None:
            raise fail("unbalanced parentheses, braces or quotes")
        if end == i:
            raise fail("empty item")
        stack[-1].children.append(_logic_condition(text[i:end], fail))
        i = end
        while i < n and text[i] == ")":  # close every tree that ends here
            stack.pop()
            i += 1
            if not stack:
                if i != n:
                    raise fail("unexpected text after the closing parenthesis")
                return root
        if i >= n or text[i] != ",":
            raise fail("unbalanced parentheses")
        i += 1


def too_deep(what: str, max_depth: int) -> ApiError:
    return parse_error(
        f"The {what} is nested too deeply",
        f"At most {max_depth} levels are accepted",
    )


def _excerpt(text: str, size: int = 200) -> str:
    """Error messages quote the input, but never kilobytes of it."""
    return text if len(text) <= size else text[:size] + "…"


_ITEM_SPECIAL = re.compile(r'[,(){}"\\]')


def _item_end(text: str, i: int) -> int | None:
    """Where the condition starting at `i` ends: the next `,` or `)` outside double quotes,
    parentheses (`in.(1,2)`) and braces (`cs.{a,b}`); None when one of those stays open.
    Jumps from one special character to the next (a regex scan, not a Python loop per char)."""
    parens = braces = 0
    quoted = escaped = False
    escape_at = -1
    for match in _ITEM_SPECIAL.finditer(text, i):
        ch = match.group()
        if escaped:
            # A backslash escapes the character right after it only.
            escaped = False
            if match.start() == escape_at + 1:
                continue
        if quoted:
            if ch == "\\":
                escaped, escape_at = True, match.start()
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "{":
            braces += 1
        elif ch == "}" and braces:
            braces -= 1
        elif ch == "(":
            parens += 1
        elif ch in ",)" and not parens and not braces:
            return match.start()
        elif ch == ")":
            parens -= 1
    return None


def _logic_condition(item: str, fail: Callable[[str | None], ApiError]) -> Condition:
    col, dot, expr = item.partition(".")
    if not dot:
        raise fail(item)
    condition = parse_filter(col, expr)
    if condition.op == "in" or condition.value is None:
        return condition
    # Inside a logic tree a value may be double-quoted to hold `,` `(` `)`.
    return replace(condition, value=_unquote(condition.value))


# ---------------------------------------------------------------------------------------------
# order=, limit=, offset=


def parse_order(text: str) -> list[OrderTerm]:
    terms: list[OrderTerm] = []
    for item in split_top(text):
        parts = item.split(".")
        ref = parse_field_ref(parts[0])
        desc = False
        nulls: str | None = None
        for mod in parts[1:]:
            if mod in ("asc", "desc"):
                desc = mod == "desc"
            elif mod in ("nullsfirst", "nullslast"):
                nulls = mod[5:]
            else:
                raise parse_error(f"failed to parse order ({text})", f"unknown modifier '{mod}'")
        terms.append(OrderTerm(ref, desc, nulls))
    return terms


def parse_count(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise parse_error(f"failed to parse {name} ({text})") from None
    if value < 0:
        raise parse_error(f"{name} must be a non-negative integer ({text})")
    return value


def parse_columns(text: str) -> list[str]:
    return [_identifier(c, "column name") for c in split_top(_strip_spaces(text)) if c]


# ---------------------------------------------------------------------------------------------
# The whole query string


def parse_query(
    params: list[tuple[str, str]],
    *,
    arg_names: frozenset[str] = frozenset(),
    max_depth: int = MAX_DEPTH,
    max_embed_depth: int = MAX_EMBED_DEPTH,
    aggregates: bool = False,
) -> Query:
    """Parse `parse_qsl` pairs; `arg_names` are RPC arguments (GET), kept aside in `extra`.
    `max_depth` bounds logic-tree nesting, `max_embed_depth` embedding in `select`."""
    query = Query(select=[SelectField(FieldRef("*"))])
    for key, value in params:
        if key == "apikey":
            continue
        if key in arg_names:
            query.extra[key] = value
            continue
        path, _, last = key.rpartition(".")
        negated_logic = False
        if (
            last in ("or", "and")
            and path.endswith("not")
            and (path == "not" or path.endswith(".not"))
        ):
            negated_logic = True
            path = path[:-4] if path != "not" else ""
        where = tuple(path.split(".")) if path else ()
        if where and last in ("select", "columns", "on_conflict"):
            raise parse_error(f"'{key}' is not a valid parameter")
        if not where:
            if key == "select":
                query.select = parse_select(value, max_depth=max_embed_depth, aggregates=aggregates)
                continue
            if key == "columns":
                query.columns = parse_columns(value)
                continue
            if key == "on_conflict":
                query.on_conflict = parse_columns(value)
                continue
        target = query.nested.setdefault(where, NestedParams()) if where else None
        if last == "order":
            terms = parse_order(value)
            if target is None:
                query.order = terms
            else:
                target.order = terms
        elif last in ("limit", "offset"):
            count = parse_count(last, value)
            holder = target if target is not None else query
            setattr(holder, last, count)
        elif last in ("or", "and"):
            node = parse_logic(last, negated_logic, value, max_depth=max_depth)
            (query.filters if target is None else target.filters).append(node)
        else:
            condition = parse_filter(last, value)
            (query.filters if target is None else target.filters).append(condition)
    return query


# ---------------------------------------------------------------------------------------------
# Prefer


@dataclass
class Preferences:
    ret: str = "minimal"  # representation | minimal | headers-only
    ret_given: bool = False
    count: str | None = None  # exact | planned | estimated
    resolution: str | None = None  # merge-duplicates | ignore-duplicates
    missing_default: bool = False
    strict: bool = False
    max_affected: int | None = None
    rollback: bool = False
    applied: list[str] = field(default_factory=list)


def parse_prefer(values: list[str]) -> Preferences:
    prefs = Preferences()
    for header in values:
        for token in header.split(","):
            token = token.strip()
            name, _, value = token.partition("=")
            name, value = name.strip(), value.strip()
            if name == "return" and value in ("representation", "minimal", "headers-only"):
                prefs.ret, prefs.ret_given = value, True
            elif name == "count" and value in ("exact", "planned", "estimated"):
                prefs.count = value
            elif name == "resolution" and value in ("merge-duplicates", "ignore-duplicates"):
                prefs.resolution = value
            elif name == "missing" and value == "default":
                prefs.missing_default = True
            elif name == "handling":
                prefs.strict = value == "strict"
            elif name == "max-affected":
                try:
                    prefs.max_affected = int(value)
                except ValueError:
                    continue
            elif name == "tx" and value in ("commit", "rollback"):
                prefs.rollback = value == "rollback"
            else:
                continue
            prefs.applied.append(token)
    return prefs


# ---------------------------------------------------------------------------------------------
# Shape: what a read's SQL depends on


# Comparisons whose value only ever becomes one bind parameter (`$n::text::type`): the SQL of a
# query is the same whatever the value.
_VALUE_ONLY_OPS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte"})


@dataclass(frozen=True)
class Shape:
    """A query string without the values of its plain `column=op.value` comparisons (kept as
    `column=op.`): `id=eq.1` and `id=eq.2` have one shape, so one built statement serves both.
    `masked` are the positions in `pairs` whose values were taken out, in order."""

    pairs: tuple[tuple[str, str], ...]
    masked: tuple[int, ...]
    values: tuple[str, ...]

    def with_values(self, values: tuple[str, ...]) -> list[tuple[str, str]]:
        """The pairs with `values` put back in the masked places (for parsing)."""
        pairs = list(self.pairs)
        for index, value in zip(self.masked, values, strict=True):
            key, op_dot = pairs[index]
            pairs[index] = (key, op_dot + value)
        return pairs


def query_shape(params: list[tuple[str, str]]) -> Shape:
    pairs: list[tuple[str, str]] = []
    masked: list[int] = []
    values: list[str] = []
    for key, value in params:
        if key == "apikey":  # never part of the query
            continue
        if key.isidentifier() and key not in RESERVED_PARAMS and key not in ("or", "and"):
            op, dot, rest = value.partition(".")
            if dot and op in _VALUE_ONLY_OPS:
                masked.append(len(pairs))
                values.append(rest)
                pairs.append((key, op + "."))
                continue
        pairs.append((key, value))
    return Shape(tuple(pairs), tuple(masked), tuple(values))
