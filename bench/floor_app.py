"""The floor for issue 12's request-path ratio: the thinnest honest app serving the same two
endpoints as PocketBizz — `GET /rest/v1/products?id=eq.X` and `POST /rest/v1/rpc/create_sale`.

Same transaction model as src/pocketbizz/db/database.py (BEGIN and role, claims and
statement_timeout set in one simple-protocol round trip; the query; COMMIT), the access token
verified per request with PyJWT, served by uvicorn configured as `pocketbizz serve` configures it.
No gateway, rate limiter, logging, metrics or query parser: what PocketBizz spends above this
app is what those cost.

    python -m bench.floor_app --dsn DSN --user authenticator --password PW --secret S --port P
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ONE_SQL = (
    "select coalesce(json_agg(t), '[]')::text from (select * from public.products where id = $1) t"
)
SALE_SQL = (
    "select public.create_sale(items => $1::jsonb, payment_method => $2, channel => $3)::text"
)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_app(dsn: str, user: str, password: str, secret: str, pool_size: int) -> Starlette:
    pool: asyncpg.Pool | None = None

    def claims_of(request: Request) -> dict[str, object] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            return jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated")
        except jwt.InvalidTokenError:
            return None

    async def run(claims: dict[str, object], sql: str, *args: object) -> str:
        assert pool is not None
        begin = (
            "begin; select set_config('role', "
            + _literal(str(claims.get("role", "anon")))
            + ", true), set_config('request.jwt.claims', "
            + _literal(orjson.dumps(claims).decode())
            + ", true), set_config('statement_timeout', '8s', true)"
        )
        async with pool.acquire() as conn:
            await conn.execute(begin)
            try:
                result: str = await conn.fetchval(sql, *args)
            except BaseException:
                await conn.execute("rollback")
                raise
            await conn.execute("commit")
        return result

    async def one_product(request: Request) -> Response:
        claims = claims_of(request)
        if claims is None:
            return JSONResponse({"message": "invalid token"}, status_code=401)
        op, _, value = request.query_params.get("id", "").partition(".")
        if op != "eq":
            return JSONResponse({"message": "id=eq.X required"}, status_code=400)
        body = await run(claims, ONE_SQL, value)
        return Response(body, media_type="application/json")

    async def create_sale(request: Request) -> Response:
        claims = claims_of(request)
        if claims is None:
            return JSONResponse({"message": "invalid token"}, status_code=401)
        args = orjson.loads(await request.body())
        try:
            body = await run(
                claims,
                SALE_SQL,
                orjson.dumps(args["items"]).decode(),
                args.get("payment_method", "cash"),
                args.get("channel", "walk-in"),
            )
        except asyncpg.PostgresError as exc:
            return JSONResponse({"code": exc.sqlstate, "message": str(exc)}, status_code=400)
        return Response(body, media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(
            dsn, user=user, password=password, min_size=pool_size, max_size=pool_size
        )
        try:
            yield
        finally:
            await pool.close()

    return Starlette(
        routes=[
            Route("/rest/v1/products", one_product, methods=["GET"]),
            Route("/rest/v1/rpc/create_sale", create_sale, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool-size", type=int, default=20)
    args = parser.parse_args()
    app = create_app(args.dsn, args.user, args.password, args.secret, args.pool_size)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    # The settings `pocketbizz serve` gives uvicorn (cli.py), minus what only it needs.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
