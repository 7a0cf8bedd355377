-- Subscriptions paid through ToyyibPay (issue 10.2). A row per checkout: created pending with
-- its bill, settled once (paid, failed, or flagged when the paid amount is not the bill's) by
-- the verified callback or the re-query job. Clients read their own rows and write none:
-- every write is the server's, and plan changes happen only on settlement.
create table public.subscription_payments (
    business_owner_id uuid not null references public.users (business_owner_id)
                      on delete cascade,
    id                uuid not null default gen_random_uuid(),
    plan              text not null references public.plans (code),
    months            integer not null check (months between 1 and 12),
    amount            numeric(12, 2) not null check (amount > 0),
    status            text not null default 'pending'
                      check (status in ('pending', 'paid', 'failed', 'flagged')),
    bill_code         text not null check (length(bill_code) between 1 and 64),
    -- What the provider reported, for a person looking at a flagged or failed payment.
    provider_ref      text,
    provider_amount   text,
    provider_reason   text,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    settled_at        timestamptz,
    primary key (business_owner_id, id)
);
-- The callback names the payment by its id and bill code (no tenant), and the re-query job
-- looks for old pending ones.
create index subscription_payments_id_idx on public.subscription_payments (id);
create index subscription_payments_plan_idx on public.subscription_payments (plan);
create index subscription_payments_pending_idx on public.subscription_payments (created_at)
    where status = 'pending';

create trigger subscription_payments_touch before update on public.subscription_payments
    for each row execute function pb_internal.touch_updated_at();

alter table public.subscription_payments enable row level security;
alter table public.subscription_payments force row level security;
-- The four owner policies every tenant table has; clients are granted only SELECT, so the
-- write policies bind nobody today and keep the rule if a write is ever granted.
create policy subscription_payments_select on public.subscription_payments for select
    using (business_owner_id = auth.uid());
create policy subscription_payments_insert on public.subscription_payments for insert
    with check (business_owner_id = auth.uid());
create policy subscription_payments_update on public.subscription_payments for update
    using (business_owner_id = auth.uid()) with check (business_owner_id = auth.uid());
create policy subscription_payments_delete on public.subscription_payments for delete
    using (business_owner_id = auth.uid());
grant select on public.subscription_payments to authenticated;

-- Money keeps its scale and refuses NaN/Infinity like every numeric column (0008, 0017).
insert into pb_internal.numeric_columns (table_schema, table_name, column_name, precision, scale)
values ('public', 'subscription_payments', 'amount', 12, 2);
select pb_internal.guard_numeric_columns('public', 'subscription_payments');
select pb_internal.keep_scale_only_when_needed('public', 'subscription_payments');
