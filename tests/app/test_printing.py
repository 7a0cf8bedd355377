"""Printing a sale's receipt from the app's process to a network printer (ESC/POS over raw
TCP), with a local TCP server standing in for the printer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import free_port

from pocketbizz.app.api import Backend
from pocketbizz.app.config import AppConfig
from pocketbizz.app.printing import PrinterSettings, PrinterUnavailable, escpos, send


def decode_escpos(job: bytes) -> tuple[list[bytes], str]:
    """The commands and the printed text of a job: a small decoder written from the ESC/POS
    command table (ESC @, ESC t n, ESC d n, GS V m), independent of the app's encoder."""
    commands: list[bytes] = []
    text = bytearray()
    i = 0
    while i < len(job):
        if job[i : i + 2] == b"\x1b@":
            commands.append(job[i : i + 2])
            i += 2
        elif job[i : i + 2] in (b"\x1bt", b"\x1bd", b"\x1dV"):
            commands.append(job[i : i + 3])
            i += 3
        else:
            assert job[i] >= 0x20 or job[i] == 0x0A, f"unexpected control byte {job[i]:#x}"
            text.append(job[i])
            i += 1
    return commands, text.decode("ascii")


@dataclass
class FakePrinter:
    """A raw TCP 9100 listener that keeps every job it receives."""

    port: int = 0
    jobs: list[bytes] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.jobs.append(await reader.read())  # the app closes the socket after the job
        writer.close()
        self.received.set()


@pytest.fixture
async def printer() -> AsyncIterator[FakePrinter]:
    fake = FakePrinter()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    yield fake
    server.close()
    await server.wait_closed()


@pytest.fixture
def sold(make_user: Callable[..., Any]) -> tuple[Any, dict[str, Any]]:
    """A tenant with a business name, a product and one cash sale, made through the API."""
    user = make_user()
    client = user.client
    client.table("business_profiles").update({"business_name": "Kedai Roti Aminah"}).eq(
        "business_owner_id", user.id
    ).execute()
    product = (
        client.table("products")
        .insert({"sku": "KAYA", "name": "Roti Kaya", "sale_price": "3.20"})
        .execute()
        .data[0]
    )
    client.rpc(
        "adjust_stock", {"product_id": product["id"], "counted_quantity": 10, "reason": "count"}
    ).execute()
    sale = (
        client.rpc(
            "create_sale",
            {"items": [{"product_id": product["id"], "quantity": 3}], "payment_method": "cash"},
        )
        .execute()
        .data
    )
    return user, sale


async def _backend(server: Any, user: Any) -> Backend:
    backend = await Backend.connect(AppConfig(server.url, server.anon_key))
    await backend.sign_in(user.email, user.password)
    return backend


@pytest.mark.parametrize(("paper_mm", "columns"), [(58, 32), (80, 48)])
async def test_receipt_reaches_the_printer(
    server: Any,
    sold: tuple[Any, dict[str, Any]],
    printer: FakePrinter,
    paper_mm: int,
    columns: int,
) -> None:
    user, sale = sold
    backend = await _backend(server, user)
    settings = PrinterSettings(host="127.0.0.1", port=printer.port, paper_mm=paper_mm)
    lines = await backend.receipt_lines(sale["id"], settings.columns)
    await send(settings, escpos(lines))
    await asyncio.wait_for(printer.received.wait(), 5)

    commands, text = decode_escpos(printer.jobs[0])
    assert commands == [b"\x1b@", b"\x1bt\x00", b"\x1bd\x06", b"\x1dV\x00"]
    assert printer.jobs[0].startswith(b"\x1b@") and printer.jobs[0].endswith(b"\x1dV\x00")
    printed = text.splitlines()
    assert printed == lines
    assert max(len(line) for line in printed) <= columns
    assert any(len(line) == columns for line in printed)  # the rules span the paper
    assert "Kedai Roti Aminah" in text and sale["sale_number"] in text
    assert "Roti Kaya" in text and "9.60" in text  # 3 x 3.20


async def test_a_printer_that_is_off_gives_a_clear_message(
    server: Any, sold: tuple[Any, dict[str, Any]]
) -> None:
    user, sale = sold
    backend = await _backend(server, user)
    closed = free_port()  # nothing listens there
    settings = PrinterSettings(host="127.0.0.1", port=closed)
    lines = await backend.receipt_lines(sale["id"], settings.columns)
    with pytest.raises(
        PrinterUnavailable, match=rf"cannot reach the printer at 127\.0\.0\.1:{closed}"
    ):
        await send(settings, escpos(lines))


def test_printer_settings_from_the_business_profile() -> None:
    assert PrinterSettings.from_profile({}) is None
    assert PrinterSettings.from_profile({"printer": {"host": ""}}) is None
    printer = PrinterSettings.from_profile({"printer": {"host": "10.0.0.9", "paper_mm": 80}})
    assert printer == PrinterSettings(host="10.0.0.9", port=9100, paper_mm=80)
    assert printer is not None and printer.columns == 48
