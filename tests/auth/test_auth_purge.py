"""The periodic purge deletes what can no longer be used (spent refresh tokens after a day,
sessions idle past the timeout, expired mailed tokens, old tombstones) and nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from harness import TEST_JWT_SECRET, ServerProcess
from supabase import create_client

from pocketbizz.auth.runtime import purge_once
from pocketbizz.db import Database
from pocketbizz.settings import Settings


async def test_purge_removes_only_the_expired(
    server: ServerProcess, owner_dsn: str, owner_pool: asyncpg.Pool, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    uid = uuid.UUID(user.id)
    idle = create_client(server.url, server.anon_key)
    idle_session = idle.auth.sign_in_with_password(
        {"email": user.email, "password": user.password}
    ).session
    assert idle_session is not None
    user.client.auth.refresh_session()  # one spent refresh token in the live session
    async with owner_pool.acquire() as conn:
        idle_id = await conn.fetchval(
            "select session_id from auth.refresh_tokens"
            " where token_hash = encode(sha256($1), 'hex')",
            idle_session.refresh_token.encode(),
        )
        live_id = await conn.fetchval(
            "select id from auth.sessions where user_id = $1 and id <> $2", uid, idle_id
        )
        # Age them: the idle session unused for 91 days, the spent token spent 25 hours ago.
        await conn.execute(
            "update auth.sessions set created_at = now() - interval '91 days', refreshed_at = null"
            " where id = $1",
            idle_id,
        )
        await conn.execute(
            "update auth.refresh_tokens set updated_at = now() - interval '25 hours'"
            " where session_id = $1 and revoked",
            live_id,
        )
        spent_recently = await conn.fetchval(
            "insert into auth.refresh_tokens (token_hash, user_id, session_id, revoked)"
            " values ($1, $2, $3, true) returning id",
            uuid.uuid4().hex,
            uid,
            live_id,
        )
        await conn.execute(
            "insert into auth.one_time_tokens (user_id, token_type, token_hash, relates_to,"
            " created_at) values ($1, 'recovery_token', 'x', $2, now() - interval '2 hours')",
            uid,
            user.email,
        )
        old_tombstone, new_tombstone = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "insert into auth.revocations (session_id, user_id, revoked_at) values"
            " ($1, $3, now() - interval '3 hours'), ($2, $3, now())",
            old_tombstone,
            new_tombstone,
            uid,
        )

    settings = Settings(jwt_secret=TEST_JWT_SECRET, sessions_inactivity_timeout=90 * 86400)
    db = Database(owner_dsn, user="authenticator", password="test-authenticator", min_size=1)
    await db.open()
    try:
        purged = await purge_once(db, settings)
    finally:
        await db.close()
    assert purged.sessions >= 1 and purged.refresh_tokens >= 1
    assert purged.one_time_tokens >= 1 and purged.revocations >= 1

    async with owner_pool.acquire() as conn:
        sessions = {
            r["id"]
            for r in await conn.fetch("select id from auth.sessions where user_id = $1", uid)
        }
        assert sessions == {live_id}
        tokens = await conn.fetch(
            "select id, revoked from auth.refresh_tokens where user_id = $1", uid
        )
        # Left: the live session's current token and the token spent a moment ago.
        assert {r["id"] for r in tokens if r["revoked"]} == {spent_recently}
        assert len([r for r in tokens if not r["revoked"]]) == 1
        assert (
            await conn.fetchval("select count(*) from auth.one_time_tokens where user_id = $1", uid)
            == 0
        )
        tombstones = {
            r["session_id"]
            for r in await conn.fetch(
                "select session_id from auth.revocations where user_id = $1", uid
            )
        }
        # The idle session left no tombstone (its tokens expired long ago).
        assert new_tombstone in tombstones and old_tombstone not in tombstones
        assert idle_id not in tombstones
    # The live session still refreshes.
    assert user.client.auth.refresh_session().session is not None
