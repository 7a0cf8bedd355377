-- The scale-restoring triggers of 0008 run only when a value needs its scale restored
-- (issue 12).
--
-- 0008's keep_scale_<schema>_<table> triggers call a PL/pgSQL function for every written row:
-- a 3-line create_sale pays 10 calls (3 sale lines, 3 ledger rows, 3 stock updates, the sale)
-- that change nothing when the writer already gives each value its column's scale. A WHEN
-- clause is evaluated by the executor without a function call. The body changes a value only
-- when it equals its rounding at the column's scale and has another scale (5 -> 5.00, and
-- 5.000 -> 5.00); NaN, ±Infinity and NULL have no scale (scale() is NULL) and are left alone
-- by both. So `scale(new.c) <> s` for some column is exactly when the body has work, and the
-- trigger still fires in every such case.
--
-- pb_internal.guard_numeric_columns (0008) re-creates the trigger without the clause: a later
-- migration that calls it calls pb_internal.keep_scale_only_when_needed(schema, table) after
-- it (tests/domain/test_sale_cost.py fails on a keep_scale trigger without a WHEN clause).

create function pb_internal.keep_scale_only_when_needed(p_schema text, p_table text)
returns void
language plpgsql set search_path = '' as $$
declare
    v_cols text;
    v_when text;
begin
    select string_agg(pg_catalog.quote_ident(n.column_name), ', ' order by n.column_name),
           string_agg(pg_catalog.format('pg_catalog.scale(new.%I) <> %s', n.column_name,
                                        n.scale),
                      ' or ' order by n.column_name)
    into v_cols, v_when
    from pb_internal.numeric_columns n
    where n.table_schema = p_schema and n.table_name = p_table;
    if v_cols is null then
        raise exception 'no numeric columns registered for %.%', p_schema, p_table;
    end if;
    execute pg_catalog.format(
        'create or replace trigger %I before insert or update of %s on %I.%I'
        ' for each row when (%s) execute function %I.%I()',
        p_table || '_keep_scale', v_cols, p_schema, p_table, v_when,
        'pb_internal', 'keep_scale_' || p_schema || '_' || p_table);
end
$$;
revoke all on function pb_internal.keep_scale_only_when_needed(text, text) from public;

select pb_internal.keep_scale_only_when_needed(t.table_schema, t.table_name)
from (select distinct n.table_schema, n.table_name from pb_internal.numeric_columns n) t;
