"""Prometheus metrics. Route labels are templates, so label cardinality stays bounded."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_LATENCY = Histogram(
    "pocketbizz_http_request_duration_seconds",
    "HTTP request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_LIMITED = Counter(
    "pocketbizz_rate_limited_total", "Requests refused by the rate limiter", ["surface"]
)

_SIMPLE = {"/health", "/ready", "/metrics"}
_AUTH_ENDPOINTS = {"signup", "token", "user", "logout", "settings", "health", ".well-known"}


def route_label(path: str) -> str:
    if path in _SIMPLE:
        return path
    parts = path.strip("/").split("/")
    if len(parts) < 2:
        return "/{other}"
    service = f"/{parts[0]}/{parts[1]}"
    rest = parts[2:]
    if parts[0] == "auth":
        name = rest[0] if rest and rest[0] in _AUTH_ENDPOINTS else "{other}"
        return f"{service}/{name}"
    if parts[0] == "rest":
        if rest and rest[0] == "rpc":
            return f"{service}/rpc/{{function}}"
        return f"{service}/{{table}}" if rest and rest[0] else f"{service}/"
    if parts[0] == "storage":
        if rest and rest[0] == "object" and len(rest) > 1:
            kind = (
                rest[1]
                if rest[1]
                in {"sign", "public", "list", "info", "upload", "move", "copy", "authenticated"}
                else "{bucket}"
            )
            return f"{service}/object/{kind}"
        return f"{service}/{rest[0]}" if rest and rest[0] in {"bucket", "object"} else service
    if parts[0] == "functions":
        return f"{service}/{{name}}"
    if parts[0] == "realtime":
        return f"{service}/websocket"
    return "/{other}"
