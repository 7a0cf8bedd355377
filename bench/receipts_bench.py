"""Issue 10's receipt numbers: the time to render one sale's receipt as text, ESC/POS bytes and
a PDF, at 58 mm (32 columns) and 80 mm (48 columns), in this process (no database, no HTTP: the
receipt function's rendering step alone). `python -m bench.receipts_bench [lines] [rounds]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal

from pocketbizz.functions.receipt_text import ReceiptData, ReceiptItem, render, wrap
from pocketbizz.receipts import documents

URL = "https://pocketbizz.example/r/Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"


def sample(lines: int) -> ReceiptData:
    """A cash sale of `lines` products with a discount and a rounding line, not SST-registered."""
    items = [
        ReceiptItem(
            name=f"Kuih lapis pandan {i + 1}",
            quantity=Decimal(1 + i % 3),
            unit_price=Decimal("2.35"),
            discount=Decimal(0),
            subtotal=Decimal("2.35") * (1 + i % 3),
        )
        for i in range(lines)
    ]
    total = sum((item.subtotal for item in items), Decimal(0))
    return ReceiptData(
        business_name="Kedai Kek Aminah",
        sale_number="INV-202611-00042",
        local_time="2026-11-30 14:05",
        channel="walk-in",
        status="completed",
        total=total,
        discount=Decimal("1.00"),
        tax=Decimal(0),
        rounding=Decimal("0.02"),
        final=total - Decimal("1.00") + Decimal("0.02"),
        payment_method="cash",
        payment_status="paid",
        registration_number="202301012345 (1500000-X)",
        phone="03-1234 5678",
        address="12, Jalan Bunga Raya, 50000 Kuala Lumpur",
        items=items,
    )


def _time(render_once: Callable[[], bytes], rounds: int) -> tuple[float, float]:
    for _ in range(3):
        render_once()  # warm: fonts, QR tables, imports
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        render_once()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def renderers(receipt: ReceiptData, paper: int) -> dict[str, Callable[[], bytes]]:
    """Each format as the receipt function makes it, from the sale's data to the bytes."""
    columns = documents.COLUMNS[paper]
    header = len(wrap(receipt.business_name, columns))
    return {
        "text": lambda: ("\n".join(render(receipt, columns)) + "\n").encode(),
        "escpos": lambda: documents.escpos(render(receipt, columns), header, URL),
        "pdf": lambda: documents.pdf(render(receipt, columns), header, URL, paper, "Resit"),
    }


def main(lines: int = 10, rounds: int = 200) -> list[str]:
    receipt = sample(lines)
    out = []
    for paper, columns in documents.COLUMNS.items():
        printed = len(render(receipt, columns))
        for kind, render_once in renderers(receipt, paper).items():
            # The PDF is slow enough that a tenth of the rounds says as much.
            median, p95 = _time(render_once, rounds if kind != "pdf" else max(rounds // 10, 10))
            out.append(
                f"receipt {kind} {paper} mm ({lines} sale lines, {printed} printed lines): "
                f"median {median:.2f} ms, p95 {p95:.2f} ms, {len(render_once())} bytes"
            )
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for line in main(*args):
        print(line, flush=True)
