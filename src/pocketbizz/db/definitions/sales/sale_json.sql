-- A sale as the API returns it (create_sale, its idempotent replay, void_sale).
create or replace function pb_internal.sale_json(p_owner uuid, p_sale_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'id', s.id, 'sale_number', s.sale_number, 'status', s.status, 'channel', s.channel,
        'customer_id', s.customer_id, 'total_amount', s.total_amount,
        'discount_amount', s.discount_amount, 'tax_amount', s.tax_amount,
        'rounding_amount', s.rounding_amount, 'final_amount', s.final_amount,
        'payment_method', s.payment_method, 'payment_status', s.payment_status,
        'notes', s.notes, 'client_ref', s.client_ref, 'created_at', s.created_at,
        'voided_at', s.voided_at, 'void_reason', s.void_reason,
        'items', coalesce((
            select jsonb_agg(jsonb_build_object(
                       'id', i.id, 'line_no', i.line_no, 'product_id', i.product_id,
                       'product_name', i.product_name, 'quantity', i.quantity,
                       'unit_price', i.unit_price, 'discount_amount', i.discount_amount,
                       'tax_amount', i.tax_amount, 'subtotal', i.subtotal)
                   order by i.line_no)
            from public.sale_items i
            where i.business_owner_id = p_owner and i.sale_id = s.id), '[]'::jsonb))
    from public.sales s
    where s.business_owner_id = p_owner and s.id = p_sale_id
$$;
grant execute on function pb_internal.sale_json(uuid, uuid) to pb_definer;
