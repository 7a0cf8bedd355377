-- The lines of a range's sales are read one of two ways, chosen by the range's length rather
-- than left to the planner: its estimates put the two within a factor of two of each other
-- and it picked the slower both ways round on bench data (bench/capacity_bench.py, 10,000
-- tenants, one with 50,000 sales over a year). Up to 92 days, each sale's lines by the
-- (owner, sale_id) index (the OFFSET 0 keeps that subquery a per-sale probe): 30 days took
-- 11.6–12.5 ms this way against 29.7–53.7 ms for the hash join over all of the table's lines
-- the planner chose. Longer ranges hash-join, which over a year took 84–106 ms against
-- 159–196 ms per sale. The branch not taken is pruned at plan time (analytics() plans every
-- call with its own dates).
create or replace function pb_internal.analytics_products(p_owner uuid, p_from timestamptz, p_to timestamptz)
returns table (product_id uuid, product_name text, quantity numeric, revenue numeric)
language sql stable as $$
    select l.product_id, max(l.product_name), sum(l.quantity), sum(l.subtotal)
    from (
        select i.product_id, i.product_name, i.quantity, i.subtotal
        from public.sales s
        cross join lateral (
            select i.product_id, i.product_name, i.quantity, i.subtotal
            from public.sale_items i
            where i.business_owner_id = s.business_owner_id and i.sale_id = s.id
            offset 0
        ) i
        where p_to - p_from <= interval '92 days'
          and s.business_owner_id = p_owner
          and s.created_at >= p_from and s.created_at < p_to
          and s.status = 'completed'
        union all
        select i.product_id, i.product_name, i.quantity, i.subtotal
        from public.sales s
        join public.sale_items i on i.business_owner_id = s.business_owner_id and i.sale_id = s.id
        where p_to - p_from > interval '92 days'
          and s.business_owner_id = p_owner and i.business_owner_id = p_owner
          and s.created_at >= p_from and s.created_at < p_to
          and s.status = 'completed'
    ) l
    group by l.product_id
$$;
grant execute on function pb_internal.analytics_products(uuid, timestamptz, timestamptz)
    to authenticated, service_role;
