"""The S3-compatible object store (AWS S3, MinIO, R2...): plain httpx and AWS Signature V4.

Path-style URLs (`{endpoint}/{bucket}/{key}`) work with every S3-compatible server. Payloads are
sent as UNSIGNED-PAYLOAD so a large upload is streamed once rather than hashed twice.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import BinaryIO
from urllib.parse import quote, urlsplit

import anyio.to_thread
import httpx

from pocketbizz.storage.backend import CHUNK_BYTES, ObjectMissing, StoredObject

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _uri_encode(value: str, *, keep_slash: bool) -> str:
    return quote(value, safe="/~" if keep_slash else "~")


def sigv4_headers(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to add to a request so that S3 accepts it (Authorization and x-amz-*)."""
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    host = parts.netloc
    all_headers = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    all_headers.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    signed = sorted(all_headers)
    query_pairs = []
    for pair in filter(None, parts.query.split("&")):
        name, _, value = pair.partition("=")
        query_pairs.append(
            (_uri_encode(name, keep_slash=False), _uri_encode(value, keep_slash=False))
        )
    canonical_request = "\n".join(
        [
            method.upper(),
            # The path arrives already percent-encoded by the caller.
            parts.path or "/",
            "&".join(f"{k}={v}" for k, v in sorted(query_pairs)),
            "".join(f"{name}:{all_headers[name]}\n" for name in signed),
            ";".join(signed),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for step in (region, service, "aws4_request"):
        key = _hmac(key, step)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        ),
    }


class S3Store:
    def __init__(
        self, *, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    def _url(self, key: str) -> str:
        return f"{self.endpoint}/{_uri_encode(self.bucket, keep_slash=False)}/" + _uri_encode(
            key, keep_slash=True
        )

    def _signed(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        payload_hash: str = EMPTY_SHA256,
    ) -> dict[str, str]:
        base = dict(headers or {})
        base.update(
            sigv4_headers(
                method=method,
                url=url,
                headers=base,
                payload_hash=payload_hash,
                access_key=self.access_key,
                secret_key=self.secret_key,
                region=self.region,
                now=datetime.now(UTC),
            )
        )
        return base

    async def put(self, key: str, source: BinaryIO, content_type: str) -> StoredObject:
        size, etag = await anyio.to_thread.run_sync(_measure, source)

        async def body() -> AsyncIterator[bytes]:
            source.seek(0)
            while chunk := await anyio.to_thread.run_sync(source.read, CHUNK_BYTES):
                yield chunk

        url = self._url(key)
        headers = self._signed(
            "PUT",
            url,
            {"content-type": content_type, "content-length": str(size)},
            UNSIGNED_PAYLOAD,
        )
        response = await self.client.put(url, content=body(), headers=headers)
        _raise_for(response, key)
        return StoredObject(size=size, etag=etag)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        url = self._url(key)
        request = self.client.build_request("GET", url, headers=self._signed("GET", url))
        response = await self.client.send(request, stream=True)
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            _raise_for(response, key)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    yield chunk
            finally:
                await response.aclose()

        return chunks()

    async def copy(self, source_key: str, target_key: str) -> None:
        url = self._url(target_key)
        source = "/" + _uri_encode(f"{self.bucket}/{source_key}", keep_slash=True)
        headers = self._signed("PUT", url, {"x-amz-copy-source": source})
        response = await self.client.put(url, headers=headers)
        _raise_for(response, source_key)
        # S3 may answer 200 with an error document for a failed copy.
        if b"<Error>" in response.content:
            raise RuntimeError(f"S3 copy failed: {response.text[:200]}")

    async def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            url = self._url(key)
            response = await self.client.delete(url, headers=self._signed("DELETE", url))
            if response.status_code not in (200, 204, 404):
                _raise_for(response, key)

    async def close(self) -> None:
        await self.client.aclose()


def _measure(source: BinaryIO) -> tuple[int, str]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    source.seek(0)
    while chunk := source.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _raise_for(response: httpx.Response, key: str) -> None:
    if response.status_code == 404:
        raise ObjectMissing(key)
    if response.status_code >= 300:
        raise RuntimeError(f"S3 answered {response.status_code}: {response.text[:200]}")
