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
    insert into public.stock_movements (business_owner_id, id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, notes,
                                        created_by)
    values (v_uid, v_movement, v_product, 'purchase', v_movement, 'in', v_qty, v_cost,
            record_purchase.notes, v_uid);
    update public.products p
    set current_stock = p.current_stock + v_qty, cost_price = v_new_cost
    where p.business_owner_id = v_uid and p.id = v_product;
    return jsonb_build_object('movement_id', v_movement, 'product_id', v_product,
                              'current_stock', v_stock + v_qty, 'cost_price', v_new_cost);
end
$$;
grant execute on function public.record_purchase(uuid, numeric, numeric, text)
    to authenticated, service_role;
