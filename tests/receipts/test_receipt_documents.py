"""Receipts as documents through the official client: text, PDF and ESC/POS for 58 and 80 mm,
the public e-receipt page behind the QR code, its revocation, and tenant isolation."""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import pytest
from harness import ServerProcess
from receipts.escpos_decoder import decode
from supabase_functions.errors import FunctionsHttpError


def sell(user: Any, *, registered: bool) -> dict[str, Any]:
    """A cash sale of RM 6.62 (rounded to 6.60) by a business set up through the client."""
    client = user.client
    client.table("business_profiles").update(
        {
            "business_name": "Kedai Roti Aminah",
            "registration_number": "202301234567",
            "tax_number": "W10-1808-32000123",
            "phone": "012-3456789",
            "address": {"line1": "12 Jalan Bunga", "postcode": "50000", "city": "Kuala Lumpur"},
            "sst_enabled": registered,
            "sst_rate": 6,
            "negative_stock_policy": "allow",
        }
    ).eq("business_owner_id", user.id).execute()
    roti = (
        client.table("products")
        .insert(
            {"sku": f"ROTI-{uuid4().hex[:8]}", "name": "Roti Canai Telur", "sale_price": "2.12"}
        )
        .execute()
    )
    kopi = (
        client.table("products")
        .insert({"sku": f"KOPI-{uuid4().hex[:8]}", "name": "Kopi O", "sale_price": "2.25"})
        .execute()
    )
    items = [
        {"product_id": roti.data[0]["id"], "quantity": 2},
        {"product_id": kopi.data[0]["id"], "quantity": 1},
    ]
    sale = client.rpc("create_sale", {"items": items, "payment_method": "cash"}).execute()
    return dict(sale.data)


def fetch(user: Any, sale_id: str, **query: str) -> Any:
    params = "&".join(f"{k}={v}" for k, v in {"sale_id": sale_id, **query}.items())
    kind = "json" if query.get("format", "text") == "text" else "binary"
    return user.client.functions.invoke(
        f"receipt?{params}", {"method": "GET", "responseType": kind}
    )


def pdf_text(data: bytes) -> str:
    """The text a PDF draws: every `(...) Tj` string in its (deflated) content streams."""
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    shown = []
    # The end-of-line before `endstream` stays in `raw`: compressed bytes may themselves end in
    # \r, which a pattern eating an optional \r there would cut off. decompressobj ignores the
    # trailing end-of-line (unused_data).
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = match.group(1)
        with contextlib.suppress(zlib.error):  # a stream that is not deflated is kept as is
            raw = zlib.decompressobj().decompress(raw)
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", raw, re.S):
            shown.append(re.sub(rb"\\(.)", rb"\1", literal).decode("latin-1"))
    return "\n".join(shown)


@pytest.mark.parametrize("paper,columns", [("58", 32), ("80", 48)])
def test_escpos_bytes_decode_to_the_receipt_lines(
    make_user: Callable[..., Any], paper: str, columns: int
) -> None:
    user = make_user()
    sale = sell(user, registered=False)
    text = fetch(user, sale["id"], width=paper)
    assert text["width"] == columns
    printed = fetch(user, sale["id"], format="escpos", width=paper)
    assert printed.startswith(b"\x1b@\x1bt\x00")  # initialise, code page 437
    assert printed.endswith(b"\x1bd\x06\x1dV\x00")  # feed, full cut
    decoded = decode(printed)
    assert decoded.lines == text["lines"]
    assert all(len(line) <= columns for line in decoded.lines)
    # The QR code carries the e-receipt link, the same one the text answer names.
    assert decoded.qr == [text["url"]]
    assert "ESC E 1" in decoded.commands  # the business name is bold


def test_unregistered_receipt_shows_section_f_lines(make_user: Callable[..., Any]) -> None:
    user = make_user()
    sale = sell(user, registered=False)
    text = fetch(user, sale["id"])["text"]
    assert Decimal(str(sale["tax_amount"])) == 0
    for expected in (
        "Kedai Roti Aminah",
        "12 Jalan Bunga",
        "Reg. No: 202301234567",
        "Tel: 012-3456789",
        sale["sale_number"],
        "Roti Canai Telur",
        "2 x 2.12",
        "4.24",
        "Subtotal",
        "6.49",
        "Total before rounding",
        "Rounding adj.",
        "0.01",
        "TOTAL (RM)",
        "6.50",
        "Cash",
    ):
        assert expected in text, expected
    # Not registered: no SST number and no tax line, although a tax number is on file.
    assert "SST" not in text


def test_registered_receipt_shows_sst(make_user: Callable[..., Any]) -> None:
    user = make_user()
    sale = sell(user, registered=True)
    text = fetch(user, sale["id"])["text"]
    assert "SST No: W10-1808-32000123" in text
    assert re.search(r"^SST +0\.39$", text, re.M), text  # 6% of 6.49, rounded


@pytest.mark.parametrize("paper", ["58", "80"])
def test_pdf_opens_with_sale_number_and_total(make_user: Callable[..., Any], paper: str) -> None:
    user = make_user()
    sale = sell(user, registered=False)
    data = fetch(user, sale["id"], format="pdf", width=paper)
    shown = pdf_text(data)
    assert sale["sale_number"] in shown
    assert re.search(
        r"TOTAL \(RM\) +" + re.escape(f"{Decimal(str(sale['final_amount'])):.2f}"), shown
    )
    assert b"/URI (" + fetch(user, sale["id"])["url"].encode() + b")" in data  # the QR links


def test_public_page_shows_only_its_receipt_until_revoked(
    make_user: Callable[..., Any], server: ServerProcess
) -> None:
    user = make_user()
    first, second = sell(user, registered=False), sell(user, registered=False)
    url = fetch(user, first["id"])["url"]
    assert url.startswith(f"{server.url}/r/") and fetch(user, first["id"])["url"] == url
    token = url.rsplit("/", 1)[1]
    assert len(token) == 43

    page = httpx.get(url)  # no API key, no session: the link is the credential
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert first["sale_number"] in page.text and second["sale_number"] not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert fetch(user, second["id"])["url"] != url

    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 43, "short"):
        assert httpx.get(f"{server.url}/r/{wrong}").status_code == 404

    user.client.table("receipt_links").update({"revoked_at": "now()"}).eq(
        "sale_id", first["id"]
    ).execute()
    gone = httpx.get(url)
    assert gone.status_code == 404 and first["sale_number"] not in gone.text
    # The next receipt gets a new link; the revoked one stays dead.
    renewed = fetch(user, first["id"])["url"]
    assert renewed != url and httpx.get(renewed).status_code == 200
    assert httpx.get(url).status_code == 404


def test_another_tenant_gets_not_found(make_user: Callable[..., Any]) -> None:
    a, b = make_user(), make_user()
    sale = sell(a, registered=False)
    url = fetch(a, sale["id"])["url"]
    for kind in ("text", "pdf", "escpos"):
        with pytest.raises(FunctionsHttpError) as refused:
            fetch(b, sale["id"], format=kind)
        assert refused.value.status == 404
    # B sees none of A's links, so cannot revoke them either.
    assert b.client.table("receipt_links").select("*").execute().data == []
    b.client.table("receipt_links").update({"revoked_at": "now()"}).eq(
        "sale_id", sale["id"]
    ).execute()
    assert httpx.get(url).status_code == 200


@pytest.mark.parametrize(
    "query", [{"format": "docx"}, {"width": "57"}, {"width": "true"}, {"sale_id": "nope"}]
)
def test_bad_arguments_are_400(make_user: Callable[..., Any], query: dict[str, str]) -> None:
    user = make_user()
    sale = sell(user, registered=False)
    with pytest.raises(FunctionsHttpError) as refused:
        fetch(user, query.pop("sale_id", sale["id"]), **query)
    assert refused.value.status == 400


def test_the_business_footer_closes_every_form_of_the_receipt(
    make_user: Callable[..., Any],
) -> None:
    """The footer kept in Settings (`business_profiles.settings.receipt_footer`) is printed
    under the receipt, centred and wrapped to the paper, in the text, the PDF, the ESC/POS
    bytes and the public page; a receipt without one ends at the thank-you line."""
    user = make_user()
    plain = sell(user, registered=False)
    assert fetch(user, plain["id"])["text"].rstrip().endswith("Thank you! Terima kasih!")

    footer = "Barang yang dibeli tidak boleh ditukar\nFollow us @kedairotiaminah"
    user.client.table("business_profiles").update({"settings": {"receipt_footer": footer}}).eq(
        "business_owner_id", user.id
    ).execute()
    sale = sell(user, registered=False)
    text = fetch(user, sale["id"])["text"]
    tail = text.rstrip().splitlines()[-5:]
    assert [line.strip() for line in tail] == [
        "Thank you! Terima kasih!",
        "",
        "Barang yang dibeli tidak boleh",
        "ditukar",
        "Follow us @kedairotiaminah",
    ]
    assert all(len(line) <= 32 for line in text.splitlines())
    wide = fetch(user, sale["id"], width="80")["text"]
    assert "Barang yang dibeli tidak boleh ditukar" in wide
    assert "Follow us @kedairotiaminah" in pdf_text(fetch(user, sale["id"], format="pdf"))
    printed = decode(fetch(user, sale["id"], format="escpos"))
    assert "Follow us @kedairotiaminah" in "\n".join(line.strip() for line in printed.lines)
    assert "Follow us @kedairotiaminah" in httpx.get(fetch(user, sale["id"])["url"]).text
    # Settings are read at print time: the earlier sale's receipt now carries the footer too.
    assert "Follow us" in fetch(user, plain["id"])["text"]
