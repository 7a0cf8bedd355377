"""Functions at /functions/v1: Python functions registered by name, run as the caller.

Each runs inside the caller's one transaction (role and claims set, RLS in force); JSON in and
out; errors as `{"error": ...}` with the right status, which the official client raises as
`FunctionsHttpError`.
"""

from pocketbizz.functions.events import SERVICE_KEY as _EVENT_PARTITIONS
from pocketbizz.functions.events import EventPartitions
from pocketbizz.state import AppState


async def startup(state: AppState) -> None:
    partitions = EventPartitions(state.db, state.settings.events_retention_days)
    partitions.start()
    state.services[_EVENT_PARTITIONS] = partitions


async def shutdown(state: AppState) -> None:
    partitions = state.services.pop(_EVENT_PARTITIONS, None)
    if isinstance(partitions, EventPartitions):
        await partitions.close()


__all__ = ["shutdown", "startup"]
