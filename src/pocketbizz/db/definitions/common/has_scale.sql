-- True when v has at most `places` decimals (money 2, quantities 3). Inlined (no SET clause).
create or replace function pb_internal.has_scale(v numeric, places integer) returns boolean
language sql immutable as $$
    select pg_catalog.round(v, places) operator(pg_catalog.=) v
$$;
grant execute on function pb_internal.has_scale(numeric, integer) to authenticated, service_role;
