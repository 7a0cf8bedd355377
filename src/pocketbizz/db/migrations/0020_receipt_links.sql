-- Public e-receipt links (issue 10.4): the QR code on a printed or PDF receipt opens
-- GET /r/{token}, a page showing that one receipt to whoever holds the link, without signing in.
--
-- The token is the only secret: 32 random bytes (two v4 uuids, 244 random bits) in URL-safe
-- base64, made by the database so a client can never choose a guessable one. One live link per
-- sale; revoking it (revoked_at) makes the page 404, and the next receipt gets a new token.
--
-- A tenant table like the others. The public page looks a token up as service_role (it has no
-- tenant yet), which is why the token has its own index; uniqueness is per tenant, as every key.

create table public.receipt_links (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    sale_id           uuid not null,
    token             text not null default rtrim(translate(encode(
                          uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'),
                          '+/', '-_'), '='),
    created_at        timestamptz not null default now(),
    revoked_at        timestamptz,
    primary key (business_owner_id, id),
    unique (business_owner_id, token),
    foreign key (business_owner_id, sale_id)
        references public.sales (business_owner_id, id) on delete cascade
);
create index receipt_links_token_idx on public.receipt_links (token);
create unique index receipt_links_live_per_sale on public.receipt_links (business_owner_id, sale_id)
    where revoked_at is null;

select pb_internal.protect_tenant_table('receipt_links');

-- Clients read their links and may revoke one (set revoked_at); creating one goes through the
-- receipt function, which lets the database pick the token.
grant select, insert (sale_id), update (revoked_at) on public.receipt_links to authenticated;
grant select on public.receipt_links to service_role;

comment on table public.receipt_links is
$$Public e-receipt links: one live link per sale, opened at /r/{token}
Made by the receipt function; set revoked_at to revoke (the page then answers 404).$$;
comment on column public.receipt_links.sale_id is 'The sale the link shows (sales.id).';
comment on column public.receipt_links.token is 'Random URL-safe token (32 bytes), chosen by the database.';
comment on column public.receipt_links.revoked_at is 'When the link was revoked; null while it works.';
