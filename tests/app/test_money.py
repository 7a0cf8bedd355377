"""What the Sell screen previews: Bank Negara 5-sen rounding of cash totals, change, amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pocketbizz.app.money import Line, amount_due, format_rm, parse_amount, round_cash


@pytest.mark.parametrize(
    ("total", "rounded"),
    [
        ("82.01", "82.00"),
        ("82.02", "82.00"),
        ("82.03", "82.05"),
        ("82.04", "82.05"),
        ("82.05", "82.05"),
        ("82.06", "82.05"),
        ("82.07", "82.05"),
        ("82.08", "82.10"),
        ("82.09", "82.10"),
        ("82.10", "82.10"),
    ],
)
def test_cash_rounds_to_five_sen(total: str, rounded: str) -> None:
    assert round_cash(Decimal(total)) == Decimal(rounded)


def test_amount_due_rounds_cash_only_when_the_business_does() -> None:
    lines = [Line("p1", "Roti Canai", Decimal("2.51"), 2)]
    cash = amount_due(lines, cash=True, cash_rounding=True)
    assert (cash.total, cash.rounding, cash.due) == (
        Decimal("5.02"),
        Decimal("-0.02"),
        Decimal("5.00"),
    )
    card = amount_due(lines, cash=False, cash_rounding=True)
    assert (card.rounding, card.due) == (Decimal("0.00"), Decimal("5.02"))
    exact = amount_due(lines, cash=True, cash_rounding=False)
    assert exact.due == Decimal("5.02")


def test_typed_amounts() -> None:
    assert parse_amount("10") == Decimal("10")
    assert parse_amount(" RM 1,250.50 ") == Decimal("1250.50")
    assert parse_amount("1.005") is None  # no fractions of a sen
    assert parse_amount("-1") is None
    assert parse_amount("abc") is None
    assert parse_amount("NaN") is None
    assert format_rm(Decimal("-0.02")) == "-RM 0.02"
    assert format_rm(Decimal("1250.5")) == "RM 1,250.50"
