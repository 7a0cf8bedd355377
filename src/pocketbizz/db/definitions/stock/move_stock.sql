-- The one place stock changes (issue 13.6): every writer — sale, void, purchase, count,
-- production — hands its movements here, so products.current_stock = Σ in − Σ out holds by
-- construction: one ledger row per entry, and in the same statement each product's stock
-- moved by exactly the sum of the rows written.
--
--   p_products, p_quantities, p_unit_costs: one entry per ledger row, quantity signed (in > 0,
--     out < 0, never 0); a product may appear more than once (two lines of one sale)
--   p_check_stock: refuse (PT422, naming the product) when a product's net change is out and
--     would take it below zero, and its policy (the product's, else the business's) is 'block'
--   p_ids: the new rows' ids, when the caller reports them (else random)
--
-- Locks the products in id order first, as every writer does before touching stock, so
-- concurrent calls queue and never deadlock (rows the caller already locked cost nothing).
-- Not callable by clients: only pb_definer, the owner of the writers, may execute it.
create or replace function pb_internal.move_stock(
    p_owner          uuid,
    p_reference_type text,
    p_reference_id   uuid,
    p_products       uuid[],
    p_quantities     numeric[],
    p_unit_costs     numeric[],
    p_check_stock    boolean,
    p_reason         text default null,
    p_notes          text default null,
    p_ids            uuid[] default null
) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_bad record;
begin
    if coalesce(cardinality(p_products), 0) = 0
       or cardinality(p_quantities) is distinct from cardinality(p_products)
       or cardinality(p_unit_costs) is distinct from cardinality(p_products)
       or exists (select from unnest(p_quantities) q where q is null or q = 0) then
        raise exception 'move_stock: one non-zero quantity and one unit cost per product'
            using errcode = '22023';
    end if;

    -- One statement locks the products (in id order), counts them, and, when asked, finds the
    -- first whose stock the movements would take below zero under the 'block' policy (its
    -- own, else the business's): read as locked, so concurrent calls cannot both take the
    -- last unit. A missing product is looked for only when the count is short.
    with locked as materialized (
        select p.id, p.name, p.current_stock, p.negative_stock_policy
        from public.products p
        where p.business_owner_id = p_owner and p.id = any(p_products)
        order by p.id
        for update
    ), short as (
        select l.name, l.current_stock, -sum(m.quantity) as wanted
        from unnest(p_products, p_quantities) m(product_id, quantity)
        join locked l on l.id = m.product_id
        where p_check_stock
          and coalesce(l.negative_stock_policy,
                       (select b.negative_stock_policy from public.business_profiles b
                        where b.business_owner_id = p_owner),
                       'block') = 'block'
        group by l.id, l.name, l.current_stock
        having sum(m.quantity) < 0 and l.current_stock + sum(m.quantity) < 0
        order by l.id
        limit 1
    )
    select (select count(*) from locked) as locked, s.name, s.current_stock, s.wanted
    into v_bad
    from (select) one
    left join short s on true;
    if v_bad.locked < (select count(distinct m) from unnest(p_products) m) then
        select m.product_id into v_bad
        from unnest(p_products) m(product_id)
        where not exists (select from public.products p
                          where p.business_owner_id = p_owner and p.id = m.product_id)
        limit 1;
        raise exception 'product % not found', v_bad.product_id using errcode = 'PT404';
    end if;
    if v_bad.wanted is not null then
        raise exception 'insufficient stock for "%": % available, % requested',
                        v_bad.name, trim_scale(v_bad.current_stock), trim_scale(v_bad.wanted)
            using errcode = 'PT422';
    end if;

    -- The ledger rows, and the stock moved by exactly the rows written.
    with moved as (
        insert into public.stock_movements (business_owner_id, id, product_id, reference_type,
                                            reference_id, movement_type, quantity, unit_cost,
                                            reason, notes, created_by)
        select p_owner, coalesce(p_ids[m.ord], gen_random_uuid()), m.product_id,
               p_reference_type, p_reference_id,
               case when m.quantity > 0 then 'in' else 'out' end, abs(m.quantity),
               m.unit_cost, p_reason, p_notes, p_owner
        from unnest(p_products, p_quantities, p_unit_costs) with ordinality
             m(product_id, quantity, unit_cost, ord)
        returning product_id, case movement_type when 'in' then quantity else -quantity end
                  as delta
    )
    update public.products p
    set current_stock = p.current_stock + q.delta
    from (select m.product_id, sum(m.delta) as delta from moved m group by m.product_id) q
    where p.business_owner_id = p_owner and p.id = q.product_id;
end
$$;
grant execute on function
    pb_internal.move_stock(uuid, text, uuid, uuid[], numeric[], numeric[], boolean, text, text,
                           uuid[])
    to pb_definer;
