-- Production: finished goods in; by recipe, ingredients out in the same transaction. The
-- finished goods' cost is the recipe cost, averaged into cost_price like a purchase.
create or replace function public.record_production(product_id uuid, quantity numeric,
                                         notes text default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_product  uuid := record_production.product_id;
    v_qty      numeric := record_production.quantity;
    v_batch    uuid := gen_random_uuid();
    v_stock    numeric;
    v_old_cost numeric;
    v_unit_cost numeric;
    v_policy   text;
    v_bad      record;
begin
    v_qty := pb_internal.require_number('quantity', v_qty, 3, 0, true, 1e9);
    select b.negative_stock_policy into v_policy
    from public.business_profiles b where b.business_owner_id = v_uid;

    -- The product and its ingredients, locked together in id order.
    perform 1 from public.products p
    where p.business_owner_id = v_uid
      and (p.id = v_product
           or p.id in (select r.ingredient_id from public.recipe_items r
                       where r.business_owner_id = v_uid and r.product_id = v_product))
    order by p.id
    for update;
    select p.current_stock, p.cost_price into v_stock, v_old_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;

    select i.name, i.current_stock, round(r.quantity * v_qty, 3) as wanted into v_bad
    from public.recipe_items r
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id
    where r.business_owner_id = v_uid and r.product_id = v_product
      and coalesce(i.negative_stock_policy, v_policy, 'block') = 'block'
      and i.current_stock < round(r.quantity * v_qty, 3)
    order by i.id
    limit 1;
    if found then
        raise exception 'insufficient stock for ingredient "%": % available, % needed',
                        v_bad.name, trim_scale(v_bad.current_stock), trim_scale(v_bad.wanted)
            using errcode = 'PT422';
    end if;

    select round(sum(r.quantity * i.cost_price), 2) into v_unit_cost
    from public.recipe_items r
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id
    where r.business_owner_id = v_uid and r.product_id = v_product;

    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, notes,
                                        created_by)
    select v_uid, r.ingredient_id, 'production', v_batch, 'out', round(r.quantity * v_qty, 3),
           i.cost_price, record_production.notes, v_uid
    from public.recipe_items r
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id
    where r.business_owner_id = v_uid and r.product_id = v_product;
    update public.products i
    set current_stock = i.current_stock - round(r.quantity * v_qty, 3)
    from public.recipe_items r
    where r.business_owner_id = v_uid and r.product_id = v_product
      and i.business_owner_id = v_uid and i.id = r.ingredient_id;

    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, notes,
                                        created_by)
    values (v_uid, v_product, 'production', v_batch, 'in', v_qty,
            coalesce(v_unit_cost, v_old_cost), record_production.notes, v_uid);
    update public.products p
    set current_stock = p.current_stock + v_qty,
        cost_price = case when v_unit_cost is null then p.cost_price
                          else round((greatest(v_stock, 0) * v_old_cost + v_qty * v_unit_cost)
                                     / (greatest(v_stock, 0) + v_qty), 2) end
    where p.business_owner_id = v_uid and p.id = v_product;

    return jsonb_build_object('production_id', v_batch, 'product_id', v_product,
                              'current_stock', v_stock + v_qty,
                              'unit_cost', coalesce(v_unit_cost, v_old_cost),
                              'ingredients', coalesce((
                                  select jsonb_agg(jsonb_build_object(
                                             'product_id', m.product_id,
                                             'quantity', m.quantity) order by m.product_id)
                                  from public.stock_movements m
                                  where m.business_owner_id = v_uid and m.reference_id = v_batch
                                    and m.movement_type = 'out'), '[]'::jsonb));
end
$$;
grant execute on function public.record_production(uuid, numeric, text) to authenticated, service_role;
