"""A local stand-in for ToyyibPay that speaks its documented protocol over real HTTP:
form-encoded POSTs to /index.php/api/createBill and /index.php/api/getBillTransactions, JSON
arrays back, an error as a body with `msg`. It records every request it receives."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class FakeToyyibPay:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        # billCode → the transactions getBillTransactions lists for it.
        self.transactions: dict[str, list[dict[str, Any]]] = {}
        # When set, createBill answers this error message instead of a bill.
        self.error: str | None = None
        self._codes = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                assert self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"
                )
                fields = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                name = self.path.rsplit("/", 1)[-1]
                fake.requests.append((name, fields))
                if self.path == "/index.php/api/createBill":
                    if fake.error is not None:
                        self._answer([{"status": "error", "msg": fake.error}])
                    else:
                        self._answer([{"BillCode": f"bill{next(fake._codes):04d}"}])
                elif self.path == "/index.php/api/getBillTransactions":
                    self._answer(fake.transactions.get(fields.get("billCode", ""), []))
                else:
                    self.send_error(404)

            def _answer(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bills(self) -> list[dict[str, str]]:
        return [fields for name, fields in self.requests if name == "createBill"]


def callback_form(
    key: str, order_id: str, bill_code: str, status: str, amount: str, refno: str = "TP001"
) -> dict[str, str]:
    """The form ToyyibPay POSTs to a bill's callback URL, hashed with `key` as it hashes them
    (status '1' paid, '2' pending, '3' failed; `amount` as it reports it)."""
    return {
        "refno": refno,
        "status": status,
        "reason": "Approved" if status == "1" else "Declined",
        "billcode": bill_code,
        "order_id": order_id,
        "amount": amount,
        "transaction_time": "2026-11-30 12:00:00",
        "hash": hashlib.md5(f"{key}{status}{order_id}{refno}ok".encode()).hexdigest(),
    }
