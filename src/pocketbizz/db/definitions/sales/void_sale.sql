-- Void: the sale is kept (status, time, reason) and its stock comes back. Voiding a void sale
-- returns it unchanged, so a retried void is harmless.
create or replace function public.void_sale(sale_id uuid, reason text) returns jsonb
language plpgsql volatile security definer set search_path = ''
-- The quiet marks it makes (realtime/realtime_quiet.sql) end with its return.
set pb_realtime_quiet.products = '' set pb_realtime_quiet.stock_movements = ''
set pb_realtime_quiet.sales = '' as $$
#variable_conflict use_column
declare
    v_uid    uuid := pb_internal.require_uid();
    v_sale   uuid := void_sale.sale_id;
    v_reason text := nullif(btrim(void_sale.reason), '');
    v_status text;
    v_products   uuid[];
    v_quantities numeric[];
    v_costs      numeric[];
    v_items      jsonb;
    v_result     jsonb;
begin
    if v_reason is null or length(v_reason) > 500 then
        raise exception 'a reason (at most 500 characters) is required' using errcode = '22023';
    end if;
    -- The sale, locked, and its lines (they never change once written) in one statement: the
    -- stock movements' arrays and the answer's items.
    select s.status, l.products, l.quantities, l.costs, l.items
    into v_status, v_products, v_quantities, v_costs, v_items
    from public.sales s
    cross join lateral (
        select array_agg(i.product_id order by i.line_no) as products,
               array_agg(i.quantity order by i.line_no) as quantities,
               array_agg(i.unit_cost order by i.line_no) as costs,
               coalesce(jsonb_agg(pb_internal.sale_item_json(i) order by i.line_no), '[]')
                   as items
        from public.sale_items i
        where i.business_owner_id = v_uid and i.sale_id = v_sale) l
    where s.business_owner_id = v_uid and s.id = v_sale
    for update of s;
    if not found then
        raise exception 'sale not found' using errcode = 'PT404';
    end if;
    if v_status = 'void' then
        return pb_internal.sale_json(v_uid, v_sale);
    end if;

    -- The lines' stock comes back, one movement per line.
    perform pb_internal.realtime_quiet(v_uid, '{products,stock_movements,sales}');
    perform pb_internal.move_stock(v_uid, 'void', v_sale, v_products, v_quantities, v_costs,
                                   false, p_reason => v_reason);
    update public.sales s
    -- updated_at as sales_touch would set it, which then is not called (migration 0031)
    set status = 'void', voided_at = now(), void_reason = v_reason, updated_at = now()
    where s.business_owner_id = v_uid and s.id = v_sale
    -- The answer from the row as written, not read back (a statement fewer).
    returning pb_internal.sale_json_of(s, v_items) into v_result;
    return v_result;
end
$$;
grant execute on function public.void_sale(uuid, text) to authenticated, service_role;
-- Runs as pb_definer (no BYPASSRLS): forced RLS applies inside too (migration 0009).
alter function public.void_sale(uuid, text) owner to pb_definer;
