create or replace function pb_internal.enforce_active_product_limit() returns trigger
language plpgsql set search_path = '' as $$
declare
    v_plan text;
    v_limit integer;
    v_count bigint;
begin
    select l.plan_code, l.max_active_products into v_plan, v_limit
    from pb_internal.plan_limits(new.business_owner_id) l;
    if v_limit is null then
        return null;
    end if;
    -- Serialise activations per tenant so two concurrent inserts cannot both take the last slot.
    perform pg_advisory_xact_lock(
        hashtextextended('pocketbizz.active_products:' || new.business_owner_id::text, 0));
    select count(*) into v_count
    from public.products p
    where p.business_owner_id = new.business_owner_id and p.is_active;
    if v_count > v_limit then
        raise exception 'plan limit reached: max_active_products is % on the % plan',
                        v_limit, v_plan
            using errcode = 'PT402', hint = 'Upgrade the plan or deactivate a product.';
    end if;
    return null;
end
$$;
grant execute on function pb_internal.enforce_active_product_limit() to authenticated, service_role;
create or replace trigger products_active_limit after insert or update of is_active on public.products
    for each row when (new.is_active)
    execute function pb_internal.enforce_active_product_limit();
