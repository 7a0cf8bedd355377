"""Selling without the API: a local SQLite file per signed-in user keeps the last catalogue,
the business profile as last seen (its totals, SST, cash rounding and time zone), and the
sales not yet recorded by the server, each with its `client_ref` and the time it was made.

Every sale is written here before it is sent (an outbox), so a crash or a dropped connection
cannot lose it; sales are sent oldest first, and the server's idempotency on `client_ref`
makes a sale sent twice (say, the answer was lost) count once. A sale the server refuses stays
here, marked refused with the server's reason, until the user discards it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
create table if not exists catalogue (
    id    text primary key,
    row   text not null,   -- the product row as the API returned it (JSON)
    name  text not null
);
create table if not exists business_profile (
    id    integer primary key check (id = 1),  -- one row: the user's business
    row   text not null    -- the profile row as the API returned it (JSON)
);
create table if not exists outbox (
    seq            integer primary key autoincrement,  -- the order the sales were made in
    client_ref     text not null unique,
    items          text not null,   -- JSON, as create_sale takes them
    payment_method text not null,
    channel        text not null,
    discount       text not null default '0',  -- the sale discount, a decimal string
    customer_id    text,
    sold_at        text not null,   -- ISO 8601 with offset: when the sale happened
    deferred       integer not null default 0,  -- 1 once a send failed for want of the API
    refused        text             -- the server's reason, when it refused the sale
);
"""


@dataclass(frozen=True)
class QueuedSale:
    seq: int
    client_ref: str
    items: list[dict[str, Any]]
    payment_method: str
    channel: str
    discount: str
    customer_id: str | None
    sold_at: str
    deferred: bool
    refused: str | None


class OfflineStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One short connection per operation: the file may be shared by two tabs of one user.
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:  # commits, or rolls back on an exception
                yield db
        finally:
            db.close()

    # -- catalogue -----------------------------------------------------------------------
    def save_catalogue(self, rows: list[dict[str, Any]]) -> None:
        with self._db() as db:
            db.execute("delete from catalogue")
            db.executemany(
                "insert into catalogue (id, row, name) values (?, ?, ?)",
                [(str(r["id"]), json.dumps(r), str(r["name"])) for r in rows],
            )

    def catalogue(self) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("select row from catalogue order by name").fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    # -- business profile ----------------------------------------------------------------
    def save_profile(self, row: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute(
                "insert into business_profile (id, row) values (1, ?)"
                " on conflict (id) do update set row = excluded.row",
                (json.dumps(row),),
            )

    def profile(self) -> dict[str, Any] | None:
        """The business profile last read online; None before the first."""
        with self._db() as db:
            found = db.execute("select row from business_profile where id = 1").fetchone()
        return None if found is None else dict(json.loads(found[0]))

    # -- outbox --------------------------------------------------------------------------
    def enqueue(
        self,
        *,
        client_ref: str,
        items: list[dict[str, Any]],
        payment_method: str,
        channel: str,
        discount: str,
        customer_id: str | None,
        sold_at: str,
    ) -> None:
        with self._db() as db:
            db.execute(
                "insert into outbox (client_ref, items, payment_method, channel, discount, "
                "customer_id, sold_at) values (?, ?, ?, ?, ?, ?, ?)",
                (
                    client_ref,
                    json.dumps(items),
                    payment_method,
                    channel,
                    discount,
                    customer_id,
                    sold_at,
                ),
            )

    def pending(self) -> list[QueuedSale]:
        """Sales not yet recorded (refused ones included), oldest first."""
        with self._db() as db:
            rows = db.execute(
                "select seq, client_ref, items, payment_method, channel, discount, customer_id, "
                "sold_at, deferred, refused from outbox order by seq"
            ).fetchall()
        return [
            QueuedSale(
                seq=r[0],
                client_ref=r[1],
                items=list(json.loads(r[2])),
                payment_method=r[3],
                channel=r[4],
                discount=r[5],
                customer_id=r[6],
                sold_at=r[7],
                deferred=bool(r[8]),
                refused=r[9],
            )
            for r in rows
        ]

    def mark_deferred(self, client_ref: str) -> None:
        with self._db() as db:
            db.execute("update outbox set deferred = 1 where client_ref = ?", (client_ref,))

    def mark_refused(self, client_ref: str, reason: str) -> None:
        with self._db() as db:
            db.execute("update outbox set refused = ? where client_ref = ?", (reason, client_ref))

    def retry(self, client_ref: str) -> None:
        with self._db() as db:
            db.execute("update outbox set refused = null where client_ref = ?", (client_ref,))

    def remove(self, client_ref: str) -> None:
        with self._db() as db:
            db.execute("delete from outbox where client_ref = ?", (client_ref,))
