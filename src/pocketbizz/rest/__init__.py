"""The data API at /rest/v1 (PostgREST-compatible): tables, views and SQL functions of the
`public` schema as REST, every statement run as the caller inside one transaction."""

from __future__ import annotations

from pocketbizz.rest.service import SERVICE_KEY, RestService
from pocketbizz.state import AppState


async def startup(state: AppState) -> None:
    service = RestService(state)
    await service.load()
    await service.listen()
    state.services[SERVICE_KEY] = service


async def shutdown(state: AppState) -> None:
    service = state.services.pop(SERVICE_KEY, None)
    if isinstance(service, RestService):
        await service.close()


__all__ = ["RestService", "shutdown", "startup"]
