"""Errors to Sentry (`sentry-sdk`) when SENTRY_DSN is set, for the server and the job worker;
nothing is sent without it.

What reaches Sentry: our structlog events at error level (the gateway's "unhandled error" with
its stack, the worker's failures) and standard-library log records at error level (the job
queue's failed jobs), with the standard-library records before them as breadcrumbs. Everything
passes through one scrubber first: JWTs anywhere, `apikey=`/`token=`/`password=` in text,
passwords in DSNs, credential headers and cookies, fields named like secrets, and the values of
this instance's own secret settings wherever they appear. Request bodies, local variables and
personal data (send_default_pii) are never collected, and integrations are only the ones named
here (the auto-enabled asyncpg one would record SQL, which carries the request's claims).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import structlog

from pocketbizz import __version__
from pocketbizz.logging import REDACTED, redact
from pocketbizz.settings import Settings

# Mapping keys whose values are credentials wherever they sit in an event (headers, extra,
# breadcrumb data, tags), compared lower-cased with "-" read as "_".
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "apikey",
        "api_key",
        "x_api_key",
        "cookie",
        "cookies",
        "set_cookie",
        "password",
        "passwd",
        "new_password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "jwt",
        "jwt_secret",
        "client_secret",
    }
)
# Settings whose values are secrets (PB_JWT_SECRET, PB_S3_SECRET_KEY, PB_WHATSAPP_TOKEN, ...).
_SECRET_SETTING = re.compile(r"(secret|password|token|_pass|_key)$")
_URL_SETTINGS = ("database_url", "database_direct_url", "redis_url", "sentry_dsn")
# Shorter values are not searched for: replacing them would mangle ordinary text.
_MIN_SECRET_LENGTH = 6


def _secret_values(settings: Settings) -> list[str]:
    values = [
        str(value)
        for name, value in settings
        if _SECRET_SETTING.search(name) and isinstance(value, str)
    ]
    # Kept in the data dir when not configured: read if there, never made here (`serve` has
    # made the JWT secret by now; a worker has no use for one).
    for name in ("jwt_secret", "authenticator_password"):
        path = settings.data_dir / name
        if path.is_file():
            values.append(path.read_text().strip())
    for name in _URL_SETTINGS:
        url = getattr(settings, name, None)
        if url:
            try:
                password = urlsplit(str(url)).password
            except ValueError:
                password = None
            if password:
                values.append(password)
    # Longest first, so a secret containing another is replaced whole.
    return sorted({v for v in values if len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)


class Scrubber:
    """Removes credentials from a Sentry event or breadcrumb, in place, before it is sent."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = list(secrets)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return redact(value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, MutableMapping):
            for key in list(value):
                name = str(key).lower().replace("-", "_")
                value[key] = REDACTED if name in _SECRET_KEYS else self.value(value[key])
            return value
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.value(item) for item in value)
        return value

    def event(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        request = event.get("request")
        if isinstance(request, MutableMapping):
            # Bodies and cookies are never wanted; the query string may carry ?apikey=.
            request.pop("data", None)
            request.pop("cookies", None)
        scrubbed: dict[str, Any] = self.value(event)
        return scrubbed

    def breadcrumb(self, crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        scrubbed: dict[str, Any] = self.value(crumb)
        return scrubbed


def configure(settings: Settings, component: str) -> bool:
    """Start Sentry for this process (`component`: "server" or "worker") when SENTRY_DSN is
    set; True when it was. Call after logging is configured, before the first log line."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    scrubber = Scrubber(_secret_values(settings))
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=f"pocketbizz@{__version__}",
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration()],
        before_send=scrubber.event,  # type: ignore[arg-type]
        before_breadcrumb=scrubber.breadcrumb,  # type: ignore[arg-type]
    )
    sentry_sdk.set_tag("component", component)
    _report_structlog_errors()
    return True


def _to_sentry(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: an error-level event becomes a Sentry event (its exception with
    the stack when it carries one), its other fields as tags and extra data."""
    if event_dict.get("level") not in ("error", "critical"):
        return event_dict
    import sentry_sdk

    exc_info = event_dict.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    with sentry_sdk.new_scope() as scope:
        for key, value in event_dict.items():
            if key in ("event", "level", "timestamp", "exc_info"):
                continue
            if key in ("request_id", "path"):
                scope.set_tag(key, str(value))
            else:
                scope.set_extra(key, value)
        if isinstance(exc_info, tuple) and exc_info[1] is not None:
            scope.set_extra("log_event", str(event_dict.get("event")))
            sentry_sdk.capture_exception(exc_info)
        else:
            sentry_sdk.capture_message(str(event_dict.get("event")), level="error")
    return event_dict


def _report_structlog_errors() -> None:
    # Our structlog events bypass the standard library (so Sentry's logging integration does not
    # see them): the processor joins the configured chain just before the exception is
    # formatted, where the level is known and exc_info is still the exception, not its text.
    processors = list(structlog.get_config()["processors"])
    if _to_sentry in processors:
        return
    formatter = structlog.processors.format_exc_info
    at = processors.index(formatter) if formatter in processors else 0
    structlog.configure(processors=[*processors[:at], _to_sentry, *processors[at:]])
