"""Storage throughput: upload and download MB/s for a 1 MB file, against a running server.

Starts nothing itself. Give it the server and a user:

    python -m bench.storage_bench --url http://127.0.0.1:8000 --anon-key KEY \
        (--email E --password P | --access-token T | --sign-up) [--iterations 50]

Uploads go as the official client sends them (multipart, x-upsert) into the user's own
folder of the private `receipts` bucket; downloads are authenticated GETs. One keep-alive
connection, requests one after another, so the figure is per-client throughput.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import time
import uuid
from dataclasses import dataclass

import httpx
from supabase import create_client

MB = 1024 * 1024


@dataclass
class Throughput:
    operation: str
    iterations: int
    megabytes_per_second: float
    p50_ms: float
    p95_ms: float

    def line(self) -> str:
        return (
            f"storage {self.operation:<8} {self.megabytes_per_second:8.1f} MB/s  "
            f"(1 MB x {self.iterations}, p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms)"
        )


def _user_id(access_token: str) -> str:
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def sign_in(url: str, anon_key: str, email: str | None, password: str | None) -> str:
    client = create_client(url, anon_key)
    if email and password:
        session = client.auth.sign_in_with_password({"email": email, "password": password})
    else:
        address = f"bench-storage-{uuid.uuid4().hex[:10]}@example.com"
        session = client.auth.sign_up({"email": address, "password": "bench-password-123"})
    assert session.session is not None, "no session: is email confirmation switched on?"
    return session.session.access_token


def _summary(operation: str, seconds: list[float]) -> Throughput:
    ordered = sorted(seconds)
    return Throughput(
        operation=operation,
        iterations=len(seconds),
        megabytes_per_second=len(seconds) / sum(seconds),
        p50_ms=statistics.median(ordered) * 1000,
        p95_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
    )


def measure(
    url: str, anon_key: str, access_token: str, iterations: int = 20, bucket: str = "receipts"
) -> list[Throughput]:
    folder = f"{_user_id(access_token)}/bench-{uuid.uuid4().hex[:8]}"
    headers = {"apikey": anon_key, "Authorization": f"Bearer {access_token}"}
    payload = os.urandom(MB)
    uploads: list[float] = []
    downloads: list[float] = []
    names = [f"{folder}/file-{i}.bin" for i in range(iterations)]
    base = f"{url.rstrip('/')}/storage/v1/object"
    with httpx.Client(headers=headers, timeout=60) as http:
        for name in names:
            started = time.perf_counter()
            res = http.post(
                f"{base}/{bucket}/{name}",
                files={"file": ("file.bin", payload, "application/octet-stream")},
                data={"cacheControl": "3600"},
                headers={"x-upsert": "true"},
            )
            uploads.append(time.perf_counter() - started)
            res.raise_for_status()
        for name in names:
            started = time.perf_counter()
            res = http.get(f"{base}/{bucket}/{name}")
            downloads.append(time.perf_counter() - started)
            res.raise_for_status()
            assert len(res.content) == MB
        for start in range(0, len(names), 100):
            http.request(
                "DELETE", f"{base}/{bucket}", json={"prefixes": names[start : start + 100]}
            ).raise_for_status()
    return [_summary("upload", uploads), _summary("download", downloads)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--anon-key", required=True)
    parser.add_argument("--access-token")
    parser.add_argument("--email")
    parser.add_argument("--password")
    parser.add_argument("--sign-up", action="store_true", help="use a fresh throwaway user")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--bucket", default="receipts")
    args = parser.parse_args()
    token = args.access_token
    if not token:
        if not (args.sign_up or (args.email and args.password)):
            parser.error("give --access-token, --email and --password, or --sign-up")
        token = sign_in(args.url, args.anon_key, args.email, args.password)
    for result in measure(args.url, args.anon_key, token, args.iterations, args.bucket):
        print(result.line())


if __name__ == "__main__":
    main()
