-- Analytics. The building blocks are plain SQL set-returning functions (no SET clause, not
-- definer) so PostgreSQL inlines them: EXPLAIN on them shows the plans analytics() runs.
--
-- Sales are first summed per (day, channel, payment method) — a few hundred rows even for a
-- year — and every breakdown is summed from those; lines are read only for top products.
create or replace function pb_internal.analytics_sales(p_owner uuid, p_from timestamptz, p_to timestamptz,
                                            p_tz text)
returns table (day date, channel text, payment_method text, sales_count bigint,
               subtotal numeric, line_discount numeric, sale_discount numeric, tax numeric,
               rounding numeric, final numeric, cogs numeric, quantity numeric)
language sql stable as $$
    select (s.created_at at time zone p_tz)::date, s.channel, s.payment_method, count(*),
           sum(s.total_amount), sum(s.items_discount_amount), sum(s.discount_amount),
           sum(s.tax_amount), sum(s.rounding_amount), sum(s.final_amount), sum(s.cost_amount),
           sum(s.items_quantity)
    from public.sales s
    where s.business_owner_id = p_owner
      and s.created_at >= p_from and s.created_at < p_to
      and s.status = 'completed'
    group by 1, 2, 3
$$;
grant execute on function pb_internal.analytics_sales(uuid, timestamptz, timestamptz, text)
    to authenticated, service_role;
