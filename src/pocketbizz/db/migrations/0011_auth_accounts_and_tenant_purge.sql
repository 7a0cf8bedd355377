-- Accounts a business can recover and close (GoTrue's flows), and the tenant purge.
--
-- 1. E-mailed one-time tokens (sign-up confirmation, password recovery, e-mail change), as
--    GoTrue keeps them: one live token per user and purpose, stored as a hash, expiring after
--    PB_MAILER_OTP_EXP seconds (checked against the *_sent_at column of auth.users).
-- 2. A pending e-mail change (auth.users.email_change) holds its address: no other account
--    may sign up with it or ask for it while it is pending.
-- 3. Indexes for the periodic purge of spent refresh tokens and idle sessions.
-- 4. pb_internal.purge_tenant(uid): account closure and PDPA erasure. The append-only ledger
--    trigger blocked the cascade from auth.users, so a tenant with stock history could never
--    be deleted. The purge runs as pb_purge, a role with no BYPASSRLS and only the rights it
--    needs, with the request claims set to the tenant: forced RLS scopes every delete to that
--    tenant by construction, and the ledger lets rows go only for the tenant being purged,
--    only once its profile row is gone.

alter table auth.users
    add column confirmation_sent_at timestamptz,
    add column recovery_sent_at     timestamptz,
    -- the address a pending e-mail change will move to, once confirmed
    add column email_change         text
        check (email_change = lower(email_change) and length(email_change) <= 320),
    add column email_change_sent_at timestamptz;
create unique index users_email_change_key on auth.users (email_change)
    where email_change is not null;

create table auth.one_time_tokens (
    id         uuid primary key default gen_random_uuid(),
    user_id    uuid not null references auth.users (id) on delete cascade,
    token_type text not null
               check (token_type in ('confirmation_token', 'recovery_token',
                                     'email_change_token_new')),
    -- sha256 of the link's token hash: a database read does not hand out working links
    token_hash text not null,
    -- the address the token was sent to
    relates_to text not null,
    created_at timestamptz not null default now(),
    unique (user_id, token_type)
);
create index one_time_tokens_hash_idx on auth.one_time_tokens (token_hash);
grant select, insert, update, delete on auth.one_time_tokens to pb_auth;

-- The purge: refresh tokens spent long ago, sessions idle longer than the timeout.
create index refresh_tokens_spent_idx on auth.refresh_tokens (updated_at) where revoked;
create index sessions_last_active_idx on auth.sessions ((coalesce(refreshed_at, created_at)));

-- ---------------------------------------------------------------------------------------------
-- The tenant purge.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pb_purge') then
        create role pb_purge nologin noinherit;
    end if;
end
$$;
-- The migration owner must be able to hand the function to pb_purge.
do $$
begin
    execute format('grant pb_purge to %I', current_user);
end
$$;

grant usage on schema public, auth, storage, pb_internal to pb_purge;
grant execute on function auth.uid(), storage.owner_folder(text) to pb_purge;
-- public.users is every tenant table's parent: its delete cascades through the foreign keys,
-- which reach only rows of the same tenant (the keys include business_owner_id).
grant select, delete on public.users to pb_purge;
grant select, delete on auth.users to pb_purge;
grant select, delete on storage.objects to pb_purge;
-- Storage policies name their roles; the purge gets its own, read from the same claims.
create policy objects_purge_select on storage.objects for select to pb_purge
    using (storage.owner_folder(name) = (select auth.uid())::text
           or owner_id = (select auth.uid()));
create policy objects_purge_delete on storage.objects for delete to pb_purge
    using (storage.owner_folder(name) = (select auth.uid())::text
           or owner_id = (select auth.uid()));

-- The ledger stays append-only, except for the tenant a purge is deleting, once the tenant's
-- profile row is gone (the cascade from it is what reaches here).
create or replace function pb_internal.refuse_change() returns trigger
language plpgsql as $$
begin
    if tg_op = 'DELETE'
       and pg_catalog.current_setting('pb.purging_tenant', true) = old.business_owner_id::text
       and not exists (select 1 from public.users u
                       where u.business_owner_id = old.business_owner_id) then
        return old;
    end if;
    raise exception '% is append-only', tg_table_name using errcode = '42501';
end
$$;

-- Deletes the tenant's files' metadata, its rows in every tenant table, and its account
-- (sessions, tokens); returns the deleted objects, whose bytes the caller removes after commit.
create function pb_internal.purge_tenant(p_uid uuid)
returns table (bucket_id text, version uuid)
language plpgsql volatile security definer set search_path = '' as $$
declare
    saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
begin
    if p_uid is null then
        raise exception 'purge_tenant: a user id is required' using errcode = '22004';
    end if;
    perform pg_catalog.set_config('request.jwt.claims',
        pg_catalog.json_build_object('sub', p_uid, 'role', 'authenticated')::text, true);
    perform pg_catalog.set_config('pb.purging_tenant', p_uid::text, true);

    return query
        delete from storage.objects o
        where storage.owner_folder(o.name) = p_uid::text or o.owner_id = p_uid
        returning o.bucket_id, o.version;
    delete from public.users u where u.business_owner_id = p_uid;
    delete from auth.users a where a.id = p_uid;

    perform pg_catalog.set_config('pb.purging_tenant', '', true);
    perform pg_catalog.set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
end
$$;
alter function pb_internal.purge_tenant(uuid) owner to pb_purge;
revoke all on function pb_internal.purge_tenant(uuid) from public;
grant execute on function pb_internal.purge_tenant(uuid) to pb_auth;
