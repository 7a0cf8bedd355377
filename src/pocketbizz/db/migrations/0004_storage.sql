-- Storage: bucket settings and object metadata, with the tenant rule in row-level security.
--
-- A tenant's objects live under its own id as the first path segment (`{uid}/...`), in every
-- bucket. Policies enforce that for authenticated users; service_role (BYPASSRLS) manages
-- buckets and serves public/signed downloads after the server has checked the bucket or token.
-- The bytes themselves live outside the database (local disk or S3), keyed by
-- `{bucket_id}/{version}` so a move is a metadata change and an overwrite never tears a file.

create schema storage;
revoke all on schema storage from public;
grant usage on schema storage to anon, authenticated, service_role;

create table storage.buckets (
    id                 text primary key
                       check (id ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$'
                              and id not in ('sign', 'public', 'list', 'info', 'move', 'copy',
                                             'upload', 'authenticated', 'render')),
    name               text not null unique check (length(name) between 1 and 63),
    owner              uuid,
    public             boolean not null default false,
    file_size_limit    bigint check (file_size_limit > 0),
    allowed_mime_types text[],
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create trigger buckets_touch before update on storage.buckets
    for each row execute function pb_internal.touch_updated_at();

create table storage.objects (
    id               uuid primary key default gen_random_uuid(),
    bucket_id        text not null references storage.buckets (id),
    -- "C" collation: byte order for listing, and prefix matches can use the index.
    name             text collate "C" not null
                     check (octet_length(name) between 1 and 1024),
    owner_id         uuid default auth.uid(),
    -- Which stored bytes the row points at; a new upload writes a new version.
    version          uuid not null default gen_random_uuid(),
    metadata         jsonb,
    user_metadata    jsonb,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    last_accessed_at timestamptz not null default now(),
    unique (bucket_id, name)
);
create trigger objects_touch before update on storage.objects
    for each row execute function pb_internal.touch_updated_at();

-- The first path segment of an object name: the tenant it belongs to.
create function storage.owner_folder(name text) returns text
language sql immutable as $$
    select split_part(name, '/', 1)
$$;
grant execute on function storage.owner_folder(text) to anon, authenticated, service_role;
-- The policies filter on the owner folder: this index serves them when a listing has no
-- folder prefix of its own (a tenant listing the root of a bucket).
create index objects_owner_folder_idx on storage.objects (bucket_id, storage.owner_folder(name));

alter table storage.buckets enable row level security;
alter table storage.buckets force row level security;
-- Bucket settings are not tenant data: everyone may read them (clients check limits and
-- public flags); only service_role writes (grants below), as in Supabase.
create policy buckets_read_all on storage.buckets for select
    to anon, authenticated using (true);

alter table storage.objects enable row level security;
alter table storage.objects force row level security;
create policy objects_select_own on storage.objects for select to authenticated
    using (storage.owner_folder(name) = (select auth.uid())::text);
create policy objects_insert_own on storage.objects for insert to authenticated
    with check (storage.owner_folder(name) = (select auth.uid())::text
                and owner_id = (select auth.uid()));
create policy objects_update_own on storage.objects for update to authenticated
    using (storage.owner_folder(name) = (select auth.uid())::text)
    with check (storage.owner_folder(name) = (select auth.uid())::text
                and owner_id = (select auth.uid()));
create policy objects_delete_own on storage.objects for delete to authenticated
    using (storage.owner_folder(name) = (select auth.uid())::text);

grant select on storage.buckets to anon, authenticated;
-- anon may query objects but no policy lets it see a row: private objects read as "not found".
grant select on storage.objects to anon;
grant select, insert, delete on storage.objects to authenticated;
grant update (name, version, metadata, user_metadata, last_accessed_at)
    on storage.objects to authenticated;
grant select, insert, update, delete on storage.buckets, storage.objects to service_role;

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('product-images', 'product-images', true, 5 * 1024 * 1024, array['image/*']),
       ('logos', 'logos', true, 5 * 1024 * 1024, array['image/*']),
       ('receipts', 'receipts', false, null, null);
