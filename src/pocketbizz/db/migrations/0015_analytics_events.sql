-- Product-analytics events (issue 11.1): what the app reports about its own use (app_start with
-- load and time to interactive, screen_view, sale_completed, app_error), the seed's Firebase
-- Analytics role kept in our own database. Written by POST /functions/v1/events as the caller.
--
-- A tenant table like the others (business_owner_id in every key, RLS forced, the four owner
-- policies), partitioned by month of occurred_at so retention drops whole partitions instead of
-- deleting rows. Partitions live in pb_internal, out of the data API's schema, with no grants:
-- every read and write goes through the parent and its policies.
--
-- Events sent before sign-in (anon, with a device id) belong to no tenant: they are kept under
-- the nil uuid, which no account has, so no tenant reads them; only service_role does.
--
-- No foreign key to public.users: anonymous events have no tenant row. A trigger on
-- public.users deletes a tenant's events with it instead, so the tenant purge reaches them.

create table public.analytics_events (
    business_owner_id uuid not null default auth.uid(),
    id                uuid not null default gen_random_uuid(),
    -- when it happened on the device; the partition key
    occurred_at       timestamptz not null default now(),
    received_at       timestamptz not null default now(),
    -- Firebase Analytics' limits: 40 characters, a letter first, then letters, digits or _
    name              text not null check (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    params            jsonb not null default '{}' check (jsonb_typeof(params) = 'object'),
    session_id        text check (length(session_id) between 1 and 100),
    platform          text check (length(platform) between 1 and 40),
    app_version       text check (length(app_version) between 1 and 40),
    device_id         text check (length(device_id) between 1 and 100),
    primary key (business_owner_id, occurred_at, id)
) partition by range (occurred_at);

select pb_internal.protect_tenant_table('analytics_events');

-- Before sign-in: anon writes only into the nil tenant, and only with a device id.
create policy analytics_events_insert_device on public.analytics_events for insert to anon
    with check (business_owner_id = '00000000-0000-0000-0000-000000000000'::uuid
                and (select auth.uid()) is null and device_id is not null);

-- An append-only log for clients: they may add events and read their own, never change them.
grant select on public.analytics_events to authenticated;
grant insert (business_owner_id, name, params, occurred_at, session_id, platform, app_version,
              device_id)
    on public.analytics_events to anon, authenticated;
grant select, insert, delete on public.analytics_events to service_role;
grant select, delete on public.analytics_events to pb_purge;

create function pb_internal.forget_analytics_events() returns trigger
language plpgsql set search_path = '' as $$
begin
    -- Runs as the deleting role (pb_purge in the tenant purge, with the tenant's claims set),
    -- so the forced policies scope it to that tenant.
    delete from public.analytics_events e where e.business_owner_id = old.business_owner_id;
    return old;
end
$$;
revoke all on function pb_internal.forget_analytics_events() from public;
create trigger analytics_events_forget after delete on public.users
    for each row execute function pb_internal.forget_analytics_events();

-- Monthly partitions (UTC months) from the retention horizon to `months_ahead` months past the
-- current one; partitions that end before the horizon are dropped. Idempotent, one caller at a
-- time; the server runs it at start and every few hours as service_role. SECURITY DEFINER:
-- creating and dropping partitions needs the table owner's rights.
create function pb_internal.maintain_analytics_event_partitions(
    retention_days integer, months_ahead integer default 2
)
returns table (created text[], dropped text[])
language plpgsql volatile security definer set search_path = '' as $$
declare
    horizon    timestamptz;
    month      date;
    last_month date;
    part       text;
    upper_end  timestamptz;
    made       text[] := '{}';
    gone       text[] := '{}';
    t          text;
begin
    if retention_days is null or retention_days < 1 or months_ahead is null or months_ahead < 0
    then
        raise exception 'retention_days must be at least 1 and months_ahead at least 0'
            using errcode = '22023';
    end if;
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pb.analytics_events.partitions'));
    horizon := pg_catalog.now() - pg_catalog.make_interval(days => retention_days);
    month := pg_catalog.date_trunc('month', horizon at time zone 'UTC')::date;
    last_month := (pg_catalog.date_trunc('month', pg_catalog.now() at time zone 'UTC')
                   + pg_catalog.make_interval(months => months_ahead))::date;
    while month <= last_month loop
        part := 'analytics_events_' || pg_catalog.to_char(month, 'YYYY_MM');
        if pg_catalog.to_regclass('pb_internal.' || part) is null then
            execute pg_catalog.format(
                'create table pb_internal.%I partition of public.analytics_events '
                'for values from (%L) to (%L)',
                part, pg_catalog.to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00',
                pg_catalog.to_char(month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
            -- Read directly (not through the parent), a partition applies its own policies:
            -- the same owner policies as every tenant table, forced.
            execute pg_catalog.format('alter table pb_internal.%I enable row level security', part);
            execute pg_catalog.format('alter table pb_internal.%I force row level security', part);
            foreach t in array array['select', 'insert', 'update', 'delete'] loop
                execute pg_catalog.format(
                    'create policy %I on pb_internal.%I for %s %s (business_owner_id = '
                    '(select auth.uid()))',
                    part || '_' || t || '_own', part, t,
                    case t when 'insert' then 'with check' else 'using' end);
            end loop;
            made := made || part;
        end if;
        month := (month + interval '1 month')::date;
    end loop;

    for part in
        select c.relname from pg_catalog.pg_inherits i
        join pg_catalog.pg_class c on c.oid = i.inhrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where i.inhparent = 'public.analytics_events'::regclass and n.nspname = 'pb_internal'
          and c.relname ~ '^analytics_events_[0-9]{4}_[0-9]{2}$'
        order by c.relname
    loop
        upper_end := (pg_catalog.make_date(pg_catalog.substr(part, 18, 4)::integer,
                                           pg_catalog.substr(part, 23, 2)::integer, 1)
                      + interval '1 month')::timestamp at time zone 'UTC';
        if upper_end <= horizon then
            execute pg_catalog.format('drop table pb_internal.%I', part);
            gone := gone || part;
        end if;
    end loop;
    return query select made, gone;
end
$$;
revoke all on function pb_internal.maintain_analytics_event_partitions(integer, integer)
    from public;
grant execute on function pb_internal.maintain_analytics_event_partitions(integer, integer)
    to service_role;

-- Usable as soon as it is migrated; the server then keeps PB_EVENTS_RETENTION_DAYS.
select * from pb_internal.maintain_analytics_event_partitions(400);

comment on table public.analytics_events is
$$Product-analytics events the app reports (app_start, screen_view, sale_completed, app_error)
Written by POST /functions/v1/events; a tenant reads its own, never changes them. Kept PB_EVENTS_RETENTION_DAYS days.$$;
comment on column public.analytics_events.business_owner_id is 'The tenant (auth.uid()); the nil uuid for events sent before sign-in. Read-only.';
comment on column public.analytics_events.name is 'Event name: a lowercase letter, then up to 39 lowercase letters, digits or _.';
comment on column public.analytics_events.params is 'Event parameters: a JSON object of at most 25 names, each value a string (at most 100 characters), a number or a boolean.';
comment on column public.analytics_events.occurred_at is 'When it happened on the device.';
comment on column public.analytics_events.received_at is 'When the server stored it.';
comment on column public.analytics_events.device_id is 'The app install that sent it (required before sign-in).';
