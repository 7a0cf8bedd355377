"""The test oracle of the sale money rules, mirrored from `create_sale`
(src/pocketbizz/db/definitions/sales/create_sale.sql, which is authoritative).

The tests compute a sale's figures here, independently of the SQL, and compare. Every amount
is a `Decimal` rounded to the sen, half away from zero (as PostgreSQL's `round(numeric, 2)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

SEN = Decimal("0.01")
ZERO = Decimal("0.00")


def to_sen(value: Decimal | Fraction) -> Decimal:
    """Round to 2 decimals, half away from zero (amounts here are never negative)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(SEN, rounding=ROUND_HALF_UP)


def cash_rounding(amount: Decimal) -> Decimal:
    """The adjustment that brings a cash total to 5 sen (Bank Negara: 1-2 down, 3-4 up,
    6-7 down, 8-9 up)."""
    sen = int(amount * 100)
    last = sen % 5
    return Decimal(-last if last <= 2 else 5 - last) / 100


@dataclass(frozen=True)
class Line:
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal = ZERO
    tax_rate: Decimal = ZERO  # percent; 0 when SST is off

    @property
    def subtotal(self) -> Decimal:
        return to_sen(self.quantity * self.unit_price) - self.discount


@dataclass(frozen=True)
class SaleAmounts:
    line_subtotals: list[Decimal]
    line_taxes: list[Decimal]
    total_amount: Decimal
    discount_amount: Decimal
    tax_amount: Decimal
    rounding_amount: Decimal
    final_amount: Decimal


def discount_shares(subtotals: Sequence[Decimal], discount: Decimal) -> list[Decimal]:
    """The sale discount split over lines by subtotal, largest remainder first (ties: the
    earlier line), so the shares add up to the discount exactly."""
    total = sum(subtotals, ZERO)
    if discount == 0 or total == 0:
        return [ZERO for _ in subtotals]
    exact = [Fraction(discount * 100) * Fraction(s) / Fraction(total) for s in subtotals]
    floors = [e.numerator // e.denominator for e in exact]
    missing = int(discount * 100) - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    bonus = set(order[:missing])
    return [Decimal(f + (1 if i in bonus else 0)) / 100 for i, f in enumerate(floors)]


def price_sale(
    lines: Sequence[Line],
    discount: Decimal = ZERO,
    *,
    prices_include_tax: bool = False,
    cash_rounding_applies: bool = False,
) -> SaleAmounts:
    """Every amount of a sale, as create_sale stores it."""
    subtotals = [line.subtotal for line in lines]
    total = sum(subtotals, ZERO)
    taxes = []
    for line, subtotal, share in zip(
        lines, subtotals, discount_shares(subtotals, discount), strict=True
    ):
        base = subtotal - share
        rate = line.tax_rate
        if rate == 0:
            taxes.append(ZERO)
        elif prices_include_tax:
            taxes.append(to_sen(Fraction(base) * Fraction(rate) / (100 + Fraction(rate))))
        else:
            taxes.append(to_sen(Fraction(base) * Fraction(rate) / 100))
    tax = sum(taxes, ZERO)
    before_rounding = total - discount + (ZERO if prices_include_tax else tax)
    rounding = cash_rounding(before_rounding) if cash_rounding_applies else ZERO
    return SaleAmounts(
        line_subtotals=subtotals,
        line_taxes=taxes,
        total_amount=total,
        discount_amount=discount,
        tax_amount=tax,
        rounding_amount=rounding,
        final_amount=before_rounding + rounding,
    )
