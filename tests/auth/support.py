"""What the auth tests share: the status each surface answers for a token."""

from __future__ import annotations

import uuid

import httpx
from harness import ServerProcess


def headers(server: ServerProcess, token: str) -> dict[str, str]:
    return {"apikey": server.anon_key, "Authorization": f"Bearer {token}"}


def surfaces(server: ServerProcess, token: str, user_id: str) -> dict[str, int]:
    """The status each surface answers for this token (REST, RPC, storage, functions, /user)."""
    h = headers(server, token)
    base = server.url
    with httpx.Client(timeout=10) as http:
        return {
            "rest": http.get(f"{base}/rest/v1/products?select=id", headers=h).status_code,
            "rpc": http.post(
                f"{base}/rest/v1/rpc/analytics",
                headers=h,
                json={"start_date": "2026-01-01", "end_date": "2026-01-31"},
            ).status_code,
            "storage": http.post(
                f"{base}/storage/v1/object/receipts/{user_id}/{uuid.uuid4().hex}.txt",
                headers={**h, "Content-Type": "text/plain"},
                content=b"orphan?",
            ).status_code,
            "functions": http.post(
                f"{base}/functions/v1/analytics",
                headers=h,
                json={"start_date": "2026-01-01", "end_date": "2026-01-31"},
            ).status_code,
            "user": http.get(f"{base}/auth/v1/user", headers=h).status_code,
        }
