"""Money shown at the counter, in Decimal: totals, Bank Negara 5-sen cash rounding, change.

The server computes the sale (create_sale); these functions only preview it before the tap on
`Complete sale`, using the same rules, so what the cashier sees is what gets recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

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
    """A cart line. `discount` is the line's own discount in RM (a percentage is turned into
    RM before it gets here); `tax_rate` the SST percent that applies to it (0 when the business
    does not charge SST)."""

    product_id: str
    name: str
    unit_price: Decimal
    quantity: int
    discount: Decimal = Decimal("0.00")
    tax_rate: Decimal = Decimal("0")

    @property
    def gross(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(SEN, rounding=ROUND_HALF_UP)

    @property
    def subtotal(self) -> Decimal:
        """What the line comes to after its discount (create_sale's sale_items.subtotal)."""
        return self.gross - self.discount


@dataclass(frozen=True)
class Due:
    """What the customer pays, as create_sale computes it: the lines' total after their own
    discounts, the sale discount, SST, the rounding of what is left (cash only) and the amount
    due."""

    total: Decimal
    discount: Decimal
    rounding: Decimal
    due: Decimal
    items_discount: Decimal = Decimal("0.00")
    tax: Decimal = Decimal("0.00")

    @property
    def gross(self) -> Decimal:
        """The lines before their own discounts."""
        return self.total + self.items_discount


def discount_shares(subtotals: list[Decimal], discount: Decimal) -> list[Decimal]:
    """The sale discount split over the lines in proportion to their subtotals, to the sen:
    each line's floor, then the missing sen to the largest remainders (ties to the earlier
    line). The server does the same to find each line's tax base."""
    total = sum(subtotals, Decimal("0.00"))
    if not discount or not total:
        return [Decimal("0.00") for _ in subtotals]
    exact = [discount * 100 * s / total for s in subtotals]
    sen = [e.to_integral_value(rounding=ROUND_FLOOR) for e in exact]
    missing = int(discount * 100 - sum(sen))
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - sen[i]), i))
    extra = set(by_remainder[:missing])
    return [((sen[i] + (1 if i in extra else 0)) / 100).quantize(SEN) for i in range(len(exact))]


def line_tax(base: Decimal, rate: Decimal, *, included: bool) -> Decimal:
    if not rate:
        return Decimal("0.00")
    tax = base * rate / (100 + rate) if included else base * rate / 100
    return tax.quantize(SEN, rounding=ROUND_HALF_UP)


def amount_due(
    lines: list[Line],
    *,
    cash: bool,
    cash_rounding: bool,
    discount: Decimal = Decimal("0.00"),
    prices_include_tax: bool = False,
) -> Due:
    subtotals = [line.subtotal for line in lines]
    total = sum(subtotals, Decimal("0.00"))
    # A discount above the total is refused by the server (and the screen says so): no shares.
    shares = discount_shares(subtotals, discount if discount <= total else Decimal("0.00"))
    tax = sum(
        (
            line_tax(sub - share, line.tax_rate, included=prices_include_tax)
            for line, sub, share in zip(lines, subtotals, shares, strict=True)
        ),
        Decimal("0.00"),
    )
    before_rounding = total - discount + (Decimal("0.00") if prices_include_tax else tax)
    due = round_cash(before_rounding) if cash and cash_rounding else before_rounding
    return Due(
        total=total,
        discount=discount,
        rounding=due - before_rounding,
        due=due,
        items_discount=sum((line.discount for line in lines), Decimal("0.00")),
        tax=tax,
    )


def line_discount(gross: Decimal, value: Decimal, *, percent: bool) -> Decimal:
    """A line discount typed as RM or as a percentage of the line, in RM (half a sen up)."""
    if not percent:
        return value
    return (gross * value / 100).quantize(SEN, rounding=ROUND_HALF_UP)


def parse_percent(text: str) -> Decimal | None:
    """A typed percentage, 0 to 100 with at most two decimals ("10", "12.5%"), or None."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        return None
    if not value.is_finite() or not 0 <= value <= 100 or value != value.quantize(SEN):
        return None
    return value


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
