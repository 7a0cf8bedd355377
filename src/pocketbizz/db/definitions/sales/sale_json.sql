-- A sale as the API returns it (create_sale, its idempotent replay, void_sale), from its rows:
-- create_sale passes the rows its inserts returned rather than reading them back (issue 12:
-- the read costs a statement over two tables, each with its policy's auth.uid()).
--
-- PL/pgSQL, not SQL: a SQL function that is not inlined is planned again in every transaction
-- that calls it from PL/pgSQL (measured: 600 µs per sale for this JSON as a SQL function),
-- while PL/pgSQL keeps its plans for the session. No SET clause (a configuration save and
-- restore per call): it names only pg_catalog and schema-qualified objects.
create or replace function pb_internal.sale_json_of(p_sale public.sales,
                                                    p_items public.sale_items[])
returns jsonb
language plpgsql stable as $$
begin
    return pg_catalog.jsonb_build_object(
        'id', p_sale.id, 'sale_number', p_sale.sale_number, 'status', p_sale.status,
        'channel', p_sale.channel, 'customer_id', p_sale.customer_id,
        'total_amount', p_sale.total_amount, 'discount_amount', p_sale.discount_amount,
        'tax_amount', p_sale.tax_amount, 'rounding_amount', p_sale.rounding_amount,
        'final_amount', p_sale.final_amount, 'payment_method', p_sale.payment_method,
        'payment_status', p_sale.payment_status, 'notes', p_sale.notes,
        'client_ref', p_sale.client_ref, 'created_at', p_sale.created_at,
        'voided_at', p_sale.voided_at, 'void_reason', p_sale.void_reason,
        'items', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'id', i.id, 'line_no', i.line_no, 'product_id', i.product_id,
                       'product_name', i.product_name, 'quantity', i.quantity,
                       'unit_price', i.unit_price, 'discount_amount', i.discount_amount,
                       'tax_amount', i.tax_amount, 'subtotal', i.subtotal)
                   order by i.line_no)
            from pg_catalog.unnest(p_items) i), '[]'::pg_catalog.jsonb));
end
$$;
grant execute on function pb_internal.sale_json_of(public.sales, public.sale_items[])
    to pb_definer;

-- The same, read from the tables (null when there is no such sale).
create or replace function pb_internal.sale_json(p_owner uuid, p_sale_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_sale public.sales;
begin
    select s.* into v_sale
    from public.sales s
    where s.business_owner_id = p_owner and s.id = p_sale_id;
    if not found then
        return null;
    end if;
    return pb_internal.sale_json_of(
        v_sale, array(select i from public.sale_items i
                      where i.business_owner_id = p_owner and i.sale_id = p_sale_id));
end
$$;
grant execute on function pb_internal.sale_json(uuid, uuid) to pb_definer;
