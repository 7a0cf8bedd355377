-- Payment links (issue 10.3): a business takes an online payment from its own customer through
-- its OWN ToyyibPay account. The owner stores that account's secret key and category code; a
-- link is a ToyyibPay bill for one unpaid sale; the bill's verified callback (hashed with that
-- tenant's key) marks the sale paid, once.
--
--   public.payment_settings   the category code, per tenant; the owner reads it, no client
--                             writes it (PUT /functions/v1/payment-settings does, so the key is
--                             validated and encrypted by the server).
--   pb_internal.payment_secrets  the secret key, AES-GCM encrypted by the server (PB_SECRETS_KEY)
--                             and bound to its tenant; never exposed, not even its ciphertext
--                             through REST. Kept apart from payment_settings so that a client's
--                             `select=*` on the settings works and still reveals nothing.
--   public.payment_links      one row per bill; at most one open link per sale.
--   pb_internal.payment_link_bills  whose a link is, by its id and bill code (the callback names
--                             no tenant); pending_since is the re-query's work list.
--
-- Every write is a pb_internal function owned by pb_settlement (definitions/payments/), which
-- names the tenant in the claims so forced RLS scopes it, as for subscriptions (0022).

create table public.payment_settings (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    category_code     text not null check (category_code ~ '^[A-Za-z0-9_-]{1,64}$'),
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    primary key (business_owner_id)
);
create trigger payment_settings_touch before update on public.payment_settings
    for each row execute function pb_internal.touch_updated_at();
select pb_internal.protect_tenant_table('payment_settings');
grant select on public.payment_settings to authenticated;

create table pb_internal.payment_secrets (
    business_owner_id uuid primary key
                      references public.payment_settings (business_owner_id) on delete cascade,
    -- version byte, 12-byte nonce, AES-256-GCM ciphertext and tag (payments.sealing).
    secret_key_sealed bytea not null
);
revoke all on pb_internal.payment_secrets from public;

create table public.payment_links (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    sale_id           uuid not null,
    bill_code         text not null check (length(bill_code) between 1 and 64),
    amount            numeric(12, 2) not null check (amount > 0),
    status            text not null default 'open'
                      check (status in ('open', 'paid', 'failed', 'flagged')),
    -- What the provider reported, for a person looking at a flagged or failed link.
    provider_ref      text,
    provider_amount   text,
    provider_reason   text,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    settled_at        timestamptz,
    primary key (business_owner_id, id),
    foreign key (business_owner_id, sale_id)
        references public.sales (business_owner_id, id) on delete cascade
);
create index payment_links_sale_idx on public.payment_links (business_owner_id, sale_id);
-- A repeated request for the same unpaid sale gets the open link, never a second bill.
create unique index payment_links_open_per_sale on public.payment_links (business_owner_id, sale_id)
    where status = 'open';
create trigger payment_links_touch before update on public.payment_links
    for each row execute function pb_internal.touch_updated_at();
select pb_internal.protect_tenant_table('payment_links');
grant select on public.payment_links to authenticated;

insert into pb_internal.numeric_columns (table_schema, table_name, column_name, precision, scale)
values ('public', 'payment_links', 'amount', 12, 2);
select pb_internal.guard_numeric_columns('public', 'payment_links');
select pb_internal.keep_scale_only_when_needed('public', 'payment_links');

create table pb_internal.payment_link_bills (
    id                uuid primary key,
    business_owner_id uuid not null references public.users (business_owner_id)
                      on delete cascade,
    bill_code         text not null,
    pending_since     timestamptz
);
create index payment_link_bills_owner_idx on pb_internal.payment_link_bills (business_owner_id);
create index payment_link_bills_pending_idx on pb_internal.payment_link_bills (pending_since)
    where pending_since is not null;
revoke all on pb_internal.payment_link_bills from public;

-- pb_settlement: only what the definitions' functions do.
grant select, insert, update (category_code), delete on public.payment_settings to pb_settlement;
grant select, insert, update (secret_key_sealed), delete on pb_internal.payment_secrets
    to pb_settlement;
grant select, insert,
      update (status, settled_at, provider_ref, provider_amount, provider_reason)
    on public.payment_links to pb_settlement;
grant select, insert, update (pending_since) on pb_internal.payment_link_bills to pb_settlement;
-- A paid link marks its sale paid: that one column, nothing else of a sale.
grant select, update (payment_status) on public.sales to pb_settlement;
grant select on public.business_profiles to pb_settlement;
-- The sales' realtime trigger asks it whether anybody listens.
grant execute on function pb_internal.realtime_wanted(uuid, text) to pb_settlement;

comment on table public.payment_settings is
$$The business's own ToyyibPay account for payment links
Set with PUT /functions/v1/payment-settings; the secret key is kept encrypted and never returned.$$;
comment on column public.payment_settings.category_code is 'ToyyibPay category code of the business''s own account.';
comment on table public.payment_links is
$$Online payment links for the business's own customers (ToyyibPay bills)
Made by POST /functions/v1/payment-link; the verified callback marks the sale paid.$$;
comment on column public.payment_links.sale_id is 'The sale the link collects (sales.id).';
comment on column public.payment_links.status is 'open, paid, failed, or flagged (paid amount or sale state needs a person).';
