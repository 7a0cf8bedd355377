create or replace function pb_internal.analytics_low_stock(p_owner uuid)
returns table (product_id uuid, sku text, name text, current_stock numeric,
               reorder_level numeric)
language sql stable as $$
    select p.id, p.sku, p.name, p.current_stock, p.reorder_level
    from public.products p
    where p.business_owner_id = p_owner and p.is_active
      and p.current_stock <= p.reorder_level
    order by p.current_stock - p.reorder_level, p.id
    limit 100
$$;
grant execute on function pb_internal.analytics_low_stock(uuid) to authenticated, service_role;
