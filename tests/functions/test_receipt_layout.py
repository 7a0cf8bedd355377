"""The receipt layout on its own: columns, wrapping, wide characters, optional lines."""

from __future__ import annotations

from decimal import Decimal as D

from pocketbizz.functions.receipt_text import ReceiptData, ReceiptItem, cells, render


def _receipt(**changes: object) -> ReceiptData:
    values: dict[str, object] = {
        "business_name": "Gerai Nasi Lemak Mak Cik Kiah Yang Sangat Terkenal",
        "sale_number": "INV-2026-000042",
        "local_time": "25/11/2026 08:15",
        "channel": "walk-in",
        "status": "completed",
        "total": D("12.40"),
        "discount": D("0"),
        "tax": D("0"),
        "rounding": D("0"),
        "final": D("12.40"),
        "payment_method": "ewallet",
        "payment_status": "paid",
        "items": [
            ReceiptItem("奶茶 Teh Tarik Kaw Kaw Special", D("2.000"), D("3.20"), D("0"), D("6.40")),
            ReceiptItem("Nasi Lemak", D("1.500"), D("4.00"), D("0"), D("6.00")),
        ],
    }
    values.update(changes)
    return ReceiptData(**values)  # type: ignore[arg-type]


def test_every_line_fits_its_paper_width() -> None:
    for width in (32, 48):
        lines = render(_receipt(), width)
        assert all(cells(line) <= width for line in lines), lines
        assert lines[-1].strip() == "Thank you! Terima kasih!"


def test_optional_lines_appear_only_when_they_apply() -> None:
    plain = "\n".join(render(_receipt(), 32))
    for absent in ("SST", "Rounding", "Discount", "Channel", "VOID", "Reg. No"):
        assert absent not in plain
    assert "1.5 x 4.00" in plain and "E-wallet" in plain
    full = "\n".join(
        render(
            _receipt(
                discount=D("0.40"),
                tax=D("0.72"),
                rounding=D("0.03"),
                final=D("12.75"),
                payment_method="cash",
                payment_status="pending",
                status="void",
                channel="delivery",
                registration_number="SSM 123",
                prices_include_tax=False,
            ),
            48,
        )
    )
    for present in (
        "Discount",
        "-0.40",
        "SST",
        "0.72",
        "Total before rounding",
        "12.72",
        "Rounding",
        "0.03",
        "TOTAL (RM)",
        "12.75",
        "Cash (pending)",
        "*** VOIDED ***",
        "Delivery",
        "Reg. No: SSM 123",
    ):
        assert present in full, present
