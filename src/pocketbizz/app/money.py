"""Money shown at the counter, in Decimal: totals, Bank Negara 5-sen cash rounding, change.

The server computes the sale (create_sale); these functions only preview it before the tap on
`Complete sale`, using the same rules, so what the cashier sees is what gets recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

SEN = Decimal("0.01")
FIVE_SEN = Decimal("0.05")


def to_money(value: object) -> Decimal:
    """A JSON number or string from the API as an exact amount in sen."""
    return Decimal(str(value)).quantize(SEN, rounding=ROUND_HALF_UP)


def round_cash(total: Decimal) -> Decimal:
    """Nearest 5 sen: 1-2 sen down, 3-4 up, 6-7 down, 8-9 up (a half never occurs)."""
    return (total / FIVE_SEN).quantize(Decimal(1), rounding=ROUND_HALF_UP) * FIVE_SEN


def format_rm(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}RM {abs(amount):,.2f}"


@dataclass(frozen=True)
class Line:
    product_id: str
    name: str
    unit_price: Decimal
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(SEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Due:
    """What the customer pays: the lines' total, the sale discount, the rounding of what is
    left (cash only) and the amount due."""

    total: Decimal
    discount: Decimal
    rounding: Decimal
    due: Decimal


def amount_due(
    lines: list[Line], *, cash: bool, cash_rounding: bool, discount: Decimal = Decimal("0.00")
) -> Due:
    total = sum((line.subtotal for line in lines), Decimal("0.00"))
    before_rounding = total - discount
    due = round_cash(before_rounding) if cash and cash_rounding else before_rounding
    return Due(total=total, discount=discount, rounding=due - before_rounding, due=due)


def parse_amount(text: str) -> Decimal | None:
    """A typed amount ("10", "10.5", "RM 10.50"), or None when it is not one."""
    cleaned = text.strip().upper().removeprefix("RM").strip().replace(",", "")
    try:
        amount = Decimal(cleaned)
    except ArithmeticError:
        return None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(SEN):
        return None
    return amount
