"""The object stores behind Storage: local disk and S3 (against a local S3-protocol server)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from storage.s3_local import LocalS3

from pocketbizz.storage.backend import LocalDiskStore, ObjectMissing, ObjectStore
from pocketbizz.storage.s3 import EMPTY_SHA256, S3Store, sigv4_headers


def test_sigv4_matches_the_aws_documented_example() -> None:
    # "Example: GET Object" from the AWS S3 SigV4 documentation (header-based auth).
    headers = sigv4_headers(
        method="GET",
        url="https://examplebucket.s3.amazonaws.com/test.txt",
        headers={"Range": "bytes=0-9"},
        payload_hash=EMPTY_SHA256,
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        now=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


async def _exercise(store: ObjectStore) -> None:
    payload = b"x" * (2 * 1024 * 1024 + 7)  # more than one chunk
    stored = await store.put("bucket/v1", io.BytesIO(payload), "image/png")
    assert stored.size == len(payload)
    assert stored.etag == hashlib.md5(payload).hexdigest()
    assert b"".join([c async for c in await store.open("bucket/v1")]) == payload

    await store.put("bucket/v1", io.BytesIO(b"replaced"), "text/plain")
    assert b"".join([c async for c in await store.open("bucket/v1")]) == b"replaced"

    await store.copy("bucket/v1", "bucket/v2")
    await store.delete(["bucket/v1", "bucket/never-existed"])
    with pytest.raises(ObjectMissing):
        await store.open("bucket/v1")
    assert b"".join([c async for c in await store.open("bucket/v2")]) == b"replaced"
    with pytest.raises(ObjectMissing):
        await store.copy("bucket/v1", "bucket/v3")


async def test_local_disk_store(tmp_path: Path) -> None:
    store = LocalDiskStore(tmp_path / "storage")
    await _exercise(store)
    # Atomic writes leave no temp files behind, and keys cannot leave the root.
    assert not [p for p in (tmp_path / "storage").rglob(".upload-*")]
    with pytest.raises(ValueError):
        await store.open("../../etc/passwd")


async def test_s3_store_against_an_s3_protocol_server() -> None:
    with LocalS3("test-access", "test-secret-key") as s3:
        store = S3Store(
            endpoint=s3.endpoint,
            bucket="pb-objects",
            access_key="test-access",
            secret_key="test-secret-key",
            region="us-east-1",
        )
        try:
            await _exercise(store)
            assert "PUT /pb-objects/bucket/v1" in s3.requests
            # A wrong secret is refused by the server, and surfaces as an error.
            bad = S3Store(
                endpoint=s3.endpoint,
                bucket="pb-objects",
                access_key="test-access",
                secret_key="wrong",
                region="us-east-1",
            )
            with pytest.raises(RuntimeError):
                await bad.put("bucket/v9", io.BytesIO(b"x"), "text/plain")
            await bad.close()
        finally:
            await store.close()
