"""Password hashing with argon2id.

Parameters follow OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane): one hash costs
tens of milliseconds on one core here (see docs/benchmarks.md), well under the 100 ms budget.
Hashing runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = _HASHER.hash("pocketbizz-dummy-password")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check)
