"""Drill: the disk under the storage dir fills up during an upload. The upload fails cleanly in
Storage's error shape (its InternalError, saying there is no space), whether the store or the
temporary file a large upload is spooled to meets the full disk; no metadata row points at
missing bytes, no partial or temporary file is left, an object being replaced keeps its old
bytes, and uploads work again once there is room.

The full disk is real: the storage dir is a tmpfs of a few hundred KiB (ENOSPC), mounted when the
test runs as root, as it does here. Elsewhere the server process gets a file-size limit instead
(RLIMIT_FSIZE: EFBIG on the write that crosses it; Python ignores SIGXFSZ), the nearest real
failure of a write that a non-root test can arrange.
"""

from __future__ import annotations

import os
import resource
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from drills.support import CALL_TIMEOUT, new_tenant
from harness import ServerProcess

CAPACITY = 512 * 1024


@contextmanager
def _small_disk(path: Path) -> Iterator[str]:
    """Yields how the disk is made small: "tmpfs" (mounted) or "rlimit" (set around the start)."""
    path.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={CAPACITY}", "tmpfs", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield "tmpfs" if mounted else "rlimit"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=True)


@contextmanager
def _server(owner_dsn: str, tmp_path: Path, how: str, **env: str) -> Iterator[ServerProcess]:
    """A server with its storage dir at `tmp_path`/storage, started under the small disk made
    as `how` says: with "rlimit" the file-size limit is set around the start (the server
    inherits it; this process does not keep it)."""
    server = ServerProcess(
        owner_dsn,
        tmp_path,
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_STORAGE_DIR": str(tmp_path / "storage"),
            **env,
        },
    )
    if how == "tmpfs":
        server.start()
    else:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (CAPACITY, hard))
        try:
            server.start()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    try:
        yield server
    finally:
        server.stop()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_no_room(res: httpx.Response, how: str, hidden: Path) -> None:
    """Storage's InternalError (it defines nothing for a full disk), saying what happened and
    nothing of the server's insides (`hidden`: the directory that filled up)."""
    assert res.status_code == 500, res.text
    assert res.json() == {
        "statusCode": "500",
        "error": "InternalError",
        "code": "InternalError",
        "message": (
            "No space left on the storage device"
            if how == "tmpfs"
            else "The object is larger than the storage device accepts"
        ),
    }
    assert res.headers["x-request-id"]
    assert "Traceback" not in res.text and str(hidden) not in res.text


def _object_names(owner_dsn: str, prefix: str) -> dict[str, str]:
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "select name, version::text from storage.objects"
            " where bucket_id = 'receipts' and name like %s",
            (f"{prefix}%",),
        ).fetchall()
    return dict(rows)


def test_storage_disk_full_fails_cleanly(owner_dsn: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    with _small_disk(storage) as how, _server(owner_dsn, tmp_path, how) as server:
        tenant = new_tenant(server, stock=1)
        headers = tenant.headers(server)
        base = f"{server.url}/storage/v1/object/receipts/{tenant.id}"
        small = os.urandom(64 * 1024)
        too_big = os.urandom(CAPACITY * 2)
        with httpx.Client(headers=headers, timeout=CALL_TIMEOUT) as http:
            kept = http.post(
                f"{base}/kept.bin", content=small, headers={"content-type": "text/plain"}
            )
            assert kept.status_code == 200, kept.text
            files_before = _files(storage)

            refused = http.post(
                f"{base}/big.bin", content=too_big, headers={"content-type": "text/plain"}
            )
            # Replacing an object with bytes that do not fit: the old ones must survive.
            replaced = http.post(
                f"{base}/kept.bin",
                content=too_big,
                headers={"content-type": "text/plain", "x-upsert": "true"},
            )
            for res in (refused, replaced):
                _assert_no_room(res, how, storage)

            # No metadata row without bytes, no partial or temporary file.
            names = _object_names(owner_dsn, f"{tenant.id}/")
            assert set(names) == {f"{tenant.id}/kept.bin"}
            assert _files(storage) == files_before
            again = http.get(f"{base}/kept.bin")
            assert again.status_code == 200 and again.content == small

            # Room again: the same upload that failed now succeeds.
            assert http.delete(f"{base}/kept.bin").status_code == 200
            fits = os.urandom(CAPACITY // 2)
            after = http.post(
                f"{base}/{uuid.uuid4()}.bin",
                content=fits,
                headers={"content-type": "text/plain"},
            )
            assert after.status_code == 200, after.text


def test_an_upload_spooled_to_a_full_temp_dir_fails_cleanly(owner_dsn: str, tmp_path: Path) -> None:
    """On one disk a large upload meets the full disk before the store does: past 1 MB it is
    spooled to a temporary file. That refusal is the same clean answer."""
    temp = tmp_path / "tmp"
    with (
        _small_disk(temp) as how,
        _server(owner_dsn, tmp_path, how, TMPDIR=str(temp)) as server,
    ):
        tenant = new_tenant(server, stock=1)
        base = f"{server.url}/storage/v1/object/receipts/{tenant.id}"
        with httpx.Client(headers=tenant.headers(server), timeout=CALL_TIMEOUT) as http:
            temp_files = _files(temp)
            refused = http.post(
                f"{base}/spooled.bin",
                content=os.urandom(4 * CAPACITY),  # past the spool's 1 MB in memory
                headers={"content-type": "text/plain"},
            )
            _assert_no_room(refused, how, temp)
            assert _object_names(owner_dsn, f"{tenant.id}/") == {}
            assert _files(temp) == temp_files
            assert _files(tmp_path / "storage") == []

            # A small upload stays in memory until the store: it still goes through.
            small = http.post(
                f"{base}/small.bin", content=b"x" * 1024, headers={"content-type": "text/plain"}
            )
            assert small.status_code == 200, small.text
