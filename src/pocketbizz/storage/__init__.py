"""Storage at /storage/v1 (Supabase Storage-compatible).

Buckets and object metadata live in the `storage` schema under row-level security; bytes live
in an `ObjectStore` (local disk under the data dir by default, S3-compatible optionally).
"""

from __future__ import annotations

from pocketbizz.state import AppState
from pocketbizz.storage.backend import ObjectStore, create_store

__all__ = ["ObjectStore", "create_store", "shutdown", "startup"]


async def startup(state: AppState) -> None:
    state.services["storage"] = create_store(state.settings.storage)


async def shutdown(state: AppState) -> None:
    store = state.services.pop("storage", None)
    if store is not None:
        await store.close()
