-- The figures reported for the whole range and for each day, channel and payment method.
create or replace function pb_internal.analytics_figures(
    sales_count bigint, subtotal numeric, line_discount numeric, sale_discount numeric,
    tax numeric, rounding numeric, final numeric, cogs numeric, quantity numeric
) returns jsonb
language sql immutable as $$
    select jsonb_build_object(
        'sales_count', coalesce(sales_count, 0),
        'gross_sales', coalesce(subtotal + line_discount, 0),
        'discounts', coalesce(line_discount + sale_discount, 0),
        'tax', coalesce(tax, 0),
        'rounding', coalesce(rounding, 0),
        'net_sales', coalesce(final - tax - rounding, 0),
        'cogs', coalesce(cogs, 0),
        'gross_profit', coalesce(final - tax - rounding - cogs, 0),
        'margin_pct', case when final - tax - rounding > 0
                           then round((final - tax - rounding - cogs) * 100
                                      / (final - tax - rounding), 2)
                           else 0 end,
        'average_ticket', case when sales_count > 0 then round(final / sales_count, 2)
                               else 0 end,
        'items_sold', coalesce(quantity, 0))
$$;
grant execute on function
    pb_internal.analytics_figures(bigint, numeric, numeric, numeric, numeric, numeric, numeric,
                                  numeric, numeric)
    to authenticated, service_role;
