-- Row triggers that skip themselves when their call would change nothing (issue 12, third pass).
--
-- 1. Realtime. Every write to a realtime table called pb_internal.realtime_notify (0005, 0007)
--    once per row, and the call returned at once when nobody was subscribed: 10 PL/pgSQL trigger
--    calls and 4 lookups (each in its own subtransaction) per 3-line create_sale, for nothing.
--    A writer that knows the tenant of every row it writes now asks once, for all the tables it
--    writes, just before writing (pb_internal.realtime_quiet, definitions
--    realtime/realtime_quiet.sql), and marks each table nobody listens to as quiet until it
--    returns: pb_realtime_quiet.<table> = statement_timestamp(), a transaction-local setting
--    that the writer's SET clause restores at its return (the timestamp ends a mark with the
--    client statement in any case). The WHEN clause below is evaluated by the executor without
--    a function call, so a quiet table's rows are neither queued nor announced. Any other write
--    (no mark, or a mark of an earlier statement) calls the trigger as before, which asks and
--    caches as in 0007. A registration committed before a client statement still counts for
--    it. Like 0007's cache, the mark is a setting any session may set for itself (it can only
--    silence its own writes).
-- 2. updated_at. products_touch and sales_touch (0002) set updated_at := now() on every update;
--    the writers now set it themselves (move_stock, record_purchase, record_production,
--    void_sale), and the trigger runs only when the row's updated_at is not already now() — the
--    only case in which its body changes anything. Any other update is touched as before.

do $$
declare
    t text;
begin
    foreach t in array array['business_profiles', 'customers', 'products', 'sales',
                             'sale_items', 'stock_movements']
    loop
        execute pg_catalog.format(
            'create or replace trigger %I after insert or update or delete on public.%I'
            ' for each row when (pg_catalog.current_setting(%L, true)'
            ' is distinct from pg_catalog.statement_timestamp()::text)'
            ' execute function pb_internal.realtime_notify(%L)',
            t || '_realtime', t, 'pb_realtime_quiet.' || t, 'id');
    end loop;
end
$$;

create or replace trigger products_touch before update on public.products
    for each row when (new.updated_at is distinct from pg_catalog.now())
    execute function pb_internal.touch_updated_at();
create or replace trigger sales_touch before update on public.sales
    for each row when (new.updated_at is distinct from pg_catalog.now())
    execute function pb_internal.touch_updated_at();

-- The writers (owned by pb_definer, 0009) set updated_at in the same update as the change.
grant update (updated_at) on public.products, public.sales to pb_definer;
