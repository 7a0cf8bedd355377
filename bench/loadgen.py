"""A small closed-loop HTTP/1.1 load generator on raw asyncio streams.

httpx costs more CPU per request than the server under test on this 2-core machine, which
would measure the client; this keeps one keep-alive connection per virtual client and does
the minimum of parsing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    @classmethod
    def json(cls, method: str, path: str, payload: object, headers: dict[str, str]) -> Request:
        return cls(
            method, path, {**headers, "Content-Type": "application/json"}, orjson.dumps(payload)
        )


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, req: Request) -> tuple[int, bytes]:
        """One request; an idle keep-alive connection the server closed is reopened once."""
        fresh = self.writer is None
        if fresh:
            await self._open()
        try:
            return await self._exchange(req)
        except (asyncio.IncompleteReadError, ConnectionError):
            if fresh:
                raise
            self.close()
            await self._open()
            return await self._exchange(req)

    async def _exchange(self, req: Request) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        lines = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in req.headers.items()]
        body = req.body or b""
        if req.body is not None or req.method in ("POST", "PATCH", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            data = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
            return status, bytes(data)
        if req.method == "HEAD":
            return status, b""
        return status, await self.reader.readexactly(length) if length else b""

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:<48} {self.rps:9.1f} req/s  p50 {self.pct(50):7.2f} ms  "
            f"p95 {self.pct(95):7.2f} ms  p99 {self.pct(99):7.2f} ms  "
            f"n={self.requests} statuses={dict(self.statuses)}"
        )


async def run_closed_loop(
    name: str,
    workers: Sequence[Callable[[], Awaitable[int]]],
    duration: float,
) -> Result:
    """Each worker is a coroutine factory doing one operation and returning a status code."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + duration

    async def loop(op: Callable[[], Awaitable[int]]) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status = await op()
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in workers))
    elapsed = time.perf_counter() - started
    return Result(name, len(latencies), elapsed, latencies, statuses)


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered):.2f} ms  p95 {p95:.2f} ms  n={len(ordered)}"
