-- Realtime Authorization: private channels (config.private = true) are authorized by row-level
-- security on realtime.messages, as on Supabase:
--   join and receive  need SELECT: the server inserts a probe row per extension ('broadcast',
--                     'presence') for the topic, switches to the joining user's role and claims
--                     with realtime.topic() set, and checks which probe rows it can see;
--   send / track      need INSERT: it inserts a row for the topic as that user;
-- both in a transaction that is rolled back. Policies may use realtime.topic(): the channel
-- name without the 'realtime:' prefix. Public channels are not affected (they stay per tenant).
--
-- Default policy of a tenant: its own topics only. A topic is a tenant's own when it is the
-- signed-in user's id, or starts with it followed by ':' (e.g. '<user id>:till-1'); only that
-- user (every device of the business signed in as it) may join, receive, send and track there.
-- More policies can be added by the operator, exactly as in Supabase's documentation.

create schema realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table realtime.messages (
    id          uuid        not null default gen_random_uuid() primary key,
    topic       text        not null,
    extension   text        not null check (extension in ('broadcast', 'presence')),
    payload     jsonb,
    event       text,
    private     boolean     default false,
    inserted_at timestamp   not null default now(),
    updated_at  timestamp   not null default now()
);
alter table realtime.messages enable row level security;
grant select, insert on realtime.messages to anon, authenticated, service_role;

-- The topic being authorized (set by the server for the check's transaction).
create function realtime.topic() returns text
language sql stable as $$
    select nullif(pg_catalog.current_setting('realtime.topic', true), '')
$$;
grant execute on function realtime.topic() to anon, authenticated, service_role;

create function pb_internal.realtime_own_topic(p_topic text) returns boolean
language sql stable set search_path = '' as $$
    select auth.uid() is not null
       and (p_topic = auth.uid()::text or pg_catalog.starts_with(p_topic, auth.uid()::text || ':'))
$$;
revoke all on function pb_internal.realtime_own_topic(text) from public;
grant execute on function pb_internal.realtime_own_topic(text) to authenticated;

create policy tenant_topics_receive on realtime.messages for select to authenticated
    using (pb_internal.realtime_own_topic((select realtime.topic())));
create policy tenant_topics_send on realtime.messages for insert to authenticated
    with check (pb_internal.realtime_own_topic((select realtime.topic())));

-- The read check's probe rows, written by the server (role authenticator) before it switches
-- to the user's role; they are rolled back with the check.
create function pb_internal.realtime_probe(p_topic text)
returns table (extension text, id uuid)
language sql volatile security definer set search_path = '' as $$
    insert into realtime.messages (topic, extension)
    values (p_topic, 'broadcast'), (p_topic, 'presence')
    returning extension, id
$$;
revoke all on function pb_internal.realtime_probe(text) from public;
grant execute on function pb_internal.realtime_probe(text) to authenticator;
