-- Production: finished goods in; by recipe, ingredients out in the same transaction. The
-- finished goods' cost is the recipe cost, averaged into cost_price like a purchase.
create or replace function public.record_production(product_id uuid, quantity numeric,
                                                    notes text default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid         uuid := pb_internal.require_uid();
    v_product     uuid := record_production.product_id;
    v_qty         numeric := record_production.quantity;
    v_batch       uuid := gen_random_uuid();
    v_ingredients uuid[];
    v_per_unit    numeric[];
    v_needed      numeric[];
    v_costs       numeric[];
    v_stock       numeric;
    v_old_cost    numeric;
    v_unit_cost   numeric;
begin
    v_qty := pb_internal.require_number('quantity', v_qty, 3, 0, true, 1e9);

    -- The recipe, read once: a client may edit it meanwhile, and every step below (locks,
    -- stock check, cost, movements) must use the same one, or stock and ledger part ways.
    select coalesce(array_agg(r.ingredient_id order by r.ingredient_id), '{}'),
           coalesce(array_agg(r.quantity order by r.ingredient_id), '{}'),
           coalesce(array_agg(round(r.quantity * v_qty, 3) order by r.ingredient_id), '{}')
    into v_ingredients, v_per_unit, v_needed
    from public.recipe_items r
    where r.business_owner_id = v_uid and r.product_id = v_product;

    -- The product and its ingredients, locked together in id order, then read.
    perform 1 from public.products p
    where p.business_owner_id = v_uid and p.id = any(v_product || v_ingredients)
    order by p.id
    for update;
    select p.current_stock, p.cost_price into v_stock, v_old_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;
    select array_agg(i.cost_price order by r.ord), round(sum(r.per_unit * i.cost_price), 2)
    into v_costs, v_unit_cost
    from unnest(v_ingredients, v_per_unit) with ordinality r(ingredient_id, per_unit, ord)
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id;

    -- Ingredients out (refused when one under the 'block' policy has too little), the
    -- finished goods in at the recipe cost, averaged into cost_price like a purchase.
    perform pb_internal.move_stock(
        v_uid, 'production', v_batch, v_ingredients || v_product,
        array(select -n from unnest(v_needed) n) || v_qty,
        coalesce(v_costs, '{}') || coalesce(v_unit_cost, v_old_cost), true,
        p_notes => record_production.notes, p_locked => true);
    update public.products p
    set cost_price = case when v_unit_cost is null then p.cost_price
                          else round((greatest(v_stock, 0) * v_old_cost + v_qty * v_unit_cost)
                                     / (greatest(v_stock, 0) + v_qty), 2) end,
        -- updated_at as products_touch would set it, which then is not called (migration 0031)
        updated_at = now()
    where p.business_owner_id = v_uid and p.id = v_product;

    return jsonb_build_object('production_id', v_batch, 'product_id', v_product,
                              'current_stock', v_stock + v_qty,
                              'unit_cost', coalesce(v_unit_cost, v_old_cost),
                              'ingredients', coalesce((
                                  select jsonb_agg(jsonb_build_object(
                                             'product_id', r.ingredient_id,
                                             'quantity', r.needed) order by r.ingredient_id)
                                  from unnest(v_ingredients, v_needed) r(ingredient_id, needed)),
                                  '[]'::jsonb));
end
$$;
grant execute on function public.record_production(uuid, numeric, text) to authenticated, service_role;
-- Runs as pb_definer (no BYPASSRLS): forced RLS applies inside too (migration 0009).
alter function public.record_production(uuid, numeric, text) owner to pb_definer;
