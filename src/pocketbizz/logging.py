"""One log stream: our structlog events and every standard-library logger (uvicorn, the
embedded PostgreSQL's pgserver, migrations, asyncpg) rendered alike on stderr — JSON lines, or
readable text on a terminal — with secrets redacted before anything is written."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from pocketbizz.settings import Settings

# Query parameters and JSON fields that carry credentials (the realtime socket sends its key as
# ?apikey=, signed URLs carry ?token=), JWTs anywhere, and the password in a DSN.
_SECRET_PARAM = re.compile(
    r"(?i)\b(apikey|api_key|token|access_token|refresh_token|jwt|password|secret)=[^&\s\"']+"
)
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}")
_DSN_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _DSN_PASSWORD.sub(rf"\1{REDACTED}@", text)


_SECRET_FIELDS = frozenset(
    {"apikey", "authorization", "password", "token", "access_token", "refresh_token", "secret"}
)


def _redact_event(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if key.lower() in _SECRET_FIELDS:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


class _Demote(logging.Filter):
    """Turns a chatty library's INFO into DEBUG (pgserver logs every pg_ctl call and its whole
    output at INFO, the job worker each periodic run); warnings and errors keep their level.
    It sits on the handler, so the libraries' child loggers (procrastinate.worker, ...) are
    covered too, and drops what the handler's level would no longer let through."""

    def __init__(self, prefixes: tuple[str, ...], level: int) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name.startswith(self.prefixes):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.level <= logging.DEBUG
        return True


# procrastinate logs every periodic job's start and end, flet_web its set-up, at INFO.
_CHATTY = ("pgserver", "procrastinate", "flet_web")


def use_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return not sys.stderr.isatty()
    return settings.log_format == "json"


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json(settings)
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Standard-library records: same fields, same redaction, same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact_event,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings too, instead of bare text on stderr
    handler.addFilter(_Demote(_CHATTY, level))
    # uvicorn's own loggers propagate to the root handler (it runs with log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

    # Our structlog events skip the stdlib machinery (the access log is on the hot path) but
    # share the processors and the renderer, so both kinds of line look the same.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
