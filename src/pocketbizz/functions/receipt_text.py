"""Plain-text receipt layout for thermal printers: 32 columns (58 mm) or 48 columns (80 mm).

Pure functions over already-loaded values, so the layout can be checked without a database.
Widths count terminal cells: a CJK character takes two, as it does on the printer.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

WIDTHS = (32, 48)

PAYMENT_METHODS = {
    "cash": "Cash",
    "card": "Card",
    "ewallet": "E-wallet",
    "qr": "QR",
    "bank_transfer": "Bank transfer",
    "toyyibpay": "ToyyibPay (FPX)",
    "credit": "Credit",
    "other": "Other",
}
CHANNELS = {"walk-in": "Walk-in", "online": "Online", "delivery": "Delivery"}
# Printers speak ASCII (code page 437); keep typography they would garble out of the text.
_ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})


@dataclass(frozen=True)
class ReceiptItem:
    name: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    subtotal: Decimal  # after the line discount


@dataclass(frozen=True)
class ReceiptData:
    business_name: str
    sale_number: str
    local_time: str
    channel: str
    status: str
    total: Decimal  # sum of line subtotals
    discount: Decimal  # the sale-level discount
    tax: Decimal
    rounding: Decimal
    final: Decimal
    payment_method: str
    payment_status: str
    prices_include_tax: bool = False
    sst_enabled: bool = False  # the business is SST-registered and charges it
    registration_number: str | None = None
    tax_number: str | None = None
    phone: str | None = None
    address: Any = None  # jsonb: a string, a list of lines, or an object of parts
    footer: str | None = None  # the business's own words under the receipt (Settings)
    items: list[ReceiptItem] = field(default_factory=list)


def cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap by cells; a word longer than the line is cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if cells(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for ch in word:
            if cells(current + ch) > width:
                lines.append(current)
                current = ""
            current += ch
    if current:
        lines.append(current)
    return lines or [""]


def center(text: str, width: int) -> list[str]:
    return [" " * ((width - cells(line)) // 2) + line for line in wrap(text, width)]


def pair(left: str, right: str, width: int) -> list[str]:
    """`left ........ right` on one line, or left wrapped and right alone on the last line."""
    gap = width - cells(left) - cells(right)
    if gap >= 1:
        return [left + " " * gap + right]
    return [*wrap(left, width), " " * (width - cells(right)) + right]


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def quantity(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def address_lines(address: Any) -> list[str]:
    if not address:
        return []
    if isinstance(address, str):
        return [address]
    if isinstance(address, list):
        return [str(part) for part in address if part]
    if isinstance(address, dict):
        known = ["line1", "line2", "line3"]
        lines = [str(address[k]) for k in known if address.get(k)]
        city = " ".join(str(address[k]) for k in ("postcode", "city") if address.get(k))
        lines += [city] if city else []
        lines += [str(address[k]) for k in ("state", "country") if address.get(k)]
        handled = {*known, "postcode", "city", "state", "country"}
        lines += [str(v) for k, v in address.items() if k not in handled and isinstance(v, str)]
        return lines
    return [str(address)]


def render(receipt: ReceiptData, width: int) -> list[str]:
    rule = "-" * width
    lines: list[str] = []
    lines += center(receipt.business_name or "RECEIPT", width)
    for part in address_lines(receipt.address):
        lines += center(part, width)
    if receipt.registration_number:
        lines += center(f"Reg. No: {receipt.registration_number}", width)
    if receipt.phone:
        lines += center(f"Tel: {receipt.phone}", width)
    # SST lines only for a registered business (or a sale that carried SST when it was one):
    # an unregistered micro-business must not look as if it charged tax.
    charges_sst = receipt.sst_enabled or bool(receipt.tax)
    if charges_sst and receipt.tax_number:
        lines += center(f"SST No: {receipt.tax_number}", width)
    lines.append(rule)
    lines += pair("Receipt:", receipt.sale_number, width)
    lines += pair("Date:", receipt.local_time, width)
    if receipt.channel != "walk-in":
        lines += pair("Channel:", CHANNELS.get(receipt.channel, receipt.channel), width)
    if receipt.status == "void":
        lines += center("*** VOIDED ***", width)
    lines.append(rule)
    for item in receipt.items:
        lines += wrap(item.name, width)
        gross = item.subtotal + item.discount
        lines += pair(
            f"  {quantity(item.quantity)} x {money(item.unit_price)}", money(gross), width
        )
        if item.discount:
            lines += pair("  Discount", money(-item.discount), width)
    lines.append(rule)
    lines += pair("Subtotal", money(receipt.total), width)
    if receipt.discount:
        lines += pair("Discount", money(-receipt.discount), width)
    if charges_sst:
        label = "SST (included)" if receipt.prices_include_tax else "SST"
        lines += pair(label, money(receipt.tax), width)
    if receipt.rounding or receipt.payment_method == "cash":
        # Bank Negara rounding applies to the bill total (cash tenders): the receipt shows the
        # total before it, the adjustment as its own line, and the total after it.
        lines += pair("Total before rounding", money(receipt.final - receipt.rounding), width)
        lines += pair("Rounding adj.", money(receipt.rounding), width)
    lines += pair("TOTAL (RM)", money(receipt.final), width)
    method = PAYMENT_METHODS.get(receipt.payment_method, receipt.payment_method)
    if receipt.payment_status != "paid":
        method = f"{method} ({receipt.payment_status})"
    lines += pair("Payment:", method, width)
    lines.append(rule)
    lines += center("Thank you! Terima kasih!", width)
    if receipt.footer and receipt.footer.strip():
        lines.append("")
        for paragraph in receipt.footer.strip().splitlines():
            lines += center(paragraph, width)
    return [line.translate(_ASCII).rstrip() for line in lines]
