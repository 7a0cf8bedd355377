"""Issue 8 A.1's number: one tenant's GET latency while another tenant attacks the data API.

Phases of `duration` seconds each on one server: the victim alone; the victim while 10
attacker connections send `and=(and(and(…)))` nested 3,000 deep (refused with a 400); the
victim while 10 attacker connections send the largest query the bounds accept (an `or=` of
conditions filling `rest_max_query_bytes`, parsed and run in full). Numbers are printed, not
asserted. Run: `.venv/bin/python -m bench.rest_attack_bench [--duration 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlparse

import httpx

from bench.loadgen import Connection, Request, Result, run_closed_loop
from bench.stack import stack

ATTACKERS = 10
DEEP = 3000
QUERY_BYTES = 64 * 1024  # the default PB_REST_MAX_QUERY_BYTES


def _sign_up(url: str, anon_key: str) -> str:
    res = httpx.post(
        f"{url}/auth/v1/signup",
        headers={"apikey": anon_key},
        json={"email": f"attack-{uuid.uuid4().hex[:10]}@example.com", "password": "bench-pass-1"},
    )
    res.raise_for_status()
    token: str = res.json()["access_token"]
    return token


def _deep_path() -> str:
    tree = "(" + "and(" * (DEEP - 1) + "sku.eq.1" + ")" * DEEP
    return "/rest/v1/products?and=" + quote(tree, safe="(),.")


def _wide_path() -> str:
    head = "/rest/v1/products?select=sku&or=("
    terms: list[str] = []
    size = len(head) + 1
    i = 0
    while True:
        term = f"sku.eq.S-{i:06d}"
        if size + len(term) + 1 > QUERY_BYTES - 64:
            break
        terms.append(term)
        size += len(term) + 1
        i += 1
    return head + ",".join(terms) + ")"


async def _phase(
    name: str, host: str, port: int, victim: dict[str, str], attack: Request | None, duration: float
) -> tuple[Result, Result | None]:
    victim_conn = Connection(host, port)
    read = Request("GET", "/rest/v1/products?select=id,sku,name&order=sku&limit=20", victim)

    async def victim_op() -> int:
        return (await victim_conn.send(read))[0]

    attack_result: Result | None = None
    if attack is None:
        victim_result = await run_closed_loop(f"{name}: victim GET", [victim_op], duration)
    else:
        conns = [Connection(host, port) for _ in range(ATTACKERS)]
        request = attack

        def attacker(conn: Connection) -> Callable[[], Awaitable[int]]:
            async def op() -> int:
                return (await conn.send(request))[0]

            return op

        victim_task = run_closed_loop(f"{name}: victim GET", [victim_op], duration)
        attack_task = run_closed_loop(
            f"{name}: attacker requests", [attacker(c) for c in conns], duration
        )
        victim_result, attack_result = await asyncio.gather(victim_task, attack_task)
        for c in conns:
            c.close()
    victim_conn.close()
    return victim_result, attack_result


def _tenants(url: str, anon_key: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two tenants' headers; the victim's has 20 products."""
    victim_token, attacker_token = _sign_up(url, anon_key), _sign_up(url, anon_key)
    victim = {"apikey": anon_key, "Authorization": f"Bearer {victim_token}"}
    attacker = {"apikey": anon_key, "Authorization": f"Bearer {attacker_token}"}
    httpx.post(
        f"{url}/rest/v1/products",
        headers=victim,
        json=[
            {"sku": f"V-{i:03d}", "name": f"Item {i}", "sale_price": "1.00", "is_active": True}
            for i in range(20)
        ],
    ).raise_for_status()
    return victim, attacker


async def _run(
    url: str, victim: dict[str, str], attacker: dict[str, str], duration: float
) -> list[str]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    phases: list[tuple[str, Request | None]] = [
        ("alone", None),
        (f"deep filter x{ATTACKERS}", Request("GET", _deep_path(), attacker)),
        (f"widest accepted filter x{ATTACKERS}", Request("GET", _wide_path(), attacker)),
    ]
    lines: list[str] = []
    for name, attack in phases:
        victim_result, attack_result = await _phase(name, host, port, victim, attack, duration)
        lines.append(victim_result.line())
        if attack_result is not None:
            lines.append(attack_result.line())
    return lines


def main(duration: float = 10.0) -> list[str]:
    with stack(PB_RATE_LIMIT_PER_MINUTE="1000000000") as s:
        victim, attacker = _tenants(s.server.url, s.server.anon_key)
        return asyncio.run(_run(s.server.url, victim, attacker, duration))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    for line in main(parser.parse_args().duration):
        print(line, flush=True)
