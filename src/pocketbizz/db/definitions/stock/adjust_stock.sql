-- A stock count: the difference from the book level becomes one movement. Waste-like reasons
-- are recorded as waste, everything else as an adjustment.
create or replace function public.adjust_stock(product_id uuid, counted_quantity numeric, reason text)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_product  uuid := adjust_stock.product_id;
    v_counted  numeric := adjust_stock.counted_quantity;
    v_reason   text := lower(nullif(btrim(adjust_stock.reason), ''));
    v_stock    numeric;
    v_cost     numeric;
    v_diff     numeric;
    v_movement uuid;
begin
    v_counted := pb_internal.require_number('counted_quantity', v_counted, 3, 0, false, 1e9);
    if v_reason is null or length(v_reason) > 200 then
        raise exception 'a reason (count, damage, waste, correction...) is required'
            using errcode = '22023';
    end if;
    select p.current_stock, p.cost_price into v_stock, v_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product
    for update;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;
    v_diff := v_counted - v_stock;
    if v_diff <> 0 then
        v_movement := gen_random_uuid();
        -- The count is the truth: no stock policy applies.
        perform pb_internal.move_stock(
            v_uid,
            case when v_reason in ('waste', 'damage', 'expired') then 'waste'
                 else 'adjustment' end,
            v_movement, array[v_product], array[v_diff], array[v_cost], false,
            p_reason => v_reason, p_ids => array[v_movement], p_locked => true);
    end if;
    return jsonb_build_object('movement_id', v_movement, 'product_id', v_product,
                              'previous_stock', v_stock, 'current_stock', v_counted,
                              'difference', v_diff);
end
$$;
grant execute on function public.adjust_stock(uuid, numeric, text) to authenticated, service_role;
-- Runs as pb_definer (no BYPASSRLS): forced RLS applies inside too (migration 0009).
alter function public.adjust_stock(uuid, numeric, text) owner to pb_definer;
