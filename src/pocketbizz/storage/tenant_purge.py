"""Account closure and PDPA erasure: a tenant's rows and stored files go, nothing else.

`pb_internal.purge_tenant` (migration 0011) deletes, in one transaction and scoped to the
tenant by forced RLS, the tenant's object metadata, every tenant row (the cascade from its
profile, the append-only ledger included) and its account. The bytes are removed after the
commit: a crash in between leaves unreferenced bytes, never metadata pointing at nothing.
"""

from __future__ import annotations

from uuid import UUID

import structlog

from pocketbizz.db.database import AUTH_ADMIN, Database
from pocketbizz.storage.backend import ObjectStore, object_key

log = structlog.get_logger("pocketbizz.storage.purge")


async def purge_tenant(db: Database, store: ObjectStore, user_id: UUID) -> bool:
    """Delete the tenant `user_id` entirely; False when there is no such user."""
    async with db.transaction(AUTH_ADMIN) as conn:
        # Locked first, so two concurrent purges of one tenant do the work once.
        found = await conn.fetchval("select true from auth.users where id = $1 for update", user_id)
        if not found:
            return False
        removed = await conn.fetch(
            "select bucket_id, version from pb_internal.purge_tenant($1)", user_id
        )
    keys = [object_key(r["bucket_id"], r["version"]) for r in removed]
    try:
        await store.delete(keys)
    except Exception:
        # The tenant is gone; only unreferenced bytes remain. Say which, for the operator.
        log.exception(
            "purged tenant's files could not all be removed", user_id=str(user_id), keys=keys
        )
    return True
