-- Number arguments of the domain functions (issue 8 A.2): NaN and ±Infinity pass `>= 0` and
-- `round(v, 2) = v`, so every number is checked here, once, with a message naming the argument.
-- p_min is inclusive unless p_above_min; p_limit is the column's range (money below 1e10,
-- quantities below 1e9, as the columns' checks say). Plain SQL (no SET clause) so it inlines.

-- Replaced by the functions below (it let NaN through).
drop function if exists pb_internal.has_scale(numeric, integer);

-- What is wrong with a number, or null when nothing is; the caller prefixes the argument name.
create or replace function pb_internal.number_problem(
    p_value numeric, p_places integer, p_min numeric, p_above_min boolean, p_limit numeric)
returns text
language sql immutable as $$
    select case
        when p_value is null then 'is required'
        when p_value operator(pg_catalog.=) 'NaN'::numeric
          or p_value operator(pg_catalog.=) 'Infinity'::numeric
          or p_value operator(pg_catalog.=) '-Infinity'::numeric
            then 'must be a finite number, not ' || p_value::text
        when p_above_min and p_value operator(pg_catalog.<=) p_min
            then 'must be more than ' || p_min::text
        when p_value operator(pg_catalog.<) p_min then 'must be ' || p_min::text || ' or more'
        when pg_catalog.abs(p_value) operator(pg_catalog.>=) p_limit
            then 'must be less than ' || p_limit::text
        when pg_catalog.round(p_value, p_places) operator(pg_catalog.<>) p_value
            then 'has more than ' || p_places::text || ' decimals'
    end
$$;

-- The same for a member of a JSON object (numbers, or strings holding numbers for clients
-- that keep money out of floats); an absent or null member is a problem only when required.
create or replace function pb_internal.json_number_problem(
    p_object jsonb, p_key text, p_required boolean, p_places integer, p_min numeric,
    p_above_min boolean, p_limit numeric)
returns text
-- Stable, not immutable: pg_input_is_valid is stable, and an immutable SQL function calling
-- it would never be inlined (9 extra function calls per 3-line sale, measured).
language sql stable as $$
    select case
        when coalesce(pg_catalog.jsonb_typeof(p_object operator(pg_catalog.->) p_key), 'null')
             operator(pg_catalog.=) 'null'
            then case when p_required then 'is required' end
        when pg_catalog.jsonb_typeof(p_object operator(pg_catalog.->) p_key)
             operator(pg_catalog.<>) all (array['number', 'string'])
          or not pg_catalog.pg_input_is_valid(p_object operator(pg_catalog.->>) p_key, 'numeric')
            then 'must be a number'
        else pb_internal.number_problem((p_object operator(pg_catalog.->>) p_key)::numeric,
                                        p_places, p_min, p_above_min, p_limit)
    end
$$;

-- The argument itself, at the column's scale (2.5 → 2.50), or SQLSTATE 22023 naming it.
create or replace function pb_internal.require_number(
    p_name text, p_value numeric, p_places integer, p_min numeric, p_above_min boolean,
    p_limit numeric)
returns numeric
language plpgsql immutable set search_path = '' as $$
declare
    v_problem text := pb_internal.number_problem(p_value, p_places, p_min, p_above_min, p_limit);
begin
    if v_problem is not null then
        raise exception '% %', p_name, v_problem using errcode = '22023';
    end if;
    return round(p_value, p_places);
end
$$;

grant execute on function
    pb_internal.number_problem(numeric, integer, numeric, boolean, numeric),
    pb_internal.json_number_problem(jsonb, text, boolean, integer, numeric, boolean, numeric),
    pb_internal.require_number(text, numeric, integer, numeric, boolean, numeric)
    to authenticated, service_role, pb_definer;
