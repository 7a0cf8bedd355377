"""CORS for browser clients on another origin (supabase-js in a web app, Flutter web, the PWA).

Supabase's gateway (Kong's `cors` plugin on every service) answers this, and so do we, on every
API surface: a preflight is answered by the gateway's first stage, before identity and rate limits (a browser sends no
`apikey` with it), with 200 as Kong does; every other response — errors included, or the browser
hides a 401 or 429 from the app — carries `Access-Control-Allow-Origin` and the headers a client
may read. Any origin by default; `PB_CORS_ALLOWED_ORIGINS` restricts it, and then the matching
origin is echoed with `Vary: Origin`. No credentials mode: the SDKs send tokens in headers.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import Scope, Send

_SURFACES = ("/auth/v1", "/rest/v1", "/storage/v1", "/functions/v1", "/realtime/v1")

ALLOWED_METHODS = "GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS"
# What the official SDKs send (supabase-js, supabase-py, supabase_flutter, storage and functions
# clients, supabase-js's Sentry integration), for a preflight that does not name its headers.
ALLOWED_HEADERS = ", ".join(
    (
        "authorization",
        "apikey",
        "x-client-info",
        "content-type",
        "accept",
        "accept-language",
        "accept-profile",
        "content-profile",
        "prefer",
        "range",
        "if-none-match",
        "if-modified-since",
        "x-upsert",
        "x-metadata",
        "cache-control",
        "x-supabase-api-version",
        "x-region",
        "x-request-id",
        "baggage",
        "sentry-trace",
    )
)
# Beyond the CORS safelist, what the clients read: PostgREST's counts and profiles, Storage's
# validators and file names, GoTrue's API version, our request id and rate-limit state.
EXPOSED_HEADERS = ", ".join(
    (
        "Content-Range",
        "Range-Unit",
        "Content-Location",
        "Content-Profile",
        "Content-Disposition",
        "Content-Length",
        "Content-Encoding",
        "Preference-Applied",
        "Location",
        "ETag",
        "Last-Modified",
        "X-Supabase-Api-Version",
        "X-Request-Id",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    )
)
# A day, as PostgREST answers: the browser then preflights each URL once a day, not per request.
MAX_AGE_SECONDS = "86400"

# Header names as RFC 9110 tokens, comma-separated: only such a list is reflected back.
_HEADER_LIST = re.compile(r"\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*\s*")


class CorsPolicy:
    """The allowed origins: `*`, or an exact list (scheme, host and port, as browsers send)."""

    def __init__(self, allowed_origins: str) -> None:
        origins = [o.strip().rstrip("/").lower() for o in allowed_origins.split(",")]
        origins = [o for o in origins if o]
        self.any_origin = not origins or "*" in origins
        self.origins = frozenset(origins)

    def allow_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` value for a request from `origin`, or None."""
        if self.any_origin:
            return "*"
        if origin is not None and origin.lower() in self.origins:
            return origin
        return None

    def headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """The headers every answer to `origin` carries (the preflight's on top of these)."""
        headers: list[tuple[bytes, bytes]] = []
        allowed = self.allow_origin(origin)
        if allowed is not None:
            headers.append((b"access-control-allow-origin", allowed.encode("latin-1")))
        if not self.any_origin:
            # The answer depends on the origin: a shared cache must not serve it to another.
            headers.append((b"vary", b"Origin"))
        return headers


_SURFACE_PREFIXES = tuple(prefix + "/" for prefix in _SURFACES)


def on_api_surface(path: str) -> bool:
    """The services Supabase's gateway fronts; /health, /metrics and the same-origin /app are not."""
    return path.startswith(_SURFACE_PREFIXES) or path in _SURFACES


def is_preflight(scope: Scope, request_headers: Headers) -> bool:
    return scope["method"] == "OPTIONS" and "access-control-request-method" in request_headers


class Cors:
    """The gateway's first stage: a preflight is answered here, before identity and rate limits;
    every other answer on an API surface gets the policy's headers (see `merge_headers`)."""

    def __init__(self, allowed_origins: str) -> None:
        self.policy = CorsPolicy(allowed_origins)
        self._exposed = (b"access-control-expose-headers", EXPOSED_HEADERS.encode())
        # With any origin allowed (the default) every answer gets the same two headers.
        self._any_origin = [*self.policy.headers(None), self._exposed]

    def response_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """What every answer to `origin` carries: the exposed headers only for an allowed one."""
        if self.policy.any_origin:
            return self._any_origin
        base = self.policy.headers(origin)
        if self.policy.allow_origin(origin) is not None:
            base.append(self._exposed)
        return base

    async def preflight(self, request_headers: Headers, send: Send) -> None:
        base = self.policy.headers(request_headers.get("origin"))
        headers = list(base)
        if any(name == b"access-control-allow-origin" for name, _ in base):
            requested = request_headers.get("access-control-request-headers", "")
            # Kong reflects the requested headers; a malformed list gets the SDKs' list instead.
            allowed = requested.strip() if _HEADER_LIST.fullmatch(requested) else ALLOWED_HEADERS
            headers += [
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", allowed.encode("latin-1")),
                (b"access-control-max-age", MAX_AGE_SECONDS.encode()),
            ]
        # An origin not allowed gets a plain 200 without Allow-* headers: the browser refuses.
        headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def merge_headers(
    headers: list[tuple[bytes, bytes]], added: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The response's headers with ours: ours win for Access-Control-*, `Origin` joins `Vary`."""
    ours = {name for name, _ in added if name != b"vary"}
    merged = [(name, value) for name, value in headers if name.lower() not in ours]
    for name, value in added:
        if name == b"vary":
            merged = _with_vary(merged, value)
        else:
            merged.append((name, value))
    return merged


def _with_vary(headers: list[tuple[bytes, bytes]], token: bytes) -> list[tuple[bytes, bytes]]:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            present = {part.strip().lower() for part in value.split(b",")}
            if token.lower() not in present and b"*" not in present:
                headers[index] = (name, value + b", " + token)
            return headers
    headers.append((b"vary", token))
    return headers
