-- Payment links (issue 10.3) without the owner: every write is one of these functions, owned by
-- pb_settlement (migrations 0022, 0026). The caller's functions take the tenant from auth.uid();
-- the callback's (for pb_payments) find it from the link, then act as that tenant, so forced
-- RLS scopes every statement. The secret key arrives and leaves sealed (payments.sealing): the
-- database never sees it in clear.

-- The caller's account: its category code and sealed secret key (insert or replace).
create or replace function pb_internal.put_payment_settings(
    p_category_code text, p_secret_key_sealed bytea
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := pb_internal.require_uid();
begin
    insert into public.payment_settings as s (business_owner_id, category_code)
    values (v_uid, p_category_code)
    on conflict (business_owner_id) do update set category_code = excluded.category_code;
    insert into pb_internal.payment_secrets as k (business_owner_id, secret_key_sealed)
    values (v_uid, p_secret_key_sealed)
    on conflict (business_owner_id) do update set secret_key_sealed = excluded.secret_key_sealed;
end
$$;
alter function pb_internal.put_payment_settings(text, bytea) owner to pb_settlement;
revoke all on function pb_internal.put_payment_settings(text, bytea) from public;
grant execute on function pb_internal.put_payment_settings(text, bytea) to authenticated;

-- Forget the caller's account (its sealed key goes with it). True when there was one. Links
-- already made keep working until they settle: their callbacks then find no key and answer 404,
-- and the re-query (which needs no key) settles them.
create or replace function pb_internal.delete_payment_settings() returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := pb_internal.require_uid();
begin
    delete from public.payment_settings s where s.business_owner_id = v_uid;
    return found;
end
$$;
alter function pb_internal.delete_payment_settings() owner to pb_settlement;
revoke all on function pb_internal.delete_payment_settings() from public;
grant execute on function pb_internal.delete_payment_settings() to authenticated;

-- The caller's category code and sealed key, for the server to make a bill (no row: not set).
create or replace function pb_internal.payment_link_account()
returns table (category_code text, secret_key_sealed bytea)
language sql stable security definer set search_path = '' as $$
    select s.category_code, k.secret_key_sealed
    from public.payment_settings s
    join pb_internal.payment_secrets k on k.business_owner_id = s.business_owner_id
    where s.business_owner_id = pb_internal.require_uid()
$$;
alter function pb_internal.payment_link_account() owner to pb_settlement;
revoke all on function pb_internal.payment_link_account() from public;
grant execute on function pb_internal.payment_link_account() to authenticated;

-- A new open link for the caller's sale, once ToyyibPay has made its bill. The sale must be
-- the caller's, completed and pending, and the amount its final amount.
create or replace function pb_internal.open_payment_link(
    p_id uuid, p_sale_id uuid, p_amount numeric, p_bill_code text
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := pb_internal.require_uid();
begin
    if not exists (select from public.sales s
                   where s.business_owner_id = v_uid and s.id = p_sale_id
                     and s.status = 'completed' and s.payment_status = 'pending'
                     and s.final_amount = p_amount) then
        raise exception 'sale % is not an unpaid sale of %', p_sale_id, p_amount
            using errcode = '22023';
    end if;
    insert into public.payment_links (business_owner_id, id, sale_id, bill_code, amount)
    values (v_uid, p_id, p_sale_id, p_bill_code, p_amount);
    insert into pb_internal.payment_link_bills (id, business_owner_id, bill_code, pending_since)
    values (p_id, v_uid, p_bill_code, now());
end
$$;
alter function pb_internal.open_payment_link(uuid, uuid, numeric, text) owner to pb_settlement;
revoke all on function pb_internal.open_payment_link(uuid, uuid, numeric, text) from public;
grant execute on function pb_internal.open_payment_link(uuid, uuid, numeric, text)
    to authenticated;

-- For the callback: whose link this is and that tenant's sealed key (no row: no such link, or
-- its tenant has removed the account since).
create or replace function pb_internal.payment_link_secret(p_id uuid, p_bill_code text)
returns table (business_owner_id uuid, secret_key_sealed bytea)
language sql stable security definer set search_path = '' as $$
    select b.business_owner_id, k.secret_key_sealed
    from pb_internal.payment_link_bills b
    join pb_internal.payment_secrets k on k.business_owner_id = b.business_owner_id
    where b.id = p_id and b.bill_code = p_bill_code
$$;
alter function pb_internal.payment_link_secret(uuid, text) owner to pb_settlement;
revoke all on function pb_internal.payment_link_secret(uuid, text) from public;
grant execute on function pb_internal.payment_link_secret(uuid, text) to pb_payments;

-- Apply ToyyibPay's evidence about one link's bill, once, by its verdict (toyyibpay_verdict;
-- no verdict leaves it open). Paid marks the sale paid, unless the sale is no longer unpaid
-- (voided, or paid meanwhile): then the link is flagged for a person and the sale left alone. Returns the link's status afterwards; null when no
-- link has this id and bill code. The caller has verified the evidence (hash or re-query).
create or replace function pb_internal.settle_payment_link(
    p_id uuid, p_bill_code text, p_status text, p_amount text, p_ref text, p_reason text
) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
    saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    v_owner uuid;
    v_link public.payment_links;
    v_sale public.sales;
    v_verdict text;
    v_status text;
begin
    select b.business_owner_id into v_owner
    from pb_internal.payment_link_bills b where b.id = p_id and b.bill_code = p_bill_code;
    if v_owner is null then
        return null;
    end if;
    perform pg_catalog.set_config('request.jwt.claims',
        pg_catalog.json_build_object('sub', v_owner, 'role', 'authenticated')::text, true);
    -- Locked: two callbacks (or a callback and the re-query) settle it one at a time.
    select * into v_link from public.payment_links l
    where l.business_owner_id = v_owner and l.id = p_id
    for update;
    v_status := v_link.status;
    v_verdict := pb_internal.toyyibpay_verdict(p_status, p_amount, v_link.amount);
    if v_status = 'open' and v_verdict is not null then
        v_status := v_verdict;
        if v_status = 'paid' then
            select * into v_sale from public.sales s
            where s.business_owner_id = v_owner and s.id = v_link.sale_id
            for update;
            if v_sale.status = 'completed' and v_sale.payment_status = 'pending' then
                update public.sales s set payment_status = 'paid'
                where s.business_owner_id = v_owner and s.id = v_link.sale_id;
            else
                v_status := 'flagged';
            end if;
        end if;
        update public.payment_links l
        set status = v_status, settled_at = now(), provider_ref = p_ref,
            provider_amount = p_amount, provider_reason = p_reason
        where l.business_owner_id = v_owner and l.id = p_id;
        update pb_internal.payment_link_bills b set pending_since = null where b.id = p_id;
    end if;
    perform pg_catalog.set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
    return v_status;
end
$$;
alter function pb_internal.settle_payment_link(uuid, text, text, text, text, text)
    owner to pb_settlement;
revoke all on function pb_internal.settle_payment_link(uuid, text, text, text, text, text)
    from public;
grant execute on function pb_internal.settle_payment_link(uuid, text, text, text, text, text)
    to pb_payments;

-- What the payer's return page shows: the link with this id and bill code, as the server knows
-- it (the business's name, the sale number, the amount and the status; nothing else).
create or replace function pb_internal.payment_link_status(p_id uuid, p_bill_code text)
returns table (status text, sale_number text, amount numeric, business_name text)
language plpgsql volatile security definer set search_path = '' as $$
declare
    saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    v_owner uuid;
begin
    select b.business_owner_id into v_owner
    from pb_internal.payment_link_bills b where b.id = p_id and b.bill_code = p_bill_code;
    if v_owner is null then
        return;
    end if;
    perform pg_catalog.set_config('request.jwt.claims',
        pg_catalog.json_build_object('sub', v_owner, 'role', 'authenticated')::text, true);
    return query
        select l.status, s.sale_number, l.amount, p.business_name
        from public.payment_links l
        join public.sales s on s.business_owner_id = l.business_owner_id and s.id = l.sale_id
        left join public.business_profiles p on p.business_owner_id = l.business_owner_id
        where l.business_owner_id = v_owner and l.id = p_id;
    perform pg_catalog.set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
end
$$;
alter function pb_internal.payment_link_status(uuid, text) owner to pb_settlement;
revoke all on function pb_internal.payment_link_status(uuid, text) from public;
grant execute on function pb_internal.payment_link_status(uuid, text) to pb_payments;

-- The re-query's work list: open links older than p_seconds, oldest first.
create or replace function pb_internal.pending_payment_links(p_seconds double precision)
returns table (id uuid, bill_code text)
language sql stable security definer set search_path = '' as $$
    select b.id, b.bill_code from pb_internal.payment_link_bills b
    where b.pending_since < now() - pg_catalog.make_interval(secs => p_seconds)
    order by b.pending_since
    limit 100
$$;
alter function pb_internal.pending_payment_links(double precision) owner to pb_settlement;
revoke all on function pb_internal.pending_payment_links(double precision) from public;
grant execute on function pb_internal.pending_payment_links(double precision) to pb_payments;
