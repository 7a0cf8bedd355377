-- A sale as the API returns it (create_sale, its idempotent replay, void_sale), from its rows:
-- create_sale passes the rows its inserts returned rather than reading them back (issue 12:
-- the read costs a statement over two tables, each with its policy's auth.uid()).
--
-- Plain SQL with neither FROM nor a SET clause, so PostgreSQL inlines both into the query
-- that calls them: no function call, no statement of their own (issue 12: as PL/pgSQL taking
-- the lines as an array, 60-190 µs of a sale's backend CPU). STABLE, not IMMUTABLE: a
-- timestamptz becomes JSON in the session's time zone.

-- One line of a sale.
create or replace function pb_internal.sale_item_json(p_item public.sale_items) returns jsonb
language sql stable as $$
    select pg_catalog.jsonb_build_object(
        'id', p_item.id, 'line_no', p_item.line_no, 'product_id', p_item.product_id,
        'product_name', p_item.product_name, 'quantity', p_item.quantity,
        'unit_price', p_item.unit_price, 'discount_amount', p_item.discount_amount,
        'tax_amount', p_item.tax_amount, 'subtotal', p_item.subtotal)
$$;
grant execute on function pb_internal.sale_item_json(public.sale_items) to pb_definer;

-- The sale, with its lines already as a JSON array in line order (sale_item_json's).
drop function if exists pb_internal.sale_json_of(public.sales, public.sale_items[]);
create or replace function pb_internal.sale_json_of(p_sale public.sales, p_items jsonb)
returns jsonb
language sql stable as $$
    select pg_catalog.jsonb_build_object(
        'id', p_sale.id, 'sale_number', p_sale.sale_number, 'status', p_sale.status,
        'channel', p_sale.channel, 'customer_id', p_sale.customer_id,
        'total_amount', p_sale.total_amount, 'discount_amount', p_sale.discount_amount,
        'tax_amount', p_sale.tax_amount, 'rounding_amount', p_sale.rounding_amount,
        'final_amount', p_sale.final_amount, 'payment_method', p_sale.payment_method,
        'payment_status', p_sale.payment_status, 'notes', p_sale.notes,
        'client_ref', p_sale.client_ref, 'created_at', p_sale.created_at,
        'voided_at', p_sale.voided_at, 'void_reason', p_sale.void_reason,
        'items', p_items)
$$;
grant execute on function pb_internal.sale_json_of(public.sales, jsonb) to pb_definer;

-- The same, read from the tables (null when there is no such sale).
create or replace function pb_internal.sale_json(p_owner uuid, p_sale_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_json jsonb;
begin
    select pb_internal.sale_json_of(
               s, coalesce((select pg_catalog.jsonb_agg(pb_internal.sale_item_json(i)
                                                        order by i.line_no)
                            from public.sale_items i
                            where i.business_owner_id = p_owner and i.sale_id = p_sale_id),
                           '[]'::pg_catalog.jsonb))
    into v_json
    from public.sales s
    where s.business_owner_id = p_owner and s.id = p_sale_id;
    return v_json;
end
$$;
grant execute on function pb_internal.sale_json(uuid, uuid) to pb_definer;
