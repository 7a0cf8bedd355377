"""How close can a sale come to issue 12's target here? The one-product read against
create_sale and against a plain sale function, with and without the schema's guards.

Issue 12 asks for create_sale at ≥ 25% of the one-product read rate, and says that a plain,
correct sale function (lock the products in id order, insert the sale, its items and its stock
movements, update the stock; no triggers) reached about a third of a *50-product list* read.
This measures that plain function beside create_sale against the *one-product* read the target
names, on two embedded PostgreSQL servers built from this tree's migrations and definitions:

- "as shipped": the schema as it is;
- "no guards": the same, then every CHECK constraint and every row trigger (all but the
  foreign keys' internal ones) dropped from the tables a sale writes — sales, sale_items,
  products, stock_movements, sale_number_counters. Not a schema anyone should run: it shows
  what the numeric guards (migration 0008), the keep-scale, realtime, updated_at, analytics and
  append-only triggers cost a sale, and the ceiling without them.

On each, in alternating blocks (so the three share the machine's load as it changes), 20
clients each run the one-product read, `create_sale` (3 lines, card) and `pb_bench.plain_sale`
(3 lines), one call per transaction as `authenticated` with the server's transaction model:
with the asyncpg loop of bench/capacity_bench.py (one round trip for BEGIN and the settings),
and with pgbench (`-M prepared`, 4 round trips: BEGIN, the settings, the call, COMMIT), the C
client the issue measured with. pgbench is the one shipped with the embedded server.

The plain function is correct but does only what the issue lists: it takes the tenant from
auth.uid(), locks the products in id order, numbers the sale from the tenant's counter (gapless),
writes the sale, its lines and one ledger row per line, and moves the stock by the same amount.
It does not validate the items, check stock, compute tax, discounts or rounding, honour
client_ref, check plan limits, tell realtime, or return the sale (it returns its id).

    python -m bench.sale_ceiling [SECONDS] [TENANTS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import orjson
import pgserver

from bench.capacity_bench import ONE_SQL, SALE_SQL, _sale_items, _Tenant, direct_runner
from bench.data import generate, selling_tenants, tenant_ids
from bench.loadgen import Result, run_closed_loop
from bench.stack import AUTHENTICATOR_PASSWORD
from pocketbizz.db import apply_migrations

CLIENTS = 20

PLAIN_SALE = """
create schema pb_bench;
grant usage on schema pb_bench to authenticated;
create function pb_bench.plain_sale(items jsonb, payment_method text, channel text)
returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid  uuid := auth.uid();
    v_id   uuid := gen_random_uuid();
    v_seq  bigint;
    v_total numeric;
begin
    with lines as (
        select (x ->> 'product_id')::uuid as product_id, (x ->> 'quantity')::numeric as quantity
        from jsonb_array_elements(items) x
    ), locked as materialized (
        select p.id, p.sale_price
        from public.products p
        where p.business_owner_id = v_uid
          and p.id = any(array(select l.product_id from lines l))
        order by p.id
        for update
    )
    select sum(round(l.quantity * k.sale_price, 2)) into v_total
    from lines l join locked k on k.id = l.product_id;
    insert into public.sale_number_counters as c (business_owner_id, period, last_value)
    values (v_uid, 'all', 1)
    on conflict (business_owner_id, period) do update set last_value = c.last_value + 1
    returning c.last_value into v_seq;
    insert into public.sales (business_owner_id, id, sale_number, channel, total_amount,
                              final_amount, payment_method)
    values (v_uid, v_id, 'P' || v_seq, channel, v_total, v_total, payment_method);
    insert into public.sale_items (business_owner_id, sale_id, line_no, product_id,
                                   product_name, quantity, unit_price, subtotal, unit_cost)
    select v_uid, v_id, e.ord, p.id, p.name, (e.x ->> 'quantity')::numeric, p.sale_price,
           round((e.x ->> 'quantity')::numeric * p.sale_price, 2), p.cost_price
    from jsonb_array_elements(items) with ordinality e(x, ord)
    join public.products p
      on p.business_owner_id = v_uid and p.id = (e.x ->> 'product_id')::uuid;
    update public.products p
    set current_stock = p.current_stock - (e.x ->> 'quantity')::numeric, updated_at = now()
    from jsonb_array_elements(items) e(x)
    where p.business_owner_id = v_uid and p.id = (e.x ->> 'product_id')::uuid;
    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost)
    select v_uid, p.id, 'sale', v_id, 'out', (e.x ->> 'quantity')::numeric, p.cost_price
    from jsonb_array_elements(items) e(x)
    join public.products p
      on p.business_owner_id = v_uid and p.id = (e.x ->> 'product_id')::uuid;
    return v_id;
end
$$;
alter function pb_bench.plain_sale(jsonb, text, text) owner to pb_definer;
revoke execute on function pb_bench.plain_sale(jsonb, text, text) from public;
grant execute on function pb_bench.plain_sale(jsonb, text, text) to authenticated;
"""
PLAIN_SQL = "select pb_bench.plain_sale($1::jsonb, $2, $3)::text"
# The tenant's products, as GET /rest/v1/products?limit=50 reads them (RLS picks the tenant).
LIST_SQL = (
    "select coalesce(json_agg(t), '[]')::text from (select * from public.products limit 50) t"
)

SALE_TABLES = "'{sales,sale_items,products,stock_movements,sale_number_counters}'"
NO_GUARDS = f"""
do $$
declare
    r record;
begin
    for r in select k.conrelid::regclass as t, k.conname
             from pg_catalog.pg_constraint k
             join pg_catalog.pg_class c on c.oid = k.conrelid
             where k.contype = 'c' and c.relnamespace = 'public'::regnamespace
               and c.relname = any({SALE_TABLES}::text[]) loop
        execute format('alter table %s drop constraint %I', r.t, r.conname);
    end loop;
    for r in select g.tgrelid::regclass as t, g.tgname
             from pg_catalog.pg_trigger g
             join pg_catalog.pg_class c on c.oid = g.tgrelid
             where not g.tgisinternal and c.relnamespace = 'public'::regnamespace
               and c.relname = any({SALE_TABLES}::text[]) loop
        execute format('drop trigger %I on %s', r.tgname, r.t);
    end loop;
end
$$;
"""

Op = Callable[[], Awaitable[int]]


def _ops(pool: asyncpg.Pool, tenants: list[_Tenant]) -> dict[str, list[Op]]:
    """The asyncpg loop of bench/capacity_bench.py, with the plain sale beside the other two."""
    ops: dict[str, list[Op]] = {"read": [], "list": [], "create_sale": [], "plain": []}
    for t in tenants:
        run = direct_runner(pool, t)

        async def read(run: Callable[..., Awaitable[int]] = run, t: _Tenant = t) -> int:
            return await run(ONE_SQL, uuid.UUID(random.choice(t.products)))

        async def listing(run: Callable[..., Awaitable[int]] = run) -> int:
            return await run(LIST_SQL)

        async def sale(
            run: Callable[..., Awaitable[int]] = run, t: _Tenant = t, sql: str = SALE_SQL
        ) -> int:
            return await run(sql, orjson.dumps(_sale_items(t.products)).decode(), "card", "walk-in")

        async def plain(run: Callable[..., Awaitable[int]] = run, t: _Tenant = t) -> int:
            return await sale(run, t, PLAIN_SQL)

        ops["read"].append(read)
        ops["list"].append(listing)
        ops["create_sale"].append(sale)
        ops["plain"].append(plain)
    return ops


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pgbench_scripts(directory: Path, tenants: list[_Tenant]) -> dict[str, Path]:
    """Each pgbench client acts as one tenant (its claims and products picked by client_id)."""
    claims = "array[" + ",".join(_literal(json.dumps(t.claims)) for t in tenants) + "]"
    rows = ",".join("{" + ",".join(t.products[:50]) + "}" for t in tenants)
    products = _literal("{" + rows + "}") + "::uuid[]"
    begin = (
        "begin;\nselect set_config('role', 'authenticated', true), "
        f"set_config('request.jwt.claims', ({claims})[:c], true), "
        "set_config('statement_timeout', '8s', true);\n"
    )
    items = "jsonb_build_array(" + ", ".join(
        f"jsonb_build_object('product_id', ({products})[:c][:k + {n}], 'quantity', {n + 1})"
        for n in range(3)
    )
    items += ")"
    bodies = {
        "read": "\\set k random(1, 50)\n"
        + begin
        + "select coalesce(json_agg(t), '[]')::text from (select * from public.products"
        f" where id = ({products})[:c][:k]) t;\ncommit;\n",
        "list": begin + LIST_SQL + ";\ncommit;\n",
        "create_sale": "\\set k random(1, 48)\n"
        + begin
        + f"select public.create_sale(items => {items}, payment_method => 'card',"
        " channel => 'walk-in')::text;\ncommit;\n",
        "plain": "\\set k random(1, 48)\n"
        + begin
        + f"select pb_bench.plain_sale({items}, 'card', 'walk-in')::text;\ncommit;\n",
    }
    scripts = {}
    for name, body in bodies.items():
        scripts[name] = directory / f"{name}.sql"
        scripts[name].write_text("\\set c :client_id + 1\n" + body)
    return scripts


def _pgbench_binary() -> Path | None:
    found = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    return found if found.exists() else None


def _pgbench(binary: Path, dsn: str, script: Path, seconds: float) -> float:
    """Transactions per second, or an error naming what failed (no failed transaction counts)."""
    host = re.search(r"host=([^&]+)", dsn)
    done = subprocess.run(
        [
            *(str(binary), "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", "2"),
            *("-T", str(max(1, round(seconds))), "-f", str(script)),
            *("-h", host.group(1) if host else "127.0.0.1", "-U", "authenticator", "postgres"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": AUTHENTICATOR_PASSWORD},
        check=False,
    )
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    if done.returncode != 0 or not tps or (failed and failed.group(1) != "0"):
        raise RuntimeError(
            f"pgbench {script.name} failed:\n{done.stdout[-800:]}{done.stderr[-800:]}"
        )
    return float(tps.group(1))


async def _measure(
    label: str, dsn: str, tenants: int, seconds: float, rounds: int, workdir: Path
) -> list[str]:
    await generate(dsn, tenants=tenants)
    owners = await tenant_ids(dsn, CLIENTS)
    products = await selling_tenants(dsn, owners)
    sellers = [_Tenant(o, "x" * 40, products[o]) for o in owners]
    pool = await asyncpg.create_pool(
        dsn, user="authenticator", password=AUTHENTICATOR_PASSWORD, min_size=20, max_size=20
    )
    names = ("read", "list", "create_sale", "plain")
    loop: dict[str, list[Result]] = {n: [] for n in names}
    bench: dict[str, list[float]] = {n: [] for n in names}
    binary = _pgbench_binary()
    scripts = _pgbench_scripts(workdir, sellers)
    try:
        ops = _ops(pool, sellers)
        for name in names:  # statement caches, pools and plans warm before anything is timed
            await run_closed_loop("warm-up", ops[name], 2.0)
        owner = await asyncpg.connect(dsn)
        try:
            await owner.execute("analyze public.sales, public.sale_items, public.stock_movements")
        finally:
            await owner.close()
        for r in range(rounds):
            order = names if r % 2 == 0 else tuple(reversed(names))
            for name in order:
                loop[name].append(await run_closed_loop(name, ops[name], seconds))
                if binary is not None:
                    bench[name].append(_pgbench(binary, dsn, scripts[name], seconds))
    finally:
        await pool.close()
    rate = {n: sum(r.requests for r in loop[n]) / sum(r.seconds for r in loop[n]) for n in names}
    lines = [_rates_line(f"{label}, asyncpg loop", rate)]
    if binary is None:
        lines.append(f"{label}, pgbench: not found beside the embedded server")
    else:
        lines.append(
            _rates_line(f"{label}, pgbench", {n: sum(v) / len(v) for n, v in bench.items()})
        )
    return lines


def _rates_line(label: str, rate: dict[str, float]) -> str:
    """Rates per second, and each sale's share of the one-product read and of the list read."""
    sales = ", ".join(
        f"{name} {rate[key]:7.1f}/s ({rate[key] / rate['read']:5.1%} of the read, "
        f"{rate[key] / rate['list']:5.1%} of the list)"
        for key, name in (("create_sale", "create_sale"), ("plain", "plain sale"))
    )
    return f"{label:<26} read {rate['read']:8.1f}/s, 50-product list {rate['list']:7.1f}/s, {sales}"


async def _variant(
    label: str, extra_sql: str, tenants: int, seconds: float, rounds: int, tmp: Path
) -> list[str]:
    workdir = tmp / label.replace(" ", "-")
    workdir.mkdir()
    pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    try:
        dsn = str(pg.get_uri())
        await apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD)
        owner = await asyncpg.connect(dsn)
        try:
            await owner.execute(PLAIN_SALE + extra_sql)
        finally:
            await owner.close()
        return await _measure(label, dsn, tenants, seconds, rounds, workdir)
    finally:
        pg.cleanup()


def main(seconds: float = 5.0, tenants: int = 1000, rounds: int = 2) -> list[str]:
    lines = [
        f"{CLIENTS} clients, {tenants:,} tenants × 50 products, {rounds} rounds of {seconds:.0f} s"
        " per phase, one call per transaction as authenticated (target: create_sale ≥ 25% of"
        " the read)"
    ]
    with tempfile.TemporaryDirectory(prefix="pb-ceiling-") as tmp:
        for label, extra in (("as shipped", ""), ("no guards", NO_GUARDS)):
            lines += asyncio.run(_variant(label, extra, tenants, seconds, rounds, Path(tmp)))
    return lines


if __name__ == "__main__":
    args = sys.argv[1:]
    for line in main(
        float(args[0]) if args else 5.0,
        int(args[1]) if len(args) > 1 else 1000,
        int(args[2]) if len(args) > 2 else 2,
    ):
        print(line, flush=True)
