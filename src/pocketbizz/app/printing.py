"""Receipts to a thermal printer on the shop's network: ESC/POS over raw TCP (port 9100).

The printer sits next to the device, so the app's own process opens the socket (a browser
could not). The receipt's words come from the backend's `receipt` function (32 columns for
58 mm paper, 48 for 80 mm); this module frames them as ESC/POS until the backend renders
ESC/POS itself. A printer that is off or unreachable is a `PrinterUnavailable` with a message
for the cashier, after at most `SEND_TIMEOUT` seconds — never a frozen screen.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

INIT = b"\x1b@"  # ESC @: reset the printer
CODE_PAGE_437 = b"\x1bt\x00"  # ESC t 0: PC437, plain ASCII for Malay and English
FEED_AND_CUT = b"\x1bd\x06\x1dV\x00"  # ESC d 6: feed 6 lines (past the cutter); GS V 0: cut
COLUMNS = {58: 32, 80: 48}  # Font A columns per paper width
DEFAULT_PORT = 9100
# Long enough for a printer on a busy shop Wi-Fi, short enough that the cashier is not kept
# waiting on one that is off.
SEND_TIMEOUT = 5.0


class PrinterUnavailable(Exception):
    """The printer could not be reached or did not take the receipt."""


@dataclass(frozen=True)
class PrinterSettings:
    host: str
    port: int = DEFAULT_PORT
    paper_mm: int = 58

    @property
    def columns(self) -> int:
        return COLUMNS[self.paper_mm]

    @classmethod
    def from_profile(cls, settings: dict[str, Any]) -> PrinterSettings | None:
        """The printer kept in the business profile's settings, if one is configured."""
        printer = settings.get("printer") or {}
        if not printer.get("host"):
            return None
        paper = int(printer.get("paper_mm") or 58)
        return cls(
            host=str(printer["host"]),
            port=int(printer.get("port") or DEFAULT_PORT),
            paper_mm=paper if paper in COLUMNS else 58,
        )


def escpos(lines: list[str]) -> bytes:
    """The receipt's lines as one ESC/POS job: reset, code page, text, feed and cut."""
    text = "".join(f"{line}\n" for line in lines)
    # The backend already keeps receipts ASCII; anything else would print as garbage.
    return INIT + CODE_PAGE_437 + text.encode("ascii", "replace") + FEED_AND_CUT


async def send(printer: PrinterSettings, job: bytes) -> None:
    where = f"{printer.host}:{printer.port}"
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            _, writer = await asyncio.open_connection(printer.host, printer.port)
            try:
                writer.write(job)
                await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()
    except TimeoutError as exc:
        raise PrinterUnavailable(f"the printer at {where} did not answer in time") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PrinterUnavailable(f"cannot reach the printer at {where} ({reason})") from exc
