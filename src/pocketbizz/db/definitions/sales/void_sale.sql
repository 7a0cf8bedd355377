-- Void: the sale is kept (status, time, reason) and its stock comes back. Voiding a void sale
-- returns it unchanged, so a retried void is harmless.
create or replace function public.void_sale(sale_id uuid, reason text) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid    uuid := pb_internal.require_uid();
    v_sale   uuid := void_sale.sale_id;
    v_reason text := nullif(btrim(void_sale.reason), '');
    v_status text;
begin
    if v_reason is null or length(v_reason) > 500 then
        raise exception 'a reason (at most 500 characters) is required' using errcode = '22023';
    end if;
    select s.status into v_status
    from public.sales s
    where s.business_owner_id = v_uid and s.id = v_sale
    for update;
    if not found then
        raise exception 'sale not found' using errcode = 'PT404';
    end if;
    if v_status = 'void' then
        return pb_internal.sale_json(v_uid, v_sale);
    end if;

    perform 1 from public.products p
    where p.business_owner_id = v_uid
      and p.id in (select i.product_id from public.sale_items i
                   where i.business_owner_id = v_uid and i.sale_id = v_sale)
    order by p.id
    for update;
    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, reason,
                                        created_by)
    select v_uid, i.product_id, 'void', v_sale, 'in', i.quantity, i.unit_cost, v_reason, v_uid
    from public.sale_items i
    where i.business_owner_id = v_uid and i.sale_id = v_sale;
    update public.products p
    set current_stock = p.current_stock + q.quantity
    from (select i.product_id, sum(i.quantity) as quantity
          from public.sale_items i
          where i.business_owner_id = v_uid and i.sale_id = v_sale
          group by i.product_id) q
    where p.business_owner_id = v_uid and p.id = q.product_id;
    update public.sales s
    set status = 'void', voided_at = now(), void_reason = v_reason
    where s.business_owner_id = v_uid and s.id = v_sale;

    return pb_internal.sale_json(v_uid, v_sale);
end
$$;
grant execute on function public.void_sale(uuid, text) to authenticated, service_role;
