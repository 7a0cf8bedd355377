"""The operator's rules: who is an operator, which date ranges and plan edits are valid, the
system-health summary from the process's Prometheus metrics, and the CLI's table.

Definitions of the business figures: docs/OPERATIONS.md (computed in SQL,
`db/definitions/ops/business_metrics.sql`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.metrics_core import Metric
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from pocketbizz.db.database import Identity
from pocketbizz.errors import BadRequest, Forbidden
from pocketbizz.gateway import metrics as gateway_metrics
from pocketbizz.settings import Settings

# As the SQL function refuses (and `analytics` does): two years of days at most.
MAX_RANGE_DAYS = 732
# MAU's window, also the default range.
DEFAULT_RANGE_DAYS = 30
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def require_operator(identity: Identity, settings: Settings) -> None:
    """service_role, or a signed-in operator: anyone else gets 403.

    The claim is set by the server at token issue only (auth/service.py `session_json`), and the
    e-mail must still be listed now, so removing an operator takes effect without waiting for
    their tokens to expire."""
    if identity.role == "service_role":
        return
    if identity.role == "authenticated":
        app_metadata = identity.claims.get("app_metadata")
        email = identity.claims.get("email")
        if (
            isinstance(app_metadata, dict)
            and app_metadata.get("operator") is True
            and isinstance(email, str)
            and email.lower() in settings.operator_email_set
        ):
            return
    raise Forbidden("Only an operator or the service role may see this", code="not_operator")


def parse_range(query: Mapping[str, str], today: date) -> tuple[date, date]:
    """`from` and `to` (YYYY-MM-DD, inclusive); `to` defaults to today, `from` to 29 days
    before `to`."""
    last = _date(query, "to") or today
    first = _date(query, "from") or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if first > last:
        raise BadRequest("from must not be after to", code="invalid_range")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise BadRequest(f"the range is at most {MAX_RANGE_DAYS} days", code="invalid_range")
    return first, last


def _date(query: Mapping[str, str], name: str) -> date | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not _ISO_DATE.fullmatch(raw):
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD", code="invalid_date")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} is not a calendar date: {raw}", code="invalid_date") from None


# --- plans --------------------------------------------------------------------------------------


class PlanChanges(BaseModel):
    """An edit of one plan: only the fields sent change. Prices are exact (Decimal, 2 places)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Strict()] | None = Field(default=None, min_length=1, max_length=100)
    price_monthly: Decimal | None = Field(
        default=None, ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False
    )
    max_active_products: Annotated[int, Strict()] | None = Field(default=None, ge=0)
    max_sales_per_month: Annotated[int, Strict()] | None = Field(default=None, ge=0)
    is_active: Annotated[bool, Strict()] | None = None


# Columns that may not be null: sending null for them is a mistake, not "unlimited".
_NOT_NULL = frozenset({"name", "price_monthly", "is_active"})


def plan_changes(code: str, body: Any) -> dict[str, Any]:
    """The columns to set, validated; BadRequest naming each problem."""
    if not isinstance(body, dict) or not body:
        raise BadRequest("send a JSON object with the fields to change", code="invalid_plan")
    try:
        changes = PlanChanges.model_validate(body)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        raise BadRequest("invalid plan", code="invalid_plan", details=problems) from None
    values = {name: getattr(changes, name) for name in changes.model_fields_set}
    nulls = sorted(name for name in _NOT_NULL if name in values and values[name] is None)
    if nulls:
        raise BadRequest(f"{', '.join(nulls)} cannot be null", code="invalid_plan")
    price = values.get("price_monthly")
    if code == "free" and price is not None and price != 0:
        raise BadRequest("the free plan costs nothing", code="invalid_plan")
    if code != "free" and price is not None and price == 0:
        # Checkout asks ToyyibPay for the price: a paid plan at 0 could never be bought.
        raise BadRequest("a paid plan's price must be above 0", code="invalid_plan")
    return values


def plan_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(row), "price_monthly": format(row["price_monthly"], "f")}


# --- system health ------------------------------------------------------------------------------

SURFACES = ("/auth/v1", "/rest/v1", "/storage/v1", "/functions/v1", "/realtime/v1")


@dataclass
class _Surface:
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    count: float = 0.0
    errors: float = 0.0


def request_summary(families: Iterable[Metric] | None = None) -> dict[str, Any]:
    """Latency quantiles (seconds, from the histogram's buckets, as Prometheus'
    histogram_quantile estimates them) and the 5xx rate per surface, over every request this
    server (all its processes) has answered since it started."""
    surfaces: dict[str, _Surface] = defaultdict(_Surface)
    for family in families if families is not None else _families():
        if family.name != "pocketbizz_http_request_duration_seconds":
            continue
        for sample in family.samples:
            surface = _surface(sample.labels.get("route", ""))
            status = sample.labels.get("status", "")
            if sample.name.endswith("_bucket"):
                surfaces[surface].buckets[float(sample.labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                surfaces[surface].count += sample.value
                if status.startswith("5"):
                    surfaces[surface].errors += sample.value
    rows = []
    total = _Surface()
    for name in sorted(surfaces):
        s = surfaces[name]
        total.count += s.count
        total.errors += s.errors
        for le, n in s.buckets.items():
            total.buckets[le] += n
        rows.append(_surface_json(name, s))
    return {"surfaces": rows, "all": _surface_json("all", total)}


def _surface(route: str) -> str:
    for prefix in SURFACES:
        if route.startswith(prefix):
            return prefix
    return "other"


def _surface_json(name: str, s: _Surface) -> dict[str, Any]:
    return {
        "surface": name,
        "requests": int(s.count),
        "error_rate": s.errors / s.count if s.count else None,
        "p50": _quantile(0.50, s.buckets),
        "p95": _quantile(0.95, s.buckets),
        "p99": _quantile(0.99, s.buckets),
    }


def _quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Linear interpolation inside the bucket holding the q-th request; the largest finite
    bound when it falls in +Inf (Prometheus' rule)."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] == 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in ordered:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower_bound
            if cumulative == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                cumulative - lower_count
            )
        lower_bound, lower_count = bound, cumulative
    return lower_bound


def _families() -> Iterable[Metric]:
    directory = gateway_metrics.multiprocess_dir()
    if directory is None:
        return REGISTRY.collect()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    return registry.collect()


# --- the CLI's table ---------------------------------------------------------------------------


def metrics_table(figures: Mapping[str, Any], first: date, last: date) -> str:
    """The figures of GET /functions/v1/admin/metrics as a two-column table."""

    def fraction(value: Any) -> str:
        return "n/a" if value is None else f"{float(value):.2%}"

    rows = [
        ("range", f"{first.isoformat()} .. {last.isoformat()}"),
        ("tenants", str(figures["tenants"]["total"])),
        ("tenants paid", str(figures["tenants"]["paid"])),
        ("MRR (RM)", str(figures["mrr"])),
        ("MAU", str(figures["mau"])),
        ("retention D1", fraction(figures["retention"]["d1"])),
        ("retention D7", fraction(figures["retention"]["d7"])),
        ("retention D30", fraction(figures["retention"]["d30"])),
        ("churn", fraction(figures["churn_rate"])),
        ("free → paid", fraction(figures["conversion_rate"])),
    ]
    rows += [(f"DAU {d['date']}", str(d["count"])) for d in figures["dau"]]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
