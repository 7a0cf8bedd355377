"""A receipt's text lines as documents: a PDF (fpdf2) and ESC/POS printer bytes (python-escpos).

Both take the lines `receipt_text.render` laid out for the paper's columns, so the printed, the
PDF and the plain-text receipt say the same thing, and add the QR code of the e-receipt link.
"""

from __future__ import annotations

from typing import cast

from escpos.printer import Dummy
from fpdf import FPDF
from PIL.Image import Image
from qrcode import QRCode

# Paper width (mm) → characters per line in Font A (see integrations.md §E).
COLUMNS = {58: 32, 80: 48}
_MARGIN_MM = 3.0
_COURIER_ADVANCE = 0.6  # Courier glyphs are 0.6 em wide
_PT_PER_MM = 72 / 25.4
_QR_MM = 30.0


def escpos(lines: list[str], header_lines: int, url: str) -> bytes:
    """Printer bytes: reset, PC437, the header bold, the lines, the QR code of `url`, feed, cut.

    Built with python-escpos' `Dummy` printer, which keeps the bytes instead of sending them.
    Text goes out in code page 437 (what every ESC/POS printer starts in); a character it lacks
    prints as "?" (the text layout already keeps receipts ASCII apart from e.g. CJK names).
    """
    printer = Dummy()
    printer.hw("INIT")
    printer.charcode("CP437")
    for number, line in enumerate(lines):
        if number == 0 and header_lines:
            printer.set(bold=True)
        printer.text(line + "\n")
        if number + 1 == header_lines:
            printer.set(bold=False)
    printer.set(align="center")
    printer.qr(url, native=True, size=4, center=False)
    printer.set(align="left")
    printer.cut()
    return bytes(printer.output)


def pdf(lines: list[str], header_lines: int, url: str | None, paper_mm: int, title: str) -> bytes:
    """A one-page PDF as long as the receipt, on paper of the printer's width, in Courier.

    The core PDF fonts cover Latin-1 only; other characters are written as "?" rather than
    embedding a font, which keeps the file small.
    """
    columns = COLUMNS[paper_mm]
    char_mm = (paper_mm - 2 * _MARGIN_MM) / columns
    size_pt = char_mm / _COURIER_ADVANCE * _PT_PER_MM
    line_mm = size_pt / _PT_PER_MM * 1.25
    height = 2 * _MARGIN_MM + line_mm * len(lines) + _QR_MM + 4 * line_mm
    document = FPDF(unit="mm", format=(paper_mm, height))
    document.set_title(title)
    document.set_creator("PocketBizz")
    document.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    document.set_auto_page_break(False)
    document.add_page()
    for number, line in enumerate(lines):
        if not line.strip():
            continue  # a blank line is its place on the page (fpdf refuses an empty cell)
        document.set_font("Courier", "B" if number < header_lines else "", size_pt)
        text = line.encode("latin-1", "replace").decode("latin-1")
        document.set_xy(_MARGIN_MM, _MARGIN_MM + number * line_mm)
        document.cell(text=text, h=line_mm)
    top = _MARGIN_MM + len(lines) * line_mm + line_mm
    if url is not None:  # no QR code for a receipt whose link was revoked
        document.image(
            _qr_image(url), x=(paper_mm - _QR_MM) / 2, y=top, w=_QR_MM, h=_QR_MM, link=url
        )
    return bytes(document.output())


def _qr_image(url: str) -> Image:
    code = QRCode(border=1)
    code.add_data(url)
    code.make(fit=True)
    return cast(Image, code.make_image().get_image())
