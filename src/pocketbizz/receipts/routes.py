"""`GET /r/{token}`: the public e-receipt page a receipt's QR code opens.

Whoever holds the link sees that one receipt, without signing in; an unknown or revoked token is
a 404 that says nothing more. The token is looked up as service_role (the caller has no tenant),
then only that tenant's sale is read (`repository` names the tenant in every query).
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pocketbizz.db.database import SERVICE
from pocketbizz.functions.receipt_text import render
from pocketbizz.receipts import repository
from pocketbizz.state import app_state

_COLUMNS = 48
# The token is the secret: keep the page out of caches, search engines and Referer headers.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
_PAGE = """<!doctype html>
<html lang="ms"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{margin:0;background:#eee}}pre{{margin:1rem auto;padding:1rem;max-width:30rem;
background:#fff;font:14px/1.35 ui-monospace,monospace;white-space:pre-wrap}}</style>
</head><body><pre>{body}</pre></body></html>
"""
_NOT_FOUND = _PAGE.format(title="Not found", body="Receipt not found / Resit tidak dijumpai")


async def public_receipt(request: Request) -> Response:
    token = request.path_params["token"]
    # Tokens are 43 URL-safe characters; anything else cannot match, so skip the database.
    if len(token) != 43 or not token.replace("-", "").replace("_", "").isalnum():
        return HTMLResponse(_NOT_FOUND, status_code=404, headers=_HEADERS)
    state = app_state(request)
    async with state.db.transaction(SERVICE) as conn:
        found = await repository.sale_for_token(conn, token)
        receipt = None if found is None else await repository.load_receipt(conn, *found)
    if receipt is None:
        return HTMLResponse(_NOT_FOUND, status_code=404, headers=_HEADERS)
    body = escape("\n".join(render(receipt, _COLUMNS)))
    title = escape(f"{receipt.business_name or 'Receipt'} {receipt.sale_number}")
    return HTMLResponse(_PAGE.format(title=title, body=body), headers=_HEADERS)


routes = [Route("/{token}", public_receipt, methods=["GET"])]
