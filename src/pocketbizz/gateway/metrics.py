"""Prometheus metrics. Route labels are templates drawn from a fixed vocabulary, so no request
path — least of all an unauthenticated one — can create a new series.

With `serve --workers N` every process writes its samples to files in one per-run directory
(`PROMETHEUS_MULTIPROC_DIR`, set by the CLI) and a scrape of any process reads them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_LATENCY = Histogram(
    "pocketbizz_http_request_duration_seconds",
    "HTTP request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_LIMITED = Counter(
    "pocketbizz_rate_limited_total", "Requests refused by the rate limiter", ["surface"]
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "pocketbizz_rate_limit_storage_errors_total",
    "Requests let through unchecked because the rate-limit storage (Redis) failed",
)
# "livesum": with several processes, the sum over the live ones.
POOL_CONNECTIONS = Gauge(
    "pocketbizz_db_pool_connections",
    "DB pool connections: in_use, size, and requests waiting for one",
    ["state"],
    multiprocess_mode="livesum",
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """The text a scrape returns: this process's registry, or every process's files."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    _forget_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _forget_dead_processes(directory: str) -> None:
    """A worker killed outright never drops its live gauges (uvicorn starts a new one beside
    them): drop those of processes that are gone. Counters and histograms stay: what a dead
    worker served still happened."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)  # zombie: exited
    except psutil.NoSuchProcess:
        return False


def record_pool(in_use: int, size: int, waiting: int) -> None:
    POOL_CONNECTIONS.labels("in_use").set(in_use)
    POOL_CONNECTIONS.labels("size").set(size)
    POOL_CONNECTIONS.labels("waiting").set(waiting)


def forget_this_process() -> None:
    """Drop this process's live gauges from the shared files when it stops."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


_SIMPLE = frozenset({"/health", "/ready", "/metrics"})
_SERVICES = frozenset({"auth/v1", "rest/v1", "storage/v1", "functions/v1", "realtime/v1"})
_AUTH_ENDPOINTS = frozenset(
    {
        "signup",
        "token",
        "user",
        "logout",
        "settings",
        "health",
        ".well-known",
        "admin",
        "recover",
        "verify",
        "otp",
        "resend",
        "magiclink",
        "invite",
    }
)
_STORAGE_OBJECT_KINDS = frozenset(
    {"sign", "public", "list", "list-v2", "info", "upload", "move", "copy", "authenticated"}
)


def route_label(path: str) -> str:
    if path in _SIMPLE:
        return path
    parts = path.strip("/").split("/")
    if len(parts) < 2 or f"{parts[0]}/{parts[1]}" not in _SERVICES:
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
            kind = rest[1] if rest[1] in _STORAGE_OBJECT_KINDS else "{bucket}"
            return f"{service}/object/{kind}"
        return f"{service}/{rest[0]}" if rest and rest[0] in {"bucket", "object"} else service
    if parts[0] == "functions":
        return f"{service}/{{name}}"
    return f"{service}/websocket"
