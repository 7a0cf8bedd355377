"""`receipt`: one of the caller's sales as a receipt: text lines, a PDF or ESC/POS bytes.

`GET /functions/v1/receipt?sale_id=…&format=text|pdf|escpos&width=58|80` (or the same as a JSON
body). `width` is the paper in mm; 32 and 48 (its columns) are accepted too, as before.
`text` answers `{"sale_id", "width", "lines", "text", "url"}` (width in columns); `pdf` and
`escpos` answer the file. Each carries the sale's public e-receipt link `url` (`/r/{token}`,
made on first use), the PDF and the printout as a QR code.
Another tenant's sale is simply not found (RLS hides it), never forbidden.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from uuid import UUID

from pocketbizz.errors import BadRequest, NotFound, Unauthorized
from pocketbizz.functions.context import Document, FunctionContext
from pocketbizz.functions.receipt_text import render, wrap
from pocketbizz.receipts import documents, repository

FORMATS = ("text", "pdf", "escpos")
# Paper width in mm, or the columns it holds (the function's first form took columns).
_PAPER = {58: 58, 80: 80, 32: 58, 48: 80}


def _arguments(ctx: FunctionContext) -> tuple[UUID, str, int]:
    body = ctx.body if ctx.body is not None else {}
    if not isinstance(body, dict):
        raise BadRequest("Body must be a JSON object with sale_id", code="invalid_argument")
    given = {**body, **ctx.query}
    try:
        sale_id = UUID(str(given.get("sale_id")))
    except ValueError as exc:
        raise BadRequest("sale_id must be a uuid", code="invalid_argument") from exc
    kind = given.get("format", "text")
    if kind not in FORMATS:
        raise BadRequest("format must be text, pdf or escpos", code="invalid_argument")
    width = given.get("width", 58)
    if isinstance(width, str) and width.isdigit():
        width = int(width)
    if isinstance(width, bool) or width not in _PAPER:
        raise BadRequest(
            "width must be 58 or 80 (mm), or 32 or 48 (columns)", code="invalid_argument"
        )
    return sale_id, kind, _PAPER[width]


def receipt_url(ctx: FunctionContext, token: str) -> str:
    return f"{ctx.settings.url}/r/{token}"


async def run(ctx: FunctionContext) -> Any:
    sale_id, kind, paper = _arguments(ctx)
    owner = ctx.identity.user_id
    if owner is None:
        raise Unauthorized("This function needs a signed-in user", code="no_user")
    receipt = await repository.load_receipt(ctx.conn, owner, sale_id)
    if receipt is None:
        raise NotFound("Sale not found", code="not_found")
    url = receipt_url(ctx, await repository.ensure_link(ctx.conn, owner, sale_id))
    columns = documents.COLUMNS[paper]
    lines = render(receipt, columns)
    header = len(wrap(receipt.business_name or "RECEIPT", columns))
    # Sale numbers follow the tenant's format: keep the file name to safe characters.
    name = "Receipt-" + re.sub(r"[^A-Za-z0-9._-]", "-", receipt.sale_number)
    if kind == "pdf":
        # ~15 ms of CPU (fonts, QR image): off the event loop, so other requests keep moving.
        content = await asyncio.to_thread(documents.pdf, lines, header, url, paper, name)
        return Document(content, "application/pdf", f"{name}.pdf")
    if kind == "escpos":
        content = documents.escpos(lines, header, url)
        return Document(content, "application/octet-stream", f"{name}.bin")
    return {
        "sale_id": str(sale_id),
        "width": columns,
        "lines": lines,
        "text": "\n".join(lines) + "\n",
        "url": url,
    }
