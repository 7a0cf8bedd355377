"""What a function receives (`FunctionContext`) and how it may answer (`RawJson`).

A function is `async def fn(ctx) -> JSON`. It runs inside the caller's one transaction
(`ctx.conn`, role and claims already set), so row-level security applies to everything it reads
or writes; it never takes a tenant from the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from pocketbizz.db import Identity
from pocketbizz.settings import Settings


@dataclass(frozen=True)
class FunctionContext:
    conn: asyncpg.Connection
    identity: Identity
    body: Any  # the decoded JSON body, or None when there was none
    query: Mapping[str, str]
    settings: Settings
    # The HTTP method, for a function that is a small resource (GET reads, PUT sets, DELETE).
    method: str = "POST"


@dataclass(frozen=True)
class RawJson:
    """A result that is already JSON text (jsonb from SQL): sent as is, so numbers stay exact."""

    text: str


@dataclass(frozen=True)
class WithStatus:
    """A JSON result answered with a status other than 200 (202: events accepted for storage)."""

    body: Any
    status: int


@dataclass(frozen=True)
class Document:
    """A result that is a file, not JSON (a PDF, ESC/POS bytes): sent with its media type."""

    content: bytes
    media_type: str
    filename: str


FunctionHandler = Callable[[FunctionContext], Awaitable[Any]]
