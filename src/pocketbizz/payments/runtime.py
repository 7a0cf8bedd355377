"""The payments' transactions: settlement and the return page act for a tenant named by the
provider's evidence, not by a signed-in user, so they run on the request pool (login
`authenticator`) as `pb_payments`, whose only rights are EXECUTE on the pb_internal functions
of definitions/payments/ (migration 0022). No pool of the server logs in as the owner."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg

from pocketbizz.db import Database, Identity

# No claims: each settlement function names the payment's tenant in the claims itself.
PAYMENTS = Identity("pb_payments")


def payments_transaction(db: Database) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """One pooled connection, one transaction, as pb_payments (Database.transaction's model)."""
    return db.transaction(PAYMENTS)
