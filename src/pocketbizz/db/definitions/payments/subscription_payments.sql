-- Subscription payments (issue 10.2) without the owner: every write is one of these functions,
-- owned by pb_settlement (migration 0022: no BYPASSRLS, only the table rights they use). None is
-- in an exposed schema; the server calls them after it has verified the evidence.

-- A checkout's pending row, for the signed-in caller (tenant from auth.uid(), never an
-- argument). Called by POST /functions/v1/subscribe in the caller's transaction, once
-- ToyyibPay has made the bill. The amount must be the plan's price for those months.
create or replace function pb_internal.open_subscription_payment(
    p_id uuid, p_plan text, p_months integer, p_amount numeric, p_bill_code text
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := pb_internal.require_uid();
begin
    if p_amount is distinct from (select p.price_monthly * p_months from public.plans p
                                  where p.code = p_plan and p.price_monthly > 0) then
        raise exception 'the amount is not the price of plan % for % month(s)', p_plan, p_months
            using errcode = '22023';
    end if;
    insert into public.subscription_payments
        (business_owner_id, id, plan, months, amount, bill_code)
    values (v_uid, p_id, p_plan, p_months, p_amount, p_bill_code);
    insert into pb_internal.payment_bills (id, business_owner_id, bill_code, pending_since)
    values (p_id, v_uid, p_bill_code, now());
end
$$;
alter function pb_internal.open_subscription_payment(uuid, text, integer, numeric, text)
    owner to pb_settlement;
revoke all on function pb_internal.open_subscription_payment(uuid, text, integer, numeric, text)
    from public;
grant execute on function pb_internal.open_subscription_payment(uuid, text, integer, numeric, text)
    to authenticated;
grant execute on function pb_internal.require_uid() to pb_settlement;

-- Apply ToyyibPay's evidence about one bill, once, by its verdict (toyyibpay_verdict): paid
-- extends the plan from max(now, current expiry) by the payment's months; failed or flagged
-- extends nothing; no verdict leaves it pending. Returns the payment's status afterwards; null when no payment has this
-- id and bill code (nothing changes). The caller has verified the evidence (hash or re-query).
create or replace function pb_internal.settle_subscription_payment(
    p_id uuid, p_bill_code text, p_status text, p_amount text, p_ref text, p_reason text
) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
    saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    v_owner uuid;
    v_payment public.subscription_payments;
    v_verdict text;
    v_status text;
begin
    select b.business_owner_id into v_owner
    from pb_internal.payment_bills b where b.id = p_id and b.bill_code = p_bill_code;
    if v_owner is null then
        return null;
    end if;
    -- From here on the payment's tenant is the caller: forced RLS scopes every statement.
    perform pg_catalog.set_config('request.jwt.claims',
        pg_catalog.json_build_object('sub', v_owner, 'role', 'authenticated')::text, true);
    -- Locked: two callbacks (or a callback and the re-query) settle it one at a time.
    select * into v_payment from public.subscription_payments s
    where s.business_owner_id = v_owner and s.id = p_id
    for update;
    v_status := v_payment.status;
    v_verdict := pb_internal.toyyibpay_verdict(p_status, p_amount, v_payment.amount);
    if v_status = 'pending' and v_verdict is not null then
        v_status := v_verdict;
        if v_status = 'paid' then
            update public.users u
            set subscription_plan = v_payment.plan,
                subscription_expires_at =
                    greatest(now(), coalesce(u.subscription_expires_at, now()))
                    + pg_catalog.make_interval(months => v_payment.months)
            where u.business_owner_id = v_owner;
        end if;
        update public.subscription_payments s
        set status = v_status, settled_at = now(), provider_ref = p_ref,
            provider_amount = p_amount, provider_reason = p_reason
        where s.business_owner_id = v_owner and s.id = p_id;
        update pb_internal.payment_bills b set pending_since = null where b.id = p_id;
    end if;
    perform pg_catalog.set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
    return v_status;
end
$$;
alter function pb_internal.settle_subscription_payment(uuid, text, text, text, text, text)
    owner to pb_settlement;
revoke all on function pb_internal.settle_subscription_payment(uuid, text, text, text, text, text)
    from public;
grant execute on function pb_internal.settle_subscription_payment(uuid, text, text, text, text, text)
    to pb_payments;

-- What the return page shows: the payment with this id and bill code, as the server knows it.
create or replace function pb_internal.subscription_payment_status(p_id uuid, p_bill_code text)
returns table (status text, plan text, months integer, amount numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
    saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    v_owner uuid;
begin
    select b.business_owner_id into v_owner
    from pb_internal.payment_bills b where b.id = p_id and b.bill_code = p_bill_code;
    if v_owner is null then
        return;
    end if;
    perform pg_catalog.set_config('request.jwt.claims',
        pg_catalog.json_build_object('sub', v_owner, 'role', 'authenticated')::text, true);
    return query
        select s.status, s.plan, s.months, s.amount from public.subscription_payments s
        where s.business_owner_id = v_owner and s.id = p_id;
    perform pg_catalog.set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
end
$$;
alter function pb_internal.subscription_payment_status(uuid, text) owner to pb_settlement;
revoke all on function pb_internal.subscription_payment_status(uuid, text) from public;
grant execute on function pb_internal.subscription_payment_status(uuid, text) to pb_payments;

-- The re-query's work list: pending payments older than p_seconds, oldest first.
create or replace function pb_internal.pending_subscription_payments(p_seconds double precision)
returns table (id uuid, bill_code text)
language sql stable security definer set search_path = '' as $$
    select b.id, b.bill_code from pb_internal.payment_bills b
    where b.pending_since < now() - pg_catalog.make_interval(secs => p_seconds)
    order by b.pending_since
    limit 100
$$;
alter function pb_internal.pending_subscription_payments(double precision) owner to pb_settlement;
revoke all on function pb_internal.pending_subscription_payments(double precision) from public;
grant execute on function pb_internal.pending_subscription_payments(double precision)
    to pb_payments;
