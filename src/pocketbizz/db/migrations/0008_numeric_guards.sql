-- Numbers a column cannot keep are refused, never stored and never silently rounded.
--
-- Before this, numeric(12, 2) and friends accepted 'NaN' (it passes `>= 0`, so one bad price
-- made stock and analytics NaN for good) and rounded on input (1.234 was stored as 1.23). A
-- CHECK cannot see the rounding — the type modifier applies before it — so every numeric
-- column becomes unconstrained numeric with three named checks, the names saying what failed:
--   <table>_<column>_is_finite              not NaN, Infinity or -Infinity
--   <table>_<column>_max_<s>_decimals       no more decimals than the column keeps
--   <table>_<column>_max_<p-s>_integer_digits   the old precision, as a range
-- Checks run in name order, and NaN passes `>= 0` but fails `between 0 and 100`: so the
-- column's own `<table>_<column>_check` is renamed after what it asks (_non_negative,
-- _positive, _within_range), sorting after is_finite, and a NaN always reports is_finite. A BEFORE trigger per table gives each
-- accepted value the column's scale, so the API still shows 5.00, not 5 (clients decoding JSON
-- into doubles keep working); it leaves a value with too many decimals alone for the check.
--
-- pb_internal.numeric_columns records precision and scale, which the columns no longer carry;
-- a later migration adding a numeric column registers it and calls
-- pb_internal.guard_numeric_columns(schema, table) again. tests/db/test_schema.py fails on any
-- numeric column left out. Existing rows are never repaired: a NaN already stored stops this
-- migration with the column and the count, to be fixed by hand.

create table pb_internal.numeric_columns (
    table_schema text    not null,
    table_name   text    not null,
    column_name  text    not null,
    precision    integer not null check (precision between 1 and 38),
    scale        integer not null check (scale between 0 and precision),
    primary key (table_schema, table_name, column_name)
);
revoke all on pb_internal.numeric_columns from public;

create function pb_internal.guard_numeric_columns(p_schema text, p_table text) returns void
language plpgsql set search_path = '' as $$
declare
    c       record;
    v_check record;
    v_bad   bigint;
    v_body  text := '';
    v_cols  text[] := '{}';
    v_func  text := format('%I.%I', 'pb_internal', 'keep_scale_' || p_schema || '_' || p_table);
begin
    for c in
        select n.column_name, n.precision, n.scale
        from pb_internal.numeric_columns n
        where n.table_schema = p_schema and n.table_name = p_table
        order by n.column_name
    loop
        execute format('select count(*) from %I.%I where %I in (''NaN'', ''Infinity'', '
                       '''-Infinity'')', p_schema, p_table, c.column_name)
            into v_bad;
        if v_bad > 0 then
            raise exception '%.%.% holds % non-finite value(s) (NaN or Infinity)',
                            p_schema, p_table, c.column_name, v_bad
                using hint = 'Correct those rows by hand, then run the migrations again.';
        end if;
        execute format('alter table %I.%I alter column %I type numeric', p_schema, p_table,
                       c.column_name);
        select k.conname, pg_catalog.pg_get_constraintdef(k.oid) as def into v_check
        from pg_catalog.pg_constraint k
        where k.conrelid = format('%I.%I', p_schema, p_table)::regclass
          and k.conname = p_table || '_' || c.column_name || '_check';
        if found then
            execute format('alter table %I.%I rename constraint %I to %I', p_schema, p_table,
                           v_check.conname, p_table || '_' || c.column_name || case
                               when v_check.def ~ '^CHECK \(\(\w+ >= \(?0' then '_non_negative'
                               when v_check.def ~ '^CHECK \(\(\w+ > \(?0' then '_positive'
                               else '_within_range' end);
        end if;
        execute format('alter table %I.%I'
                       ' drop constraint if exists %I, drop constraint if exists %I,'
                       ' drop constraint if exists %I,'
                       ' add constraint %I check (%I <> ''NaN'' and %I <> ''Infinity'''
                       ' and %I <> ''-Infinity''),'
                       ' add constraint %I check (round(%I, %s) = %I),'
                       ' add constraint %I check (abs(%I) < %s)',
                       p_schema, p_table,
                       p_table || '_' || c.column_name || '_is_finite',
                       p_table || '_' || c.column_name || '_max_' || c.scale || '_decimals',
                       p_table || '_' || c.column_name || '_max_' || c.precision - c.scale
                           || '_integer_digits',
                       p_table || '_' || c.column_name || '_is_finite',
                       c.column_name, c.column_name, c.column_name,
                       p_table || '_' || c.column_name || '_max_' || c.scale || '_decimals',
                       c.column_name, c.scale, c.column_name,
                       p_table || '_' || c.column_name || '_max_' || c.precision - c.scale
                           || '_integer_digits',
                       c.column_name, '1e' || c.precision - c.scale);
        v_body := v_body || format(
            '    if new.%1$I = pg_catalog.round(new.%1$I, %2$s) then'
            ' new.%1$I := pg_catalog.round(new.%1$I, %2$s); end if;' || chr(10),
            c.column_name, c.scale);
        v_cols := v_cols || quote_ident(c.column_name);
    end loop;
    if v_cols = '{}' then
        raise exception 'no numeric columns registered for %.%', p_schema, p_table;
    end if;
    -- No SET clause: it would cost a configuration save and restore on every row.
    execute format('create or replace function %s() returns trigger language plpgsql'
                   ' as $f$' || chr(10) || 'begin' || chr(10) || '%s'
                   || '    return new;' || chr(10) || 'end' || chr(10) || '$f$',
                   v_func, v_body);
    execute format('create or replace trigger %I before insert or update of %s on %I.%I'
                   ' for each row execute function %s()',
                   p_table || '_keep_scale', array_to_string(v_cols, ', '), p_schema, p_table,
                   v_func);
end
$$;

-- Every numeric column there is, with the precision and scale its type modifier gave it. A
-- numeric column without one has no scale to keep: name it rather than guess.
do $$
declare
    v_loose text;
begin
    select string_agg(format('%s.%s.%s', n.nspname, c.relname, a.attname), ', ')
    into v_loose
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_class c on c.oid = a.attrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
      and a.atttypid = 'pg_catalog.numeric'::pg_catalog.regtype and a.atttypmod < 0
      and n.nspname in ('public', 'storage', 'auth');
    if v_loose is not null then
        raise exception 'numeric columns without precision and scale: %', v_loose;
    end if;
end
$$;

insert into pb_internal.numeric_columns (table_schema, table_name, column_name, precision, scale)
select n.nspname, c.relname, a.attname,
       ((a.atttypmod - 4) >> 16) & 65535, (a.atttypmod - 4) & 65535
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
  and a.atttypid = 'pg_catalog.numeric'::pg_catalog.regtype
  and n.nspname in ('public', 'storage', 'auth');

select pb_internal.guard_numeric_columns(t.table_schema, t.table_name)
from (select distinct table_schema, table_name from pb_internal.numeric_columns) t;
