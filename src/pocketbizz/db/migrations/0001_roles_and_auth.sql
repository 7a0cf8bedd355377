-- Roles, the private auth schema, and the claim functions policies are written with.
--
-- authenticator logs in and has no rights of its own (NOINHERIT); each transaction switches to
-- anon, authenticated, service_role or pb_auth (the auth service) with set_config('role', .., true).

do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select from pg_roles where rolname = 'pb_auth') then
        create role pb_auth nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
end
$$;

grant anon, authenticated, service_role, pb_auth to authenticator;


-- New functions are executable by PUBLIC unless revoked: make every grant explicit instead.
alter default privileges revoke execute on functions from public;
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role;

create schema if not exists pb_internal;
revoke all on schema pb_internal from public;
grant usage on schema pb_internal to anon, authenticated, service_role, pb_auth, authenticator;
-- /ready compares the applied migrations with the shipped ones.
grant select on pb_internal.schema_migrations to authenticator;

create function pb_internal.set_authenticator_password(secret text) returns void
language plpgsql as $$
begin
    execute format('alter role authenticator password %L', secret);
end
$$;

create function pb_internal.touch_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- auth: credentials and sessions. Never exposed through the data API.
create schema auth;
revoke all on schema auth from public;
grant usage on schema auth to anon, authenticated, service_role, pb_auth;

create table auth.users (
    id                 uuid primary key default gen_random_uuid(),
    aud                text not null default 'authenticated',
    role               text not null default 'authenticated',
    email              text not null check (email = lower(email) and length(email) <= 320),
    encrypted_password text not null,
    email_confirmed_at timestamptz,
    last_sign_in_at    timestamptz,
    raw_app_meta_data  jsonb not null default '{}'::jsonb,
    raw_user_meta_data jsonb not null default '{}'::jsonb,
    banned_until       timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create unique index users_email_key on auth.users (email);
create trigger users_touch before update on auth.users
    for each row execute function pb_internal.touch_updated_at();

create table auth.sessions (
    id           uuid primary key default gen_random_uuid(),
    user_id      uuid not null references auth.users (id) on delete cascade,
    aal          text not null default 'aal1',
    user_agent   text,
    ip           text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    refreshed_at timestamptz
);
create index sessions_user_id_idx on auth.sessions (user_id);

create table auth.refresh_tokens (
    id         uuid primary key default gen_random_uuid(),
    token_hash text not null unique,
    user_id    uuid not null references auth.users (id) on delete cascade,
    session_id uuid not null references auth.sessions (id) on delete cascade,
    parent     uuid references auth.refresh_tokens (id) on delete set null,
    revoked    boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index refresh_tokens_session_idx on auth.refresh_tokens (session_id, revoked);
create index refresh_tokens_user_idx on auth.refresh_tokens (user_id);
create index refresh_tokens_parent_idx on auth.refresh_tokens (parent);

grant select, insert, update, delete on auth.users, auth.sessions, auth.refresh_tokens to pb_auth;

-- The claim functions, as in Supabase. After a commit an unset claim reads '' rather than NULL,
-- hence the nullif.
create function auth.jwt() returns jsonb
language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
$$;

create function auth.uid() returns uuid
language sql stable as $$
    -- A sub that is not a uuid (no user) reads as NULL rather than raising.
    select case when sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                then sub::uuid end
    from (select nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub' as sub) c
$$;

create function auth.role() returns text
language sql stable as $$
    select nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role()
    to anon, authenticated, service_role, pb_auth;
