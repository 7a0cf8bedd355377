"""Row filters of `postgres_changes` bindings: `col=op.value`, commas meaning AND.

Operators: eq, neq, lt, lte, gt, gte, in (`in.(a,b)`). Values are compared with the column's
type, as PostgreSQL would: numbers as Decimal, timestamps and dates as instants, booleans as
booleans, uuids and text as strings. NULL matches nothing, as in SQL.

Every value is checked when the channel joins, so nothing a client sends can fail later, in
the fan-out of a change (where it would cost every channel of the tenant that change):
NaN and infinities are refused. Timestamps compare like PostgreSQL's casts: a `timestamptz`
filter without an offset is read in UTC (the server's session time zone), and a `timestamp`
(without time zone) column ignores any offset, as its cast does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_NUMERIC = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8"})
_STRING = frozenset({"text", "varchar", "bpchar", "name", "citext"})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
MAX_CONDITIONS = 16


class FilterError(ValueError):
    pass


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "1", "yes", "on"):
        return True
    if lowered in ("false", "f", "0", "no", "off"):
        return False
    raise ValueError(text)


def _to_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _to_local(text: str) -> datetime:
    return datetime.fromisoformat(text.strip()).replace(tzinfo=None)


def _to_number(text: str) -> Decimal:
    number = Decimal(text.strip())
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return number


def _typed(type_name: str) -> Callable[[str], Any] | None:
    """How to read a value of this column type from text; None if filters can't use it."""
    if type_name in _NUMERIC:
        return _to_number
    if type_name == "bool":
        return _to_bool
    if type_name == "timestamptz":
        return _to_instant
    if type_name == "timestamp":
        return _to_local
    if type_name == "date":
        return lambda text: date.fromisoformat(text.strip())
    if type_name == "uuid":
        return lambda text: str(text).strip().lower()
    if type_name in _STRING:
        return str
    return None


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    values: tuple[Any, ...]
    read: Callable[[str], Any]

    def matches(self, record: Mapping[str, Any]) -> bool:
        raw = record.get(self.column)
        if raw is None:
            return False
        try:
            # Row values arrive as JSON (numbers, bools, strings): read them like the filter.
            value = self.read(raw if isinstance(raw, str) else _json_text(raw))
        except (ValueError, ArithmeticError):
            return False
        try:
            if self.op == "in":
                return value in self.values
            return _COMPARE[self.op](value, self.values[0])
        except (TypeError, ArithmeticError):  # cannot happen with values checked at join
            return False


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class RowFilter:
    conditions: tuple[Condition, ...]

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(c.column for c in self.conditions)

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(c.matches(record) for c in self.conditions)


def _split_conditions(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _list_values(text: str) -> list[str]:
    if not (text.startswith("(") and text.endswith(")")):
        raise FilterError(f"'in' expects a list like in.(a,b), got {text!r}")
    items = [item.strip() for item in text[1:-1].split(",")]
    return [item[1:-1] if len(item) >= 2 and item[0] == item[-1] == '"' else item for item in items]


def parse_filter(text: str, column_types: Mapping[str, str]) -> RowFilter:
    """Parse a binding's filter against the table's columns (name → PostgreSQL type name)."""
    pieces = _split_conditions(text)
    if len(pieces) > MAX_CONDITIONS:
        raise FilterError(f"too many filter conditions (at most {MAX_CONDITIONS})")
    conditions = []
    for piece in pieces:
        column, eq, rest = piece.partition("=")
        column = column.strip()
        op, dot, value = rest.partition(".")
        if not eq or not dot or not column:
            raise FilterError(f"invalid filter {piece!r}: expected column=operator.value")
        if column not in column_types:
            raise FilterError(f"invalid filter {piece!r}: unknown column {column!r}")
        read = _typed(column_types[column])
        if read is None:
            raise FilterError(
                f"invalid filter {piece!r}: cannot filter on a {column_types[column]} column"
            )
        if op != "in" and op not in _COMPARE:
            raise FilterError(
                f"invalid filter {piece!r}: unsupported operator {op!r} "
                "(use eq, neq, lt, lte, gt, gte or in)"
            )
        raw_values = _list_values(value) if op == "in" else [value]
        try:
            values = tuple(read(v) for v in raw_values)
        except (ValueError, ArithmeticError) as exc:
            raise FilterError(
                f"invalid filter {piece!r}: value is not a valid {column_types[column]}"
            ) from exc
        conditions.append(Condition(column, op, values, read))
    return RowFilter(tuple(conditions))
