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
--   p_locked: the caller has already locked every one of these products in id order in this
--     transaction (create_sale, adjust_stock, record_purchase, record_production do, to read
--     them), so locking them again would be a statement spent for nothing
--
-- Locks the products in id order first (unless the caller did), as every writer does before
-- touching stock, so concurrent calls queue and never deadlock. The stock check reads each
-- product's stock as the update leaves it, under that lock; when it fails, the exception undoes
-- the rows just written. Not callable by clients: only pb_definer, the owner of the writers, may
-- execute it.
--
-- plan_cache_mode: PL/pgSQL would otherwise keep planning its array-parameter statements anew
-- in every call (a custom plan looks cheaper than the generic one for a 3-element array), the
-- largest single cost measured in a sale (issue 12; bench/sale_ab.py).
--
-- p_locked joined the arguments (issue 12): the old signature goes first, as create or replace
-- cannot add one, and two overloads would make every positional call ambiguous.
drop function if exists pb_internal.move_stock(uuid, text, uuid, uuid[], numeric[], numeric[],
                                               boolean, text, text, uuid[]);

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
    p_ids            uuid[] default null,
    p_locked         boolean default false
) returns void
language plpgsql volatile set search_path = '' set plan_cache_mode = force_generic_plan as $$
declare
    v_bad record;
begin
    if coalesce(cardinality(p_products), 0) = 0
       or cardinality(p_quantities) is distinct from cardinality(p_products)
       or cardinality(p_unit_costs) is distinct from cardinality(p_products)
       -- (array_position finds a null too; plain expressions, no statement to run)
       or pg_catalog.array_position(p_quantities, null) is not null
       or pg_catalog.array_position(p_quantities, 0) is not null then
        raise exception 'move_stock: one non-zero quantity and one unit cost per product'
            using errcode = '22023';
    end if;

    if not p_locked then
        perform from public.products p
        where p.business_owner_id = p_owner and p.id = any(p_products)
        order by p.id
        for update;
    end if;

    -- One statement: each product's stock moved by the sum of its entries, the ledger rows for
    -- the products so moved (so stock and ledger agree by construction), and what the check
    -- and the missing-product test need from the products as updated. A missing product gets
    -- no ledger row (no foreign-key error before ours) and is reported below.
    with wanted as (
        select m.product_id, sum(m.quantity) as delta
        from unnest(p_products, p_quantities) m(product_id, quantity)
        group by m.product_id
    ), moved as (
        update public.products p
        -- updated_at as products_touch would set it, which then is not called (0031)
        set current_stock = p.current_stock + w.delta, updated_at = pg_catalog.now()
        from wanted w
        where p.business_owner_id = p_owner and p.id = w.product_id
        returning p.id, p.name, p.current_stock, p.negative_stock_policy, w.delta
    ), written as (
        insert into public.stock_movements (business_owner_id, id, product_id, reference_type,
                                            reference_id, movement_type, quantity, unit_cost,
                                            reason, notes, created_by)
        select p_owner, coalesce(p_ids[m.ord], gen_random_uuid()), m.product_id,
               p_reference_type, p_reference_id,
               case when m.quantity > 0 then 'in' else 'out' end, abs(m.quantity),
               m.unit_cost, p_reason, p_notes, p_owner
        from unnest(p_products, p_quantities, p_unit_costs) with ordinality
             m(product_id, quantity, unit_cost, ord)
        where m.product_id in (select d.id from moved d)
    )
    -- The first product (by id) whose net change is out and took it below zero under the
    -- 'block' policy (its own, else the business's).
    select (select count(*) from wanted) as products, (select count(*) from moved) as moved,
           s.name, s.current_stock - s.delta as available, -s.delta as requested
    into v_bad
    from (select) one
    left join lateral (
        select d.id, d.name, d.current_stock, d.delta
        from moved d
        where p_check_stock and d.delta < 0 and d.current_stock < 0
          and coalesce(d.negative_stock_policy,
                       (select b.negative_stock_policy from public.business_profiles b
                        where b.business_owner_id = p_owner),
                       'block') = 'block'
        order by d.id
        limit 1) s on true;
    if v_bad.moved < v_bad.products then
        select m.product_id into v_bad
        from unnest(p_products) m(product_id)
        where not exists (select from public.products p
                          where p.business_owner_id = p_owner and p.id = m.product_id)
        limit 1;
        raise exception 'product % not found', v_bad.product_id using errcode = 'PT404';
    end if;
    if v_bad.requested is not null then
        raise exception 'insufficient stock for "%": % available, % requested',
                        v_bad.name, trim_scale(v_bad.available), trim_scale(v_bad.requested)
            using errcode = 'PT422';
    end if;
end
$$;
grant execute on function
    pb_internal.move_stock(uuid, text, uuid, uuid[], numeric[], numeric[], boolean, text, text,
                           uuid[], boolean)
    to pb_definer;
