"""The `pocketbizz` command: serve, worker, migrate, keys, backup, restore, app.

Mistakes a newcomer makes (a bad setting, a busy port, an unreachable database, no data dir)
end in one line on stderr and exit status 2, never in a traceback or a freshly made secret.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from pocketbizz import __version__, observability
from pocketbizz.settings import Settings

USAGE_ERROR = 2


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


# --- settings ---------------------------------------------------------------------------------


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"PB_{field.upper()}"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        # Never echo the value: it may be a secret.
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule between settings, which names them itself
            raise CliError(f"invalid settings: {message}") from None
        field = str(error["loc"][0])
        where = f"--{field.replace('_', '-')}" if field in overrides else _env_name(field)
        raise CliError(f"invalid setting {where}: {message}") from None


def _environment_help() -> str:
    lines = ["environment variables (all optional):"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = str(field.default_factory())  # type: ignore[call-arg]
        else:
            default = "" if field.default is None else str(field.default)
        secret = name.endswith(("secret", "password", "token", "secret_key", "_url"))
        shown = "" if secret or not default else f" (default {default})"
        lines.append(f"  {_env_name(name)}{shown}")
    return "\n".join(lines) + "\n"


# --- the database -----------------------------------------------------------------------------


class _Database:
    """The owner DSN, reaching PostgreSQL directly (migrations hold a session-level advisory
    lock): DATABASE_DIRECT_URL or DATABASE_URL, or the embedded server under the data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: Any = None

    def __enter__(self) -> str:
        dsn = self.settings.direct_database_url
        if dsn:
            name = "DATABASE_DIRECT_URL" if self.settings.database_direct_url else "DATABASE_URL"
            _check_reachable(dsn, name)
            return dsn
        from pocketbizz.db.embedded import EmbeddedPostgres

        self.embedded = EmbeddedPostgres(self.settings.data_dir / "pgdata")
        return str(self.embedded.start())

    def __exit__(self, *exc: object) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def _check_reachable(dsn: str, name: str = "DATABASE_URL") -> None:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        await conn.close()

    try:
        asyncio.run(probe())
    except (
        OSError,
        TimeoutError,
        ValueError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as exc:
        from pocketbizz.logging import redact

        reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise CliError(f"cannot connect to {name}: {reason}") from None


def _migrate(settings: Settings, dsn: str) -> list[str]:
    from pocketbizz.db import apply_migrations
    from pocketbizz.jobs.repository import apply_schema

    applied = asyncio.run(
        apply_migrations(dsn, authenticator_password=settings.authenticator_secret)
    )
    asyncio.run(apply_schema(dsn))  # the job queue's tables, from the installed procrastinate
    return applied


def cmd_migrate(args: argparse.Namespace) -> int:
    from pocketbizz.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings)
    with _Database(settings) as dsn:
        applied = _migrate(settings, dsn)
    print(json.dumps({"applied": applied}))
    return 0


# --- running servers: one record per `serve` process, removed when it stops --------------------


def _servers_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pocketbizz" / "servers"


@contextmanager
def _recorded(settings: Settings) -> Iterator[None]:
    import psutil

    me = psutil.Process()
    record = _servers_dir() / f"{me.pid}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "pid": me.pid,
        "started": me.create_time(),
        "url": settings.url,
        "data_dir": str(settings.data_dir.resolve()),
    }
    record.write_text(json.dumps(body))
    try:
        yield
    finally:
        record.unlink(missing_ok=True)


def _running_servers() -> list[dict[str, Any]]:
    """Records of live servers; a record left by a killed process is removed."""
    import psutil

    live = []
    for path in sorted(_servers_dir().glob("*.json")):
        try:
            record = json.loads(path.read_text())
            alive = psutil.Process(record["pid"]).create_time() == record["started"]
        except (OSError, ValueError, KeyError, psutil.Error):
            alive = False  # the pid is gone, or reused by another process
        if alive:
            live.append(record)
        else:
            path.unlink(missing_ok=True)
    return live


# --- keys -------------------------------------------------------------------------------------


def _existing_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.secret
    path = settings.data_dir / "jwt_secret"
    if not path.exists():
        raise CliError(
            f"no PocketBizz data dir at {settings.data_dir} (no jwt_secret there): start one "
            "with `pocketbizz serve`, or pass --data-dir / PB_DATA_DIR"
        )
    return path.read_text().strip()


def cmd_keys(args: argparse.Namespace) -> int:
    from pocketbizz.gateway.tokens import api_keys

    settings = _settings(args)
    servers = _running_servers()
    if "data_dir" not in settings.model_fields_set:
        # No data dir named: the one a running server uses, if that is unambiguous.
        dirs = sorted({s["data_dir"] for s in servers})
        if len(dirs) > 1:
            raise CliError(
                f"servers are running on several data dirs ({', '.join(dirs)}): pass --data-dir"
            )
        if dirs:
            settings = settings.model_copy(update={"data_dir": Path(dirs[0])})
    secret = _existing_secret(settings)
    data_dir = str(settings.data_dir.resolve())
    urls = [s["url"] for s in servers if s["data_dir"] == data_dir]
    url = settings.url
    explicit = args.host is not None or args.port is not None or settings.public_url
    if urls and not explicit:
        url = urls[0]
    elif not urls:
        print(f"pocketbizz: no server is running on {data_dir}", file=sys.stderr)
    payload = {"url": url, **api_keys(secret)}
    if args.json:
        print(json.dumps(payload))
    else:
        for key, value in payload.items():
            print(f"{key}: {value}")
    return 0


# --- metrics ----------------------------------------------------------------------------------


def cmd_metrics(args: argparse.Namespace) -> int:
    """The business figures: from DATABASE_URL directly, else from the running server of the
    data dir (as service_role, the key made from its secret)."""
    from pocketbizz.errors import ApiError
    from pocketbizz.ops.activity import activity_day
    from pocketbizz.ops.service import metrics_table, parse_range

    settings = _settings(args)
    given = {"from": args.from_date, "to": args.to_date}
    try:
        first, last = parse_range({k: v for k, v in given.items() if v}, activity_day())
    except ApiError as exc:
        raise CliError(exc.message) from None
    # As the owner, on the direct address: a transaction pooler takes only `authenticator`.
    dsn = settings.direct_database_url
    if dsn:
        name = "DATABASE_DIRECT_URL" if settings.database_direct_url else "DATABASE_URL"
        _check_reachable(dsn, name)
        figures = asyncio.run(_metrics_from_database(dsn, first, last))
    else:
        figures = _metrics_from_server(settings, first, last)
    print(json.dumps(figures) if args.json else metrics_table(figures, first, last))
    return 0


async def _metrics_from_database(dsn: str, first: Any, last: Any) -> dict[str, Any]:
    import asyncpg

    from pocketbizz.ops import repository

    conn = await asyncpg.connect(dsn)
    try:
        return await repository.business_metrics(conn, first, last)
    finally:
        await conn.close()


def _metrics_from_server(settings: Settings, first: Any, last: Any) -> dict[str, Any]:
    import httpx

    from pocketbizz.gateway.tokens import api_keys

    servers = _running_servers()
    if "data_dir" in settings.model_fields_set:
        servers = [s for s in servers if s["data_dir"] == str(settings.data_dir.resolve())]
    if len({s["data_dir"] for s in servers}) != 1:
        raise CliError(
            "metrics needs DATABASE_URL, or exactly one running server "
            f"({len(servers)} found; pass --data-dir to choose)"
        )
    server = servers[0]
    settings = settings.model_copy(update={"data_dir": Path(server["data_dir"])})
    key = api_keys(_existing_secret(settings))["service_role_key"]
    response = httpx.get(
        f"{server['url']}/functions/v1/admin/metrics",
        params={"from": first.isoformat(), "to": last.isoformat()},
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        timeout=60,
    )
    if response.status_code != 200:
        raise CliError(f"the server answered {response.status_code}: {response.text[:200]}")
    figures: dict[str, Any] = response.json()
    return figures


# --- serve ------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    """Take the port before anything else starts, so a busy port fails in a second."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)  # worker processes serve the same socket
    return sock


def _announce_when_listening(sock: socket.socket, settings: Settings, secret: str) -> None:
    """Print the URL and keys (as `supabase start` does) once the server accepts connections:
    uvicorn listens only after the app's startup has completed."""
    from pocketbizz.gateway.tokens import api_keys

    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"

    def wait_then_print() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
            except OSError:
                time.sleep(0.1)
                continue
            keys = api_keys(secret)
            print(
                f"PocketBizz {__version__} is running.\n\n"
                f"         API URL: {settings.url}\n"
                f"        anon key: {keys['anon_key']}\n"
                f"service_role key: {keys['service_role_key']}\n"
                f"        data dir: {settings.data_dir.resolve()}\n",
                flush=True,
            )
            return

    threading.Thread(target=wait_then_print, name="announce", daemon=True).start()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pocketbizz.logging import configure_logging, use_json

    settings = _settings(args)
    if args.no_worker:
        os.environ["PB_JOBS_IN_PROCESS"] = "false"  # for the processes of --workers N too
        settings.jobs_in_process = False
    configure_logging(settings)  # before the app's imports, whose warnings join the stream
    from pocketbizz.server import create_app, runtime_database

    sock = _bind(settings.host, settings.port)
    with _Database(settings) as dsn, _recorded(settings), _metrics_dir(settings) as metrics:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret = settings.secret  # create the JWT secret on first start, before serving
        observability.configure(settings, "server")  # Sentry, when SENTRY_DSN is set
        _migrate(settings, dsn)
        # The request pools' address (as authenticator): DATABASE_URL, which may be a pooler,
        # else the embedded server; the in-process job worker uses the direct one.
        settings.database_url = settings.database_url or dsn
        config: dict[str, Any] = {
            "log_config": None,
            "access_log": False,
            "use_colors": not use_json(settings),
            "lifespan": "on",
            "ws": "websockets-sansio",
            "proxy_headers": bool(settings.trusted_proxies),
            "forwarded_allow_ips": settings.trusted_proxies or None,
        }
        # uvicorn turns SIGTERM/SIGINT into a graceful shutdown and then re-raises the signal
        # to the handler it found; this one turns it into a normal exit so the block above
        # still stops the embedded database and removes the server's record.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        _announce_when_listening(sock, settings, secret)
        if settings.workers > 1:
            return _serve_workers(settings, settings.database_url, sock, config, metrics)
        app = create_app(settings, runtime_database(settings, settings.database_url))
        server = uvicorn.Server(uvicorn.Config(app, **config))
        with suppress(KeyboardInterrupt, SystemExit):
            server.run(sockets=[sock])
    return 0 if server.started else 1


@contextmanager
def _metrics_dir(settings: Settings) -> Iterator[Path | None]:
    """Several workers write their metrics to files in one per-run directory, which any of them
    reads at scrape time (prometheus_client's multiprocess mode)."""
    if settings.workers == 1:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="pocketbizz-metrics-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _serve_workers(
    settings: Settings, dsn: str, sock: socket.socket, config: dict[str, Any], metrics: Path | None
) -> int:
    """Several server processes on one port. They share nothing but PostgreSQL (and Redis for
    rate limits: without REDIS_URL each process counts on its own)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if not settings.redis_url:
        logging.getLogger("pocketbizz").warning(
            "%d workers without REDIS_URL: rate limits are counted per process",
            settings.workers,
        )
    # Workers build their app from the environment (see server.app_from_environment).
    os.environ.update(
        {
            "DATABASE_URL": dsn,
            "PB_JWT_SECRET": settings.secret,
            "PB_AUTHENTICATOR_PASSWORD": settings.authenticator_secret,
            "PB_DATA_DIR": str(settings.data_dir.resolve()),
            "PB_HOST": settings.host,
            "PB_PORT": str(settings.port),
        }
    )
    if metrics is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    uvicorn_config = uvicorn.Config(
        "pocketbizz.server:app_from_environment",
        factory=True,
        workers=settings.workers,
        **config,
    )
    with suppress(KeyboardInterrupt, SystemExit):
        Multiprocess(uvicorn_config, sockets=[sock]).run()
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _progress(command: str) -> Callable[[str], None]:
    def report(line: str) -> None:
        print(f"pocketbizz {command}: {line}", file=sys.stderr, flush=True)

    return report


def cmd_backup(args: argparse.Namespace) -> int:
    """One archive: the database (one snapshot), its roles, the stored files and the JWT secret."""
    from pocketbizz.backup import BackupError, backup
    from pocketbizz.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings)
    if not settings.database_url and not (settings.data_dir / "pgdata").exists():
        raise CliError(
            f"no PocketBizz data dir at {settings.data_dir} (no pgdata there): "
            "pass --data-dir, or set DATABASE_URL"
        )
    # The embedded database is shared with a `serve` running on it, else started for the dump.
    with _Database(settings) as dsn:
        try:
            summary = backup(settings, dsn, args.out, _progress("backup"))
        except BackupError as exc:
            raise CliError(str(exc)) from None
    print(
        json.dumps(
            {
                "archive": str(summary.path),
                "bytes": summary.archive_bytes,
                "migration_level": summary.migration_level,
                "objects": summary.objects,
                "missing_objects": summary.missing,
            }
        )
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pocketbizz.backup import BackupError, restore
    from pocketbizz.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings)
    try:
        summary = restore(settings, args.archive, _progress("restore"))
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(
        json.dumps(
            {
                "data_dir": str(summary.data_dir),
                "migration_level": summary.migration_level,
                "objects": summary.objects,
                "roles_created": summary.roles_created,
            }
        )
    )
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from pocketbizz.app.standalone import run

    return run(args.backend, host=args.host, port=args.port, anon_key=args.anon_key)


# --- the parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other mistake this command reports.
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def cmd_worker(args: argparse.Namespace) -> int:
    """Job workers alone, so a deployment scales them apart from the servers."""
    from pocketbizz.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings)
    if not settings.database_url:
        # The embedded database belongs to the `serve` that started it.
        raise CliError("pocketbizz worker needs DATABASE_URL (the database the servers use)")
    from pocketbizz.jobs.runtime import run_worker

    observability.configure(settings, "worker")  # Sentry, when SENTRY_DSN is set

    with _Database(settings) as dsn:
        _migrate(settings, dsn)
        with suppress(KeyboardInterrupt):
            asyncio.run(run_worker(settings, dsn, own_signals=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pocketbizz",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pocketbizz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="where the embedded database, secrets and files live "
            "(default $PB_DATA_DIR, else $XDG_DATA_HOME/pocketbizz, i.e. ~/.local/share/pocketbizz)",
        )

    serve = sub.add_parser("serve", help="run the server; prints its URL and keys once it listens")
    serve.add_argument("--host", default=None, help="default $PB_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default $PB_PORT or 8000")
    serve.add_argument("--workers", type=int, default=None, help="server processes (default 1)")
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="run no job worker in the server (then run `pocketbizz worker` apart)",
    )
    common(serve)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a job worker alone (needs DATABASE_URL)")
    common(worker)
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply pending migrations and exit")
    common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser(
        "keys",
        help="print the URL and API keys of the running server (or of the data dir)",
        description="Without --data-dir: the data dir of the running server, else the default one. "
        "Never creates a secret: with no data dir it says so and exits 2.",
    )
    keys.add_argument("--json", action="store_true")
    keys.add_argument("--host", default=None)
    keys.add_argument("--port", type=int, default=None)
    common(keys)
    keys.set_defaults(func=cmd_keys)

    metrics = sub.add_parser(
        "metrics",
        help="print the business figures (DAU, MAU, retention, churn, conversion, MRR, tenants)",
        description="From DATABASE_URL, else from the running server of the data dir. Days are "
        "Asia/Kuala_Lumpur days; definitions in docs/OPERATIONS.md.",
    )
    metrics.add_argument("--from", dest="from_date", help="YYYY-MM-DD (default: to - 29 days)")
    metrics.add_argument("--to", dest="to_date", help="YYYY-MM-DD (default: today)")
    metrics.add_argument("--json", action="store_true", help="the admin endpoint's JSON")
    common(metrics)
    metrics.set_defaults(func=cmd_metrics)

    backup = sub.add_parser(
        "backup",
        help="write the database, stored files and keys to one archive (progress on stderr)",
        description="From the embedded database of the data dir (running or not) or DATABASE_URL. "
        "The archive holds the JWT secret: keep it as safe as the data dir.",
    )
    backup.add_argument("--out", type=Path, required=True, help="the archive file to write")
    common(backup)
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser(
        "restore",
        help="restore an archive into a new (empty) data dir, then `serve --data-dir` it",
    )
    restore.add_argument("archive", type=Path, help="a file written by `pocketbizz backup`")
    common(restore)
    restore.set_defaults(func=cmd_restore)

    app = sub.add_parser("app", help="run the PocketBizz app alone against a PocketBizz server")
    app.add_argument("--backend", required=True, help="the server's URL, e.g. http://host:8000")
    app.add_argument("--host", default="127.0.0.1")
    app.add_argument("--port", type=int, default=8550)
    app.add_argument("--anon-key", default=None, help="default: the server's /app/config.json")
    app.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except CliError as exc:
        print(f"pocketbizz: {exc}", file=sys.stderr)
        code = USAGE_ERROR
    sys.exit(code)
