"""Backup and restore of a whole PocketBizz instance, as one tar archive.

The archive holds, each with its SHA-256 in `manifest.json` (written last):
- `database.dump`: `pg_dump --format=custom` of the database, taken in one snapshot;
- `roles.json`: the cluster-level roles the dump's owners, grants and policies name, and their
  memberships (pg_dump leaves roles out; without them a restore has no grants and no RLS roles);
- `secrets/jwt_secret` (and `secrets/authenticator_password` and `secrets/secrets_key` when the
  data dir keeps them, or PB_SECRETS_KEY): the API keys are derived from the JWT secret, so the
  same secret makes the same keys work; the secrets key seals the businesses' payment-gateway
  keys (payments/sealing.py), which a new one could not open;
  passwords are argon2 hashes in `auth.users`, inside the dump;
- `storage/{bucket}/{version}`: the bytes of every object the snapshot's `storage.objects` names.

The dump and the file list come from the same exported snapshot, so a file uploaded during the
backup is either in both or in neither. A restore goes into an empty data dir only: roles first,
then `pg_restore` in one transaction, then the files; anything it fails on leaves the dir empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from pocketbizz import __version__
from pocketbizz.backup import repository
from pocketbizz.db.embedded import EmbeddedPostgres
from pocketbizz.db.migrate import load_migrations
from pocketbizz.settings import Settings
from pocketbizz.storage.backend import ObjectMissing, create_store

FORMAT = "pocketbizz-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
ROLES = "roles.json"
SECRET_FILES = ("jwt_secret", "authenticator_password", "secrets_key")
# Every name an archive may hold besides the manifest: nothing can land outside the staging dir.
_MEMBER = re.compile(
    r"(database\.dump|roles\.json|secrets/(jwt_secret|authenticator_password|secrets_key)"
    r"|storage/[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}/[0-9a-f-]{36})"
)
_CHUNK = 1024 * 1024
# Objects up to this size are staged in memory on their way into the archive.
_SPOOL_BYTES = 8 * 1024 * 1024

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    migration_level: str
    objects: int
    object_bytes: int
    archive_bytes: int
    # Objects whose row is in the snapshot but whose bytes were gone (deleted meanwhile).
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreSummary:
    data_dir: Path
    migration_level: str
    objects: int
    roles_created: list[str]


# --- backup -----------------------------------------------------------------------------------


def backup(settings: Settings, owner_dsn: str, out: Path, progress: Progress) -> BackupSummary:
    """Write the archive to `out` (through `out.partial`, renamed when complete)."""
    out = out.resolve()
    if out.is_dir():
        raise BackupError(f"--out {out} is a directory: name the archive file")
    out.parent.mkdir(parents=True, exist_ok=True)
    secrets = _secrets(settings)
    partial = out.with_name(out.name + ".partial")
    # 0600 from the start: the archive holds the JWT secret.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            summary = asyncio.run(_write_archive(settings, owner_dsn, tar, secrets, progress))
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    size = out.stat().st_size
    progress(f"wrote {out} ({_mb(size)})")
    return replace(summary, path=out, archive_bytes=size)


async def _write_archive(
    settings: Settings,
    owner_dsn: str,
    tar: tarfile.TarFile,
    secrets: dict[str, str],
    progress: Progress,
) -> BackupSummary:
    """Everything into `tar`, the manifest last; the summary's path and size are the caller's."""
    files: dict[str, dict[str, Any]] = {}
    store = create_store(settings.storage)
    conn = await asyncpg.connect(owner_dsn)
    try:
        # The transaction stays open until every file is copied: pg_dump imports its snapshot.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await repository.export_snapshot(conn)
            server_num = await repository.server_version_num(conn)
            migrations = await repository.applied_migrations(conn)
            if not migrations:
                raise BackupError("the database has no PocketBizz schema (no migrations applied)")
            roles, memberships = await repository.roles(conn)
            objects = await repository.stored_objects(conn)

            progress(f"dumping the database (PostgreSQL {_version_text(server_num)}, one snapshot)")
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="pocketbizz-backup-") as work:
                dump = Path(work) / DUMP
                pg_dump_version = await _pg_dump(owner_dsn, snapshot, server_num, dump)
                with dump.open("rb") as handle:
                    files[DUMP] = _add(tar, DUMP, handle)
            progress(
                f"database dumped: {_mb(files[DUMP]['size'])} in {time.monotonic() - started:.1f} s"
            )
            roles_json = {
                "roles": [r.as_json() for r in roles],
                "memberships": [m.as_json() for m in memberships],
            }
            files[ROLES] = _add_bytes(tar, ROLES, json.dumps(roles_json, indent=2).encode())
            for name, value in secrets.items():
                files[f"secrets/{name}"] = _add_bytes(tar, f"secrets/{name}", value.encode())

            missing: list[str] = []
            copied_bytes = 0
            last_report = time.monotonic()
            progress(f"copying {len(objects)} stored files")
            for done, obj in enumerate(objects, start=1):
                try:
                    chunks = await store.open(obj.key)
                except ObjectMissing:
                    missing.append(obj.key)
                    progress(f"warning: the bytes of {obj.key} are gone (deleted meanwhile?)")
                    continue
                with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
                    async for chunk in chunks:
                        spool.write(chunk)
                    spool.seek(0)
                    entry = _add(tar, f"storage/{obj.key}", spool)
                entry["content_type"] = obj.content_type
                files[f"storage/{obj.key}"] = entry
                copied_bytes += entry["size"]
                if time.monotonic() - last_report > 1 or done == len(objects):
                    progress(f"files {done}/{len(objects)} ({_mb(copied_bytes)})")
                    last_report = time.monotonic()
    finally:
        await conn.close()
        await store.close()

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pocketbizz_version": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "postgres": {"server_version": _version_text(server_num), "pg_dump": pg_dump_version},
        "migrations": migrations,
        "migration_level": migrations[-1],
        "jwt_secret_from": "environment" if settings.jwt_secret else "data_dir",
        "objects": len(objects) - len(missing),
        "missing_objects": missing,
        "files": files,
    }
    _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
    return BackupSummary(
        path=Path(),
        migration_level=migrations[-1],
        objects=len(objects) - len(missing),
        object_bytes=copied_bytes,
        archive_bytes=0,
        missing=missing,
    )


def _secrets(settings: Settings) -> dict[str, str]:
    """The key material of the instance; never creates any (a backup must not invent keys)."""
    found: dict[str, str] = {}
    if settings.jwt_secret:
        found["jwt_secret"] = settings.jwt_secret
    if settings.secrets_key:
        found["secrets_key"] = settings.secrets_key
    for name in SECRET_FILES:
        path = settings.data_dir / name
        if name not in found and path.exists():
            found[name] = path.read_text().strip()
    if "jwt_secret" not in found:
        raise BackupError(
            f"no JWT secret: neither PB_JWT_SECRET nor {settings.data_dir / 'jwt_secret'}; "
            "without it the restored instance's keys would differ (pass --data-dir)"
        )
    return found


def _add(tar: tarfile.TarFile, name: str, source: IO[bytes]) -> dict[str, Any]:
    """Append `source` (from its current position to its end) as `name`; its size and hash."""
    digest = hashlib.sha256()
    size = 0
    start = source.tell()
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    source.seek(start)
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, source)
    return {"size": size, "sha256": digest.hexdigest()}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    return _add(tar, name, io.BytesIO(data))


async def _pg_dump(dsn: str, snapshot: str, server_num: int, target: Path) -> str:
    tool, version = await _pg_tool("pg_dump", server_num // 10000)
    url, env = _libpq(dsn)
    await _run(
        [
            str(tool),
            "--format=custom",
            f"--snapshot={snapshot}",
            "--no-password",
            f"--file={target}",
            f"--dbname={url}",
        ],
        env,
        "pg_dump",
    )
    return version


# --- restore ----------------------------------------------------------------------------------


def restore(settings: Settings, archive: Path, progress: Progress) -> RestoreSummary:
    if settings.database_url:
        raise BackupError(
            "restore makes the embedded database of --data-dir; unset DATABASE_URL "
            "(for another server, pg_restore the archive's database.dump after creating roles)"
        )
    data_dir = settings.data_dir.resolve()
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(
            f"data dir {data_dir} is not empty: restore only into a new or empty directory"
        )
    with _open_archive(archive) as tar:
        manifest = _read_manifest(tar, archive)
        _check_migrations(manifest)
        created = not data_dir.exists()
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            return asyncio.run(_restore_into(settings, data_dir, tar, manifest, progress))
        except BaseException:
            _empty(data_dir, remove=created)
            raise


async def _restore_into(
    settings: Settings,
    data_dir: Path,
    tar: tarfile.TarFile,
    manifest: dict[str, Any],
    progress: Progress,
) -> RestoreSummary:
    staging = data_dir / ".restore"
    progress(f"checking and unpacking {len(manifest['files'])} archive members")
    _extract_verified(tar, manifest, staging)
    for name in SECRET_FILES:
        staged = staging / "secrets" / name
        if staged.exists():
            target = data_dir / name
            staged.replace(target)
            target.chmod(0o600)
    restored_secret = (data_dir / "jwt_secret").read_text().strip()
    if settings.jwt_secret and settings.jwt_secret != restored_secret:
        # The environment wins over the data dir: keys would differ while it is set.
        progress(
            "warning: PB_JWT_SECRET differs from the backup's secret; unset it to keep the keys"
        )

    roles = json.loads((staging / ROLES).read_text())
    embedded = EmbeddedPostgres(data_dir / "pgdata")
    progress("starting the embedded database")
    dsn = embedded.start()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            target_num = await repository.server_version_num(conn)
            created = await repository.create_roles(
                conn,
                [repository.Role(**r) for r in roles["roles"]],
                [repository.Membership(**m) for m in roles["memberships"]],
            )
        finally:
            await conn.close()
        progress(f"roles created: {', '.join(created) or 'none'}; restoring the database")
        started = time.monotonic()
        tool, _ = await _pg_tool("pg_restore", target_num // 10000)
        url, env = _libpq(dsn)
        await _run(
            [
                str(tool),
                "--exit-on-error",
                "--single-transaction",
                "--no-password",
                f"--dbname={url}",
                str(staging / DUMP),
            ],
            env,
            "pg_restore",
        )
        progress(f"database restored in {time.monotonic() - started:.1f} s")
    finally:
        embedded.stop()

    objects = {
        name.removeprefix("storage/"): entry
        for name, entry in manifest["files"].items()
        if name.startswith("storage/")
    }
    store = create_store(settings.model_copy(update={"data_dir": data_dir}).storage)
    try:
        last_report = time.monotonic()
        for done, (key, entry) in enumerate(sorted(objects.items()), start=1):
            staged = staging / "storage" / key
            with staged.open("rb") as handle:
                await store.put(key, handle, entry.get("content_type", "application/octet-stream"))
            staged.unlink()
            if time.monotonic() - last_report > 1 or done == len(objects):
                progress(f"files {done}/{len(objects)}")
                last_report = time.monotonic()
    finally:
        await store.close()
    shutil.rmtree(staging)
    return RestoreSummary(
        data_dir=data_dir,
        migration_level=str(manifest["migration_level"]),
        objects=len(objects),
        roles_created=created,
    )


def _open_archive(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from None


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        handle = tar.extractfile(member)
        manifest: dict[str, Any] = json.loads(handle.read()) if handle else {}
    except (KeyError, ValueError, tarfile.TarError):
        manifest = {}
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a PocketBizz backup (no manifest)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{archive} is backup format {manifest.get('format_version')}; this PocketBizz "
            f"({__version__}) reads format {FORMAT_VERSION}"
        )
    return manifest


def _check_migrations(manifest: dict[str, Any]) -> None:
    """A backup from a newer PocketBizz has schema this code does not know; an older one is
    fine (`serve` applies the newer migrations on top, as on any upgrade)."""
    known = {m.version for m in load_migrations()}
    unknown = sorted(set(manifest["migrations"]) - known)
    if unknown:
        raise BackupError(
            f"the backup has migrations this PocketBizz ({__version__}) does not know "
            f"({', '.join(unknown)}): restore with the version that made it"
        )


def _extract_verified(tar: tarfile.TarFile, manifest: dict[str, Any], staging: Path) -> None:
    """Every member the manifest lists, with its size and SHA-256 checked; anything else refused."""
    expected: dict[str, dict[str, Any]] = manifest["files"]
    seen: set[str] = set()
    for member in tar:
        if member.name == MANIFEST:
            continue
        if member.name not in expected or not _MEMBER.fullmatch(member.name):
            raise BackupError(f"unexpected archive member {member.name!r}: not restoring")
        if not member.isfile():
            raise BackupError(f"archive member {member.name!r} is not a file: not restoring")
        source = tar.extractfile(member)
        assert source is not None  # a regular file
        target = staging / member.name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with target.open("wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        entry = expected[member.name]
        if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
            raise BackupError(f"archive member {member.name} is damaged (checksum differs)")
        seen.add(member.name)
    absent = sorted(set(expected) - seen)
    if absent:
        raise BackupError(f"the archive lacks {len(absent)} member(s), e.g. {absent[0]}")


def _empty(data_dir: Path, *, remove: bool) -> None:
    """Undo a failed restore: the dir was empty (or absent) before it started."""
    if remove:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# --- PostgreSQL client tools --------------------------------------------------------------------


async def _pg_tool(name: str, server_major: int) -> tuple[Path, str]:
    """The PostgreSQL tool of the lowest major version that can talk to the server: pg_dump
    refuses a server newer than itself. The embedded install's first, then PATH, then Debian's."""
    usable: list[tuple[int, Path, str]] = []
    for path in _tool_candidates(name):
        out = await _run([str(path), "--version"], None, name)
        found = re.search(r"(\d+)\.(\d+)", out)
        if found and int(found.group(1)) >= server_major:
            usable.append((int(found.group(1)), path, found.group(0)))
    if not usable:
        raise BackupError(f"no {name} of version {server_major} or newer found (install it)")
    _major, path, version = min(usable, key=lambda u: u[0])
    return path, version


def _tool_candidates(name: str) -> list[Path]:
    import pgserver._commands

    candidates = [pgserver._commands.POSTGRES_BIN_PATH / name]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return [path for path in candidates if path.exists()]


def _libpq(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password (which would show in `ps`), and PGPASSWORD carrying it."""
    env = dict(os.environ)
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(parts.password)
    host = parts.netloc.rpartition("@")[2]
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), env


async def _run(command: list[str], env: dict[str, str] | None, what: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{what} failed: {' / '.join(lines[-3:]) or f'exit {proc.returncode}'}")
    return stdout.decode(errors="replace")


def _version_text(server_num: int) -> str:
    return f"{server_num // 10000}.{server_num % 10000}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
