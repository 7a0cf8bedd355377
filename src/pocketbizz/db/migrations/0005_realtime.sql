-- Realtime: tenant tables announce their row changes with NOTIFY (DESIGN.md §4).
--
-- One compact JSON per changed row on channel `pocketbizz_realtime`, delivered by PostgreSQL
-- only when the writing transaction commits (a rollback announces nothing). Each server process
-- LISTENs on one dedicated connection and decides, per subscriber, who may see the row.
--
-- Payload keys (short, because NOTIFY payloads are capped at 8000 bytes):
--   s  schema        t  table          op  INSERT | UPDATE | DELETE
--   ts transaction timestamp (the commit time is not visible to a trigger)
--   o  business_owner_id of the row
--   k  primary-key columns of the row
--   r  the row (the new version; the old one for DELETE), only while the payload stays under
--      ~7,500 bytes; without it the listener reads the row back by key.
-- The old version of an updated row is not sent: like Supabase with RLS on, subscribers get
-- only its key, because nobody can re-read an old version to check who may see it.
--
-- The trigger runs as the writer (security invoker): pg_notify and to_jsonb need no grant, so
-- writes work the same whether or not anybody listens. Measured cost: about 11-14 µs per row
-- in a bulk update of 3,000 products (35 ms without the trigger, 69-78 ms with it).

create function pb_internal.realtime_notify() returns trigger
language plpgsql as $$
declare
    row_json jsonb;
    key_json jsonb;
    body     text;
begin
    -- The row as it now is; for a DELETE, as it was.
    if tg_op = 'DELETE' then
        row_json := pg_catalog.to_jsonb(old);
    else
        row_json := pg_catalog.to_jsonb(new);
    end if;

    -- The trigger arguments name the key columns besides business_owner_id (at least one).
    key_json := pg_catalog.jsonb_build_object(
        'business_owner_id', row_json -> 'business_owner_id', tg_argv[0], row_json -> tg_argv[0]);
    for i in 1 .. tg_nargs - 1 loop
        key_json := key_json || pg_catalog.jsonb_build_object(tg_argv[i], row_json -> tg_argv[i]);
    end loop;

    body := pg_catalog.jsonb_build_object(
        's', tg_table_schema, 't', tg_table_name, 'op', tg_op, 'ts', pg_catalog.now(),
        'o', row_json -> 'business_owner_id', 'k', key_json, 'r', row_json)::text;
    if pg_catalog.octet_length(body) > 7500 then
        -- Too big for a notification: the key alone; the listener reads the row back.
        body := pg_catalog.jsonb_build_object(
            's', tg_table_schema, 't', tg_table_name, 'op', tg_op, 'ts', pg_catalog.now(),
            'o', row_json -> 'business_owner_id', 'k', key_json)::text;
    end if;

    perform pg_catalog.pg_notify('pocketbizz_realtime', body);
    return null;
end
$$;

do $$
declare
    t text;
begin
    foreach t in array array['business_profiles', 'customers', 'products', 'sales',
                             'sale_items', 'stock_movements']
    loop
        execute pg_catalog.format(
            'create trigger %I after insert or update or delete on public.%I '
            'for each row execute function pb_internal.realtime_notify(%L)',
            t || '_realtime', t, 'id');
    end loop;
end
$$;
