-- When each tenant was on a paid plan (issue 11.2), rebuilt from its paid subscription payments
-- by the rule settlement applies (definitions/payments/subscription_payments.sql): a payment
-- extends the plan from the later of its settlement and the current expiry by its months. So
-- a renewal before expiry continues the paid time without a gap, and one after a lapse starts a
-- new stretch. `monthly` is what the payment brings in a month (amount ÷ months), for MRR.
-- The same session time zone as settlement's adds the months (it is the database default).
create or replace function pb_internal.paid_intervals()
returns table (business_owner_id uuid, starts_at timestamptz, ends_at timestamptz,
               monthly numeric)
language sql stable security definer set search_path = '' as $$
    with recursive paid as materialized (
        select s.business_owner_id, s.settled_at, s.months, s.amount,
               row_number() over (partition by s.business_owner_id order by s.settled_at) as n
        from public.subscription_payments s
        where s.status = 'paid' and s.settled_at is not null
    ), chain (business_owner_id, n, starts_at, ends_at, monthly) as (
        select p.business_owner_id, p.n, p.settled_at,
               p.settled_at + pg_catalog.make_interval(months => p.months),
               p.amount / p.months
        from paid p
        where p.n = 1
        union all
        select p.business_owner_id, p.n, greatest(p.settled_at, c.ends_at),
               greatest(p.settled_at, c.ends_at) + pg_catalog.make_interval(months => p.months),
               p.amount / p.months
        from chain c
        join paid p on p.business_owner_id = c.business_owner_id and p.n = c.n + 1
    )
    select c.business_owner_id, c.starts_at, c.ends_at, c.monthly from chain c
$$;
alter function pb_internal.paid_intervals() owner to pb_metrics;
revoke all on function pb_internal.paid_intervals() from public;
