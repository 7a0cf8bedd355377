"""Fixtures for the data-API suites (helpers live in `rest.support`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from rest.support import CATALOGUE, Tenant, sign_up


@pytest.fixture(scope="module")
def shop(server: ServerProcess) -> Tenant:
    """A tenant with the catalogue, shared by a module's read-only tests."""
    tenant = sign_up(server)
    rows = [{"is_active": True, **row} for row in CATALOGUE]
    tenant.client.table("products").insert(rows).execute()
    return tenant


@pytest.fixture
def tenant(server: ServerProcess) -> Tenant:
    return sign_up(server)


@pytest.fixture
def rest(server: ServerProcess) -> Callable[..., httpx.Response]:
    """Raw HTTP to /rest/v1 for what the client cannot express (bad input, odd headers)."""

    def call(method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"apikey": server.anon_key, **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, f"{server.url}/rest/v1{path}", headers=headers, **kwargs)

    return call
