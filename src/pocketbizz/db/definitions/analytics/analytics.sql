-- Planned for each call's tenant and range when days are computed live over more than 3 days: a
-- cached generic plan cannot tell a 30-day range of a small shop from a year of a busy one, and
-- measured twice as slow on the latter. When the cache serves all but the last days (the usual
-- report), the live part is a day or two and the query is the same shape every time: it then
-- runs one generic plan per session (the cached reads inside too), since planning this query
-- (with the functions it inlines) was ~40% of the call's CPU — measured 4.1 → 2.6 ms of backend
-- CPU per 30-day call of a 50,000-sale tenant (docs/benchmarks.md, issue 12.3).
-- random_page_cost 1.1: a tenant's rows are in memory (or on SSD), so index lookups of a
-- month's sale lines beat a scan of all of them — measured 21.7 → 8.2 ms for the top-products
-- query of a 50,000-sale tenant (bench/sales_bench.py data).
--
-- Closed days (ended more than 2 hours ago) come from the per-day cache (analytics_cache.sql),
-- filled on the first call that needs them; the open days are computed live. The result is the
-- live computation's (tests/domain/test_analytics_cache.py compares both). VOLATILE since it may
-- fill the cache, and its later statements must see what the fill wrote.
create or replace function public.analytics(start_date date, end_date date) returns jsonb
language plpgsql volatile security invoker
set search_path = '' set plan_cache_mode = force_custom_plan set random_page_cost = 1.1 as $$
#variable_conflict use_column
declare
    v_uid   uuid := pb_internal.require_uid();
    v_start date := analytics.start_date;
    v_end   date := analytics.end_date;
    v_tz    text;
    v_from  timestamptz;
    v_to    timestamptz;
    v_split date;
    v_live  timestamptz;
begin
    if v_start is null or v_end is null or v_end < v_start then
        raise exception 'start_date and end_date are required, start_date <= end_date'
            using errcode = '22023';
    end if;
    if v_end - v_start > 731 then
        raise exception 'the range is at most 732 days' using errcode = '22023';
    end if;
    select b.timezone into v_tz from public.business_profiles b where b.business_owner_id = v_uid;
    v_tz := coalesce(v_tz, 'Asia/Kuala_Lumpur');
    v_from := v_start::timestamp at time zone v_tz;
    v_to := (v_end + 1)::timestamp at time zone v_tz;
    -- [v_start, v_split) from the cache, [v_split, v_end] live.
    v_split := pb_internal.analytics_fill(v_tz, v_start, v_end);
    v_live := least(v_split::timestamp at time zone v_tz, v_to);
    if v_to - v_live <= interval '3 days' then
        -- Scoped to this call by the function's own plan_cache_mode setting.
        perform pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true);
    end if;

    return (
        with cube as materialized (
            select * from pb_internal.analytics_cached_sales(v_tz, v_start, v_split)
            union all
            select * from pb_internal.analytics_sales(v_uid, v_live, v_to, v_tz)
        ), products as materialized (
            select p.product_id, max(p.product_name) as product_name,
                   sum(p.quantity) as quantity, sum(p.revenue) as revenue
            from (select * from pb_internal.analytics_cached_products(v_tz, v_start, v_split)
                  union all
                  select * from pb_internal.analytics_products(v_uid, v_live, v_to)) p
            group by p.product_id
        ), days as (
            select c.day, sum(c.sales_count) as n, sum(c.subtotal) as subtotal,
                   sum(c.line_discount) as line_discount, sum(c.sale_discount) as sale_discount,
                   sum(c.tax) as tax, sum(c.rounding) as rounding, sum(c.final) as final,
                   sum(c.cogs) as cogs, sum(c.quantity) as quantity
            from cube c group by c.day
        )
        select jsonb_build_object(
            'start_date', v_start,
            'end_date', v_end,
            'timezone', v_tz,
            'totals', (
                select pb_internal.analytics_figures(
                           coalesce(sum(c.sales_count), 0)::bigint, sum(c.subtotal),
                           sum(c.line_discount), sum(c.sale_discount), sum(c.tax),
                           sum(c.rounding), sum(c.final), sum(c.cogs), sum(c.quantity))
                from cube c),
            'by_day', (
                select jsonb_agg(jsonb_build_object('date', g.day::date)
                                 || pb_internal.analytics_figures(
                                        d.n::bigint, d.subtotal, d.line_discount,
                                        d.sale_discount, d.tax, d.rounding, d.final, d.cogs,
                                        d.quantity)
                                 order by g.day)
                from generate_series(v_start::timestamp, v_end::timestamp, interval '1 day') g(day)
                left join days d on d.day = g.day::date),
            'by_channel', (
                select coalesce(jsonb_agg(jsonb_build_object('channel', x.channel) || x.figures
                                          order by x.channel), '[]'::jsonb)
                from (select c.channel, pb_internal.analytics_figures(
                                 sum(c.sales_count)::bigint, sum(c.subtotal),
                                 sum(c.line_discount), sum(c.sale_discount), sum(c.tax),
                                 sum(c.rounding), sum(c.final), sum(c.cogs),
                                 sum(c.quantity)) as figures
                      from cube c group by c.channel) x),
            'by_payment_method', (
                select coalesce(jsonb_agg(jsonb_build_object('payment_method', x.payment_method)
                                          || x.figures order by x.payment_method), '[]'::jsonb)
                from (select c.payment_method, pb_internal.analytics_figures(
                                 sum(c.sales_count)::bigint, sum(c.subtotal),
                                 sum(c.line_discount), sum(c.sale_discount), sum(c.tax),
                                 sum(c.rounding), sum(c.final), sum(c.cogs),
                                 sum(c.quantity)) as figures
                      from cube c group by c.payment_method) x),
            'top_products', jsonb_build_object(
                'by_revenue', (
                    select coalesce(jsonb_agg(to_jsonb(t) order by t.revenue desc,
                                              t.product_id), '[]'::jsonb)
                    from (select * from products p
                          order by p.revenue desc, p.product_id limit 10) t),
                'by_quantity', (
                    select coalesce(jsonb_agg(to_jsonb(t) order by t.quantity desc,
                                              t.product_id), '[]'::jsonb)
                    from (select * from products p
                          order by p.quantity desc, p.product_id limit 10) t)),
            'low_stock', (
                select coalesce(jsonb_agg(to_jsonb(l) order by l.current_stock - l.reorder_level,
                                          l.product_id), '[]'::jsonb)
                from pb_internal.analytics_low_stock(v_uid) l))
    );
end
$$;
grant execute on function public.analytics(date, date) to authenticated, service_role;
