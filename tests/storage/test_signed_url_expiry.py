"""A signed URL stops working the moment it says it expires (no clock-skew grace)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from harness import ServerProcess


def test_signed_url_expires_on_time(
    server: ServerProcess, make_user: Callable[..., object]
) -> None:
    user = make_user()
    bucket = user.client.storage.from_("receipts")  # type: ignore[attr-defined]
    path = f"{user.id}/short-lived.txt"  # type: ignore[attr-defined]
    bucket.upload(path, b"valid for one second", {"content-type": "text/plain"})
    url = bucket.create_signed_url(path, 1)["signedURL"]
    assert httpx.get(url).content == b"valid for one second"
    time.sleep(2.1)
    expired = httpx.get(url)
    assert expired.status_code == 400
    assert expired.json()["statusCode"] == "400"
