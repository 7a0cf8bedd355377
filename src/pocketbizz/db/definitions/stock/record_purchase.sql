-- Stock in from a supplier; cost_price becomes the moving average over the stock on hand
-- (negative stock counts as none).
create or replace function public.record_purchase(product_id uuid, quantity numeric, unit_cost numeric,
                                       notes text default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_product  uuid := record_purchase.product_id;
    v_qty      numeric := record_purchase.quantity;
    v_cost     numeric := record_purchase.unit_cost;
    v_stock    numeric;
    v_old_cost numeric;
    v_new_cost numeric;
    v_movement uuid := gen_random_uuid();
begin
    v_qty := pb_internal.require_number('quantity', v_qty, 3, 0, true, 1e9);
    v_cost := pb_internal.require_number('unit_cost', v_cost, 2, 0, false, 1e10);
    select p.current_stock, p.cost_price into v_stock, v_old_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product
    for update;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;
    v_new_cost := round((greatest(v_stock, 0) * v_old_cost + v_qty * v_cost)
                        / (greatest(v_stock, 0) + v_qty), 2);
    perform pb_internal.move_stock(v_uid, 'purchase', v_movement, array[v_product],
                                   array[v_qty], array[v_cost], false,
                                   p_notes => record_purchase.notes, p_ids => array[v_movement],
                                   p_locked => true);
    update public.products p
    -- updated_at as products_touch would set it, which then is not called (migration 0031)
    set cost_price = v_new_cost, updated_at = now()
    where p.business_owner_id = v_uid and p.id = v_product;
    return jsonb_build_object('movement_id', v_movement, 'product_id', v_product,
                              'current_stock', v_stock + v_qty, 'cost_price', v_new_cost);
end
$$;
grant execute on function public.record_purchase(uuid, numeric, numeric, text)
    to authenticated, service_role;
-- Runs as pb_definer (no BYPASSRLS): forced RLS applies inside too (migration 0009).
alter function public.record_purchase(uuid, numeric, numeric, text) owner to pb_definer;
