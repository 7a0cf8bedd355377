"""Drill: the server is killed (SIGKILL, no shutdown) in the middle of sales. Nothing it had not
committed survives — no sale without its items, no item without its stock movement, stock equal
to the ledger — and a client retrying with its client_ref ends with exactly one sale."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from drills.support import CALL_TIMEOUT, invariants, new_tenant, sell
from harness import ServerProcess


def _server(owner_dsn: str, data_dir: Path) -> ServerProcess:
    server = ServerProcess(
        owner_dsn, data_dir, env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator"}
    )
    server.start()
    return server


def _kill(server: ServerProcess) -> None:
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(30)
    server.proc = None


def _wait_for_backend(owner_dsn: str, *, waiting: bool, timeout: float = 30) -> None:
    """Until a create_sale statement is blocked on a lock (waiting=True), or none is running."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                """select count(*) filter (where wait_event_type = 'Lock'), count(*)
                     from pg_stat_activity
                    where query like '%%create_sale%%' and pid <> pg_backend_pid()
                      and state = 'active'"""
            ).fetchone()
            assert row is not None
            if (waiting and row[0] > 0) or (not waiting and row[1] == 0):
                return
            time.sleep(0.05)
    raise AssertionError(f"create_sale backend never {'waited' if waiting else 'ended'}")


def test_killed_while_a_sale_is_inside_create_sale(owner_dsn: str, tmp_path: Path) -> None:
    server = _server(owner_dsn, tmp_path)
    try:
        tenant = new_tenant(server, stock=100)
        client_ref = str(uuid.uuid4())
        outcome: list[object] = []
        with psycopg.connect(owner_dsn) as locker:
            # The sale's stock update waits on this row lock: the kill lands mid-transaction.
            locker.execute(
                "select 1 from public.products where business_owner_id = %s and id = %s for update",
                (tenant.id, tenant.product_id),
            )

            def attempt() -> None:
                with httpx.Client() as http:
                    try:
                        outcome.append(sell(http, server, tenant, client_ref, quantity=3))
                    except httpx.HTTPError as exc:
                        outcome.append(exc)

            request = threading.Thread(target=attempt)
            request.start()
            _wait_for_backend(owner_dsn, waiting=True)
            _kill(server)
            request.join(30)
            locker.rollback()
        # The orphaned backend finishes its statement, finds its client gone, rolls back.
        _wait_for_backend(owner_dsn, waiting=False)
        assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError)  # never answered

        state = invariants(owner_dsn, tenant)
        assert state["sales_by_client_ref"] == {}
        assert state["current_stock"] == state["ledger_stock"] == Decimal(100)

        server.start()
        with httpx.Client() as http:
            first = sell(http, server, tenant, client_ref, quantity=3)
            again = sell(http, server, tenant, client_ref, quantity=3)
        assert first.status_code == 200, first.text
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        state = invariants(owner_dsn, tenant)
        assert state["sales_by_client_ref"] == {client_ref: 1}
        assert state["sales_without_items"] == state["items_without_movement"] == 0
        assert state["current_stock"] == state["ledger_stock"] == Decimal(97)
    finally:
        server.stop()


def test_killed_during_a_burst_of_sales_then_every_client_retries(
    owner_dsn: str, tmp_path: Path
) -> None:
    server = _server(owner_dsn, tmp_path)
    try:
        tenant = new_tenant(server, stock=10_000)
        answered: dict[str, str] = {}  # client_ref -> sale id, for sales that got their 200
        sent: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def cashier() -> None:
            with httpx.Client() as http:
                while not stop.is_set():
                    ref = str(uuid.uuid4())
                    with lock:
                        sent.append(ref)
                    try:
                        res = sell(http, server, tenant, ref)
                    except httpx.HTTPError:
                        return  # the server is gone: this cashier's last sale is in doubt
                    assert res.status_code == 200, res.text
                    with lock:
                        answered[ref] = res.json()["id"]

        cashiers = [threading.Thread(target=cashier) for _ in range(6)]
        for thread in cashiers:
            thread.start()
        deadline = time.monotonic() + 30
        while len(answered) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill(server)
        stop.set()
        for thread in cashiers:
            thread.join(CALL_TIMEOUT.read or 20)
        assert len(answered) >= 30
        in_doubt = set(sent) - set(answered)
        assert in_doubt  # each cashier had a sale in flight when the server died

        _wait_for_backend(owner_dsn, waiting=False)
        state = invariants(owner_dsn, tenant)
        assert state["sales_without_items"] == state["items_without_movement"] == 0
        assert state["current_stock"] == state["ledger_stock"]
        assert set(answered) <= set(state["sales_by_client_ref"])  # every answered sale kept

        server.start()
        with httpx.Client() as http:
            for ref in sent:  # every client retries, answered or not (an offline queue replay)
                res = sell(http, server, tenant, ref)
                assert res.status_code == 200, res.text
                if ref in answered:
                    assert res.json()["id"] == answered[ref]
        state = invariants(owner_dsn, tenant)
        assert state["sales_by_client_ref"] == {ref: 1 for ref in sent}
        assert state["sales_without_items"] == state["items_without_movement"] == 0
        assert state["current_stock"] == state["ledger_stock"] == Decimal(10_000 - len(sent))
    finally:
        server.stop()
