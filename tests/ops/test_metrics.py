"""/metrics: not public, bounded label sets, and with `serve --workers 2` one scrape reports
every process."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from harness import ServerProcess
from ops.logged_server import LoggedServer

from pocketbizz.gateway.metrics import route_label


def _non_loopback_address() -> str:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    raise AssertionError("this machine has no non-loopback IPv4 address to call from")


@pytest.fixture(scope="module")
def open_to_all(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    """Listening on every interface, without PB_METRICS_TOKEN."""
    proc = LoggedServer(
        owner_dsn, tmp_path_factory.mktemp("m"), env_overrides={"PB_HOST": "0.0.0.0"}
    )
    proc.start()
    yield proc
    proc.stop()


def test_metrics_without_token_answer_only_direct_loopback(open_to_all: LoggedServer) -> None:
    assert httpx.get(f"{open_to_all.url}/metrics").status_code == 200
    remote = f"http://{_non_loopback_address()}:{open_to_all.port}"
    assert httpx.get(f"{remote}/health").status_code == 200  # the server is reachable there
    assert httpx.get(f"{remote}/metrics").status_code == 404
    # A reverse proxy on this host connects from loopback, but says whom it forwards.
    proxied = httpx.get(f"{open_to_all.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 404


def test_metrics_token_is_required_when_set(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    proc = LoggedServer(
        owner_dsn,
        tmp_path_factory.mktemp("t"),
        env_overrides={"PB_HOST": "0.0.0.0", "PB_METRICS_TOKEN": "scrape-me-0123456789"},
    )
    proc.start()
    try:
        remote = f"http://{_non_loopback_address()}:{proc.port}"
        for base in (proc.url, remote):
            assert httpx.get(f"{base}/metrics").status_code == 401
            wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
            right = httpx.get(
                f"{base}/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}
            )
            assert right.status_code == 200
            assert "pocketbizz_http_request_duration_seconds" in right.text
    finally:
        proc.stop()


def _routes(metrics: str) -> set[str]:
    return set(
        re.findall(r'pocketbizz_http_request_duration_seconds_count\{[^}]*route="([^"]*)"', metrics)
    )


def test_unknown_paths_do_not_create_series(server: ServerProcess) -> None:
    with httpx.Client() as http:
        for i in range(30):
            http.get(f"{server.url}/rest/x{i}/t")
            http.get(f"{server.url}/nope{i}")
            http.get(f"{server.url}/auth/v1/made-up-{i}", headers={"apikey": server.anon_key})
            http.get(f"{server.url}/storage/v1/object/b{i}/f", headers={"apikey": server.anon_key})
    routes = _routes(httpx.get(f"{server.url}/metrics").text)
    assert not any(re.search(r"x\d|nope\d|made-up|/b\d", route) for route in routes), routes
    assert {"/{other}", "/auth/v1/{other}", "/storage/v1/object/{bucket}"} <= routes
    assert route_label("/rest/v1/products") == "/rest/v1/{table}"
    assert route_label("/rest/x7/t") == "/{other}"


def _scrape(url: str) -> str:
    # A fresh connection each time, so the kernel may hand it to either worker.
    with httpx.Client() as http:
        return http.get(f"{url}/metrics", headers={"Connection": "close"}).text


def _sample(metrics: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", metrics, re.M):
        if all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    assert wanted is not None
    return total


def _workers(pid: int) -> list[psutil.Process]:
    """The server processes uvicorn spawned (not multiprocessing's resource tracker)."""
    workers = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(child.cmdline())
            if "spawn_main" in cmdline and child.status() != psutil.STATUS_ZOMBIE:
                workers.append(child)
    return workers


def test_metrics_add_up_across_two_workers(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    proc = LoggedServer(
        owner_dsn,
        tmp_path_factory.mktemp("w"),
        env_overrides={"PB_POOL_MIN_SIZE": "2", "PB_POOL_MAX_SIZE": "4"},
        workers=2,
    )
    proc.start()
    try:
        assert proc.proc is not None
        assert len(_workers(proc.proc.pid)) == 2
        # Each worker's pool (min 2 connections) shows in the sum once it has recorded it.
        deadline = time.monotonic() + 20
        size = 0.0
        while time.monotonic() < deadline:
            size = _sample(_scrape(proc.url), "pocketbizz_db_pool_connections", state="size")
            if size >= 4:
                break
            time.sleep(0.2)
        assert size == 4, "both processes' pools are reported"

        def health_count() -> float:
            return _sample(
                _scrape(proc.url),
                "pocketbizz_http_request_duration_seconds_count",
                route="/health",
            )

        before = health_count()  # the start-up polls
        for _ in range(40):
            httpx.get(f"{proc.url}/health", headers={"Connection": "close"})
        # Whichever process answers the scrape, it reports both processes' requests.
        assert [health_count() for _ in range(4)] == [before + 40] * 4

        # A worker killed outright: uvicorn starts another; the dead one's pool leaves the sum
        # and what it served stays counted.
        victim = _workers(proc.proc.pid)[0]
        victim.kill()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(_workers(proc.proc.pid)) == 2 and victim not in _workers(proc.proc.pid):
                scraped = _scrape(proc.url)
                if _sample(scraped, "pocketbizz_db_pool_connections", state="size") == 4:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("the killed worker's pool is still reported")
        assert health_count() >= before + 40
    finally:
        proc.stop()
