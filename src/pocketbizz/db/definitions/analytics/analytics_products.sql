create or replace function pb_internal.analytics_products(p_owner uuid, p_from timestamptz, p_to timestamptz)
returns table (product_id uuid, product_name text, quantity numeric, revenue numeric)
language sql stable as $$
    select i.product_id, max(i.product_name), sum(i.quantity), sum(i.subtotal)
    from public.sales s
    join public.sale_items i on i.business_owner_id = s.business_owner_id and i.sale_id = s.id
    where s.business_owner_id = p_owner and i.business_owner_id = p_owner
      and s.created_at >= p_from and s.created_at < p_to
      and s.status = 'completed'
    group by i.product_id
$$;
grant execute on function pb_internal.analytics_products(uuid, timestamptz, timestamptz)
    to authenticated, service_role;
