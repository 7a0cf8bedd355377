-- Is anybody subscribed to this tenant's (or every tenant's) changes of this table? Asked by
-- the realtime trigger (migration 0007, which first defined this function), which runs as the
-- writer: SECURITY DEFINER, so no writer role needs any right on the subscriber table.
--
-- PL/pgSQL since issue 12: as a SQL function with a SET clause it is never inlined, and its
-- query was planned again in every transaction (about 35-55 µs per lookup, four lookups per
-- create_sale, measured with bench/sale_profile.py); PL/pgSQL keeps the plan for the session.
-- Same answer, same rights (create or replace keeps the grants of 0007 and 0009).
create or replace function pb_internal.realtime_wanted(p_owner uuid, p_table text)
returns boolean
language plpgsql stable security definer set search_path = '' as $$
begin
    return exists (
        select 1 from pb_internal.realtime_subscribers s
        where s.business_owner_id in (p_owner, '00000000-0000-0000-0000-000000000000'::uuid)
          and s.table_name = p_table
          and s.expires_at > pg_catalog.now());
end
$$;
