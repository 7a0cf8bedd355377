-- Analytics' cache of closed days (migration 0023, issue 12.2): analytics() asks
-- analytics_fill for the range, which computes and stores the closed days not cached yet, then
-- reads them with analytics_cached_sales / analytics_cached_products and computes the rest live.
--
-- A closed day is one that ended more than 2 hours ago in the business's time zone (not 0023's
-- first design, 8 days: the sold_at window; with it a 30-day report still computed 9 days live,
-- measured 7-10 ms of 10-17 ms on a 50,000-sale tenant). A sale written later into a closed
-- day forgets it: voids and any change by the trigger below, and an insert dated more than an
-- hour back (an offline sale replayed late, or a direct write). An insert dated less than an
-- hour back cannot reach a closed day unless its transaction stays open over an hour (the hour
-- between the two margins), so an ordinary sale (dated now) pays nothing.
-- Filling and forgetting take the same per-tenant transaction lock, and filling computes after
-- taking it, in a statement of its own (a fresh snapshot): a day is never cached from a view
-- that misses a change whose trigger already forgot that day.
--
-- SECURITY DEFINER (pb_definer, under the tables' forced owner policies) so that the API roles
-- need no right on the cache; the tenant is always auth.uid(), never an argument.

-- The first day of [p_start, p_end] not served from the cache: after p_end when every day is,
-- p_start when none is. Closed days: those that ended more than 2 hours ago in p_tz. Nothing is
-- written in a read-only transaction (GET /rpc/analytics) or under a snapshot kept for the
-- whole transaction (REPEATABLE READ): the caller then computes every day live. Setting
-- pb.analytics_cache to 'off' (e.g. set local) makes every day live: the tests' oracle, and an
-- operator's switch.
create or replace function pb_internal.analytics_fill(p_tz text, p_start date, p_end date)
returns date
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid     uuid := pb_internal.require_uid();
    v_last    date := least(p_end,
                            ((pg_catalog.now() - interval '2 hours') at time zone p_tz)::date - 1);
    v_missing date[];
begin
    if v_last < p_start
       or pg_catalog.current_setting('pb.analytics_cache', true) is not distinct from 'off' then
        return p_start;
    end if;
    select pg_catalog.array_agg(g.day::date) into v_missing
    from pg_catalog.generate_series(p_start::timestamp, v_last::timestamp, interval '1 day') g(day)
    where not exists (select from pb_internal.analytics_days d
                      where d.business_owner_id = v_uid and d.timezone = p_tz
                        and d.day = g.day::date);
    if v_missing is null then
        return v_last + 1;
    end if;
    if pg_catalog.current_setting('transaction_read_only') = 'on'
       or pg_catalog.current_setting('transaction_isolation') <> 'read committed' then
        return p_start;
    end if;

    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('pocketbizz.analytics:' || v_uid::text, 0));
    -- Computed the way analytics_sales and analytics_products compute a range, per day; a day
    -- another call filled meanwhile is skipped (on conflict), with its rows.
    with days as (
        insert into pb_internal.analytics_days (business_owner_id, timezone, day)
        select v_uid, p_tz, m.day from pg_catalog.unnest(v_missing) m(day)
        on conflict do nothing
        returning day
    ), sums as (
        insert into pb_internal.analytics_day_sales (
            business_owner_id, timezone, day, channel, payment_method, sales_count, subtotal,
            line_discount, sale_discount, tax, rounding, final, cogs, quantity)
        select v_uid, p_tz, c.day, c.channel, c.payment_method, c.sales_count, c.subtotal,
               c.line_discount, c.sale_discount, c.tax, c.rounding, c.final, c.cogs, c.quantity
        from pb_internal.analytics_sales(
                 v_uid, v_missing[1]::timestamp at time zone p_tz,
                 (v_missing[pg_catalog.cardinality(v_missing)] + 1)::timestamp at time zone p_tz,
                 p_tz) c
        where c.day in (select d.day from days d)
    )
    insert into pb_internal.analytics_day_products (business_owner_id, timezone, day,
                                                    product_id, product_name, quantity, revenue)
    select v_uid, p_tz, (s.created_at at time zone p_tz)::date, i.product_id,
           max(i.product_name), sum(i.quantity), sum(i.subtotal)
    from public.sales s
    join public.sale_items i on i.business_owner_id = s.business_owner_id and i.sale_id = s.id
    where s.business_owner_id = v_uid and i.business_owner_id = v_uid
      and s.created_at >= v_missing[1]::timestamp at time zone p_tz
      and s.created_at < (v_missing[pg_catalog.cardinality(v_missing)] + 1)::timestamp
                         at time zone p_tz
      and s.status = 'completed'
      and (s.created_at at time zone p_tz)::date in (select d.day from days d)
    group by 3, 4;
    return v_last + 1;
end
$$;

-- The cached days [p_start, p_before) in analytics_sales's shape.
create or replace function pb_internal.analytics_cached_sales(p_tz text, p_start date,
                                                              p_before date)
returns table (day date, channel text, payment_method text, sales_count bigint,
               subtotal numeric, line_discount numeric, sale_discount numeric, tax numeric,
               rounding numeric, final numeric, cogs numeric, quantity numeric)
language plpgsql stable security definer set search_path = '' as $$
begin
    return query
    select c.day, c.channel, c.payment_method, c.sales_count, c.subtotal, c.line_discount,
           c.sale_discount, c.tax, c.rounding, c.final, c.cogs, c.quantity
    from pb_internal.analytics_day_sales c
    where c.business_owner_id = pb_internal.require_uid() and c.timezone = p_tz
      and c.day >= p_start and c.day < p_before;
end
$$;

-- The cached days [p_start, p_before) per product, in analytics_products's shape.
create or replace function pb_internal.analytics_cached_products(p_tz text, p_start date,
                                                                 p_before date)
returns table (product_id uuid, product_name text, quantity numeric, revenue numeric)
language plpgsql stable security definer set search_path = '' as $$
begin
    return query
    select c.product_id, max(c.product_name), sum(c.quantity), sum(c.revenue)
    from pb_internal.analytics_day_products c
    where c.business_owner_id = pb_internal.require_uid() and c.timezone = p_tz
      and c.day >= p_start and c.day < p_before
    group by c.product_id;
end
$$;

grant execute on function pb_internal.analytics_fill(text, date, date),
                          pb_internal.analytics_cached_sales(text, date, date),
                          pb_internal.analytics_cached_products(text, date, date)
    to authenticated, service_role;

-- Forget the cached days a change of a sale or of its lines touches: the day of its old and
-- its new time, in every zone cached. Runs as the writer (see migration 0023's grants); takes
-- the lock analytics_fill takes, so a fill in progress finishes (and is forgotten here) or
-- starts after this change is visible to it. Not on every insert: only one dated more than an
-- hour back (see above), so an ordinary create_sale never calls it.
create or replace function pb_internal.analytics_forget_days() returns trigger
language plpgsql as $$
declare
    v_owner uuid;
    v_times timestamptz[];
begin
    v_owner := coalesce(new.business_owner_id, old.business_owner_id);
    -- A tenant being purged (migration 0011) loses its cached days by the cascade from
    -- public.users; the purging role may not read its sales, and need not.
    if pg_catalog.current_setting('pb.purging_tenant', true) = v_owner::text then
        return null;
    end if;
    if tg_table_name = 'sales' then
        v_times := array[old.created_at, new.created_at];
    else
        select pg_catalog.array_agg(s.created_at) into v_times
        from public.sales s
        where s.business_owner_id = v_owner
          and s.id in (old.sale_id, new.sale_id);
    end if;
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('pocketbizz.analytics:' || v_owner::text, 0));
    delete from pb_internal.analytics_days d
    where d.business_owner_id = v_owner
      and d.day in (select (t at time zone d.timezone)::date
                    from pg_catalog.unnest(v_times) t where t is not null);
    return null;
end
$$;

drop trigger if exists sales_analytics_forget on public.sales;
create trigger sales_analytics_forget
    after update of business_owner_id, id, status, created_at, channel, payment_method,
                    total_amount, items_discount_amount, discount_amount, tax_amount,
                    rounding_amount, final_amount, cost_amount, items_quantity
          or delete on public.sales
    for each row execute function pb_internal.analytics_forget_days();
drop trigger if exists sales_analytics_forget_backdated on public.sales;
create trigger sales_analytics_forget_backdated
    after insert on public.sales
    for each row when (new.created_at < now() - interval '1 hour')
    execute function pb_internal.analytics_forget_days();
drop trigger if exists sale_items_analytics_forget on public.sale_items;
create trigger sale_items_analytics_forget
    after update of business_owner_id, sale_id, product_id, product_name, quantity, subtotal
          or delete on public.sale_items
    for each row execute function pb_internal.analytics_forget_days();
