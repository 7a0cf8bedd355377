-- Revoked sessions and deleted users, so every surface can refuse a still-valid access token.
--
-- An access token lives up to its `exp` (PB_JWT_EXPIRY_SECONDS) whatever happens to its session
-- or user. Each deletion of a session (sign-out, refresh-token reuse, a password change, the
-- admin API) or of a user leaves a tombstone here and a NOTIFY on `pb_auth_revocations`; each
-- server process keeps the tombstones younger than one token lifetime in memory, so the check
-- costs a dictionary lookup per request and another process learns of a revocation within
-- milliseconds. Tombstones older than a token lifetime protect nothing and are purged.

create table auth.revocations (
    -- null: every token of the user (the user was deleted)
    session_id uuid,
    user_id    uuid        not null,
    revoked_at timestamptz not null default now()
);
create index revocations_revoked_at_idx on auth.revocations (revoked_at);
create index revocations_session_idx on auth.revocations (session_id) where session_id is not null;
create index revocations_user_idx on auth.revocations (user_id) where session_id is null;
grant select, delete on auth.revocations to pb_auth;

-- Runs as the owner whatever role deletes (pb_auth, or the owner in a tenant purge).
-- The periodic purge of long-idle sessions sets pb.idle_session_purge: their tokens expired
-- long ago (the idle timeout is longer than a token's life), so they need no tombstone.
create function pb_internal.record_revocation() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
    revoked_session uuid;
    revoked_user    uuid;
begin
    if tg_table_name = 'sessions' then
        if pg_catalog.current_setting('pb.idle_session_purge', true) = 'on' then
            return null;
        end if;
        revoked_session := old.id;
        revoked_user := old.user_id;
    else
        revoked_session := null;
        revoked_user := old.id;
    end if;
    insert into auth.revocations (session_id, user_id) values (revoked_session, revoked_user);
    perform pg_catalog.pg_notify('pb_auth_revocations', pg_catalog.json_build_object(
        's', revoked_session, 'u', revoked_user,
        't', pg_catalog.date_part('epoch', pg_catalog.now()))::text);
    return null;
end
$$;
revoke all on function pb_internal.record_revocation() from public;

create trigger sessions_revoked after delete on auth.sessions
    for each row execute function pb_internal.record_revocation();
create trigger users_revoked after delete on auth.users
    for each row execute function pb_internal.record_revocation();
