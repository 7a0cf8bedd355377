-- Realtime presence (`track` / `untrack`, `presence_state`, `presence_diff`), shared by the
-- server processes through PostgreSQL, the only thing they share.
--
-- pb_internal.realtime_presence holds one row per tracked presence:
--   scope           who shares the topic: 'tenant:<user id>' for a signed-in user's public
--                   channels, 'public' for anon ones, 'private' for private channels
--   topic           the channel topic ('realtime:<name>')
--   presence_key    the client's presence key (config.presence.key, or one per channel)
--   presence_ref    phx_ref of this presence, unique
--   meta            what the client tracked
--   server_id       the process holding the socket; it refreshes expires_at while it lives
-- A joining channel reads the topic's rows for its presence_state; a change writes the rows
-- and NOTIFYs the diff in the same statement, so every process hears it exactly when it is
-- committed. A crashed process's rows expire; the sweep that removes them returns them, so a
-- live process can announce them as leaves.
-- Only the server (role authenticator) writes it, through the functions below.

create table pb_internal.realtime_presence (
    scope         text        not null,
    topic         text        not null,
    presence_ref  text        not null,
    presence_key  text        not null,
    meta          jsonb       not null,
    server_id     uuid        not null,
    tracked_at    timestamptz not null default pg_catalog.clock_timestamp(),
    expires_at    timestamptz not null,
    primary key (scope, topic, presence_ref)
);
create index realtime_presence_server on pb_internal.realtime_presence (server_id);
revoke all on pb_internal.realtime_presence from public;

-- Apply one presence change of one topic and announce it: p_joins is a JSON array of
-- {"key", "ref", "meta"}; p_leave_refs the phx_refs that leave; p_note the NOTIFY body.
create function pb_internal.realtime_presence_change(
    p_server_id uuid, p_scope text, p_topic text, p_joins jsonb, p_leave_refs text[],
    p_ttl_seconds integer, p_note text)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
    if p_ttl_seconds is null or p_ttl_seconds not between 1 and 3600 then
        raise exception 'realtime_presence_change: a ttl of 1..3600 seconds is required'
            using errcode = '22023';
    end if;
    delete from pb_internal.realtime_presence p
    where p.scope = p_scope and p.topic = p_topic
      and p.presence_ref = any (coalesce(p_leave_refs, '{}'));
    insert into pb_internal.realtime_presence
        (scope, topic, presence_ref, presence_key, meta, server_id, expires_at)
    select p_scope, p_topic, j ->> 'ref', j ->> 'key', j -> 'meta', p_server_id,
           pg_catalog.now() + pg_catalog.make_interval(secs => p_ttl_seconds)
    from pg_catalog.jsonb_array_elements(coalesce(p_joins, '[]'::jsonb)) j;
    perform pg_catalog.pg_notify('pocketbizz_broadcast', p_note);
end
$$;

-- The live presences of one topic, oldest first.
create function pb_internal.realtime_presence_list(p_scope text, p_topic text)
returns table (presence_key text, presence_ref text, meta jsonb)
language sql stable security definer set search_path = '' as $$
    select p.presence_key, p.presence_ref, p.meta
    from pb_internal.realtime_presence p
    where p.scope = p_scope and p.topic = p_topic and p.expires_at > pg_catalog.now()
    order by p.tracked_at, p.presence_ref
$$;

-- Keep this server's presences alive.
create function pb_internal.realtime_presence_refresh(p_server_id uuid, p_ttl_seconds integer)
returns void
language sql volatile security definer set search_path = '' as $$
    update pb_internal.realtime_presence p
    set expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => p_ttl_seconds)
    where p.server_id = p_server_id
$$;

-- Remove the presences of servers that stopped refreshing them (p_server_id null), or all
-- of one server's (at its shutdown); returns what was removed, to be announced as leaves.
create function pb_internal.realtime_presence_remove(p_server_id uuid default null)
returns table (scope text, topic text, presence_key text, presence_ref text, meta jsonb)
language sql volatile security definer set search_path = '' as $$
    delete from pb_internal.realtime_presence d
    where (d.scope, d.topic, d.presence_ref) in (
        select x.scope, x.topic, x.presence_ref
        from pb_internal.realtime_presence x
        where (p_server_id is null and x.expires_at < pg_catalog.now())
           or x.server_id = p_server_id
        for update skip locked)
    returning d.scope, d.topic, d.presence_key, d.presence_ref, d.meta
$$;

revoke all on function pb_internal.realtime_presence_change(
    uuid, text, text, jsonb, text[], integer, text) from public;
revoke all on function pb_internal.realtime_presence_list(text, text) from public;
revoke all on function pb_internal.realtime_presence_refresh(uuid, integer) from public;
revoke all on function pb_internal.realtime_presence_remove(uuid) from public;
grant execute on function pb_internal.realtime_presence_change(
    uuid, text, text, jsonb, text[], integer, text) to authenticator;
grant execute on function pb_internal.realtime_presence_list(text, text) to authenticator;
grant execute on function pb_internal.realtime_presence_refresh(uuid, integer) to authenticator;
grant execute on function pb_internal.realtime_presence_remove(uuid) to authenticator;
