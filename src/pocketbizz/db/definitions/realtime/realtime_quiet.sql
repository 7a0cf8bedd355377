-- Mark the tables nobody is subscribed to (for this tenant, or for every tenant) as quiet, so
-- their realtime triggers are skipped by their WHEN clause (migration 0031) instead of being
-- called once per row to learn the same.
--
-- For a writer that writes several rows per table, all of them p_owner's (create_sale,
-- void_sale): it calls this once, just before its first write, with every realtime table it
-- writes, and names each pb_realtime_quiet.<table> in its SET clause, so the marks end when it
-- returns (a SET clause restores its own variables, whatever the body set them to). The
-- mark's value, the client statement's timestamp, ends it with the statement in any case. A
-- table somebody listens to is marked not quiet, and its trigger asks and announces as before.
-- (The one-product writers, record_purchase and adjust_stock, leave it to the triggers:
-- bench/sale_ab.py measured no difference either way for them.)

-- Which of these tables somebody listens to, in one query (the question
-- pb_internal.realtime_wanted asks per table). SECURITY DEFINER, as realtime_wanted: the writers
-- have no right on the subscriber table. PL/pgSQL keeps the plan for the session.
create or replace function pb_internal.realtime_wanted_tables(p_owner uuid, p_tables text[])
returns text[]
language plpgsql stable security definer set search_path = '' as $$
begin
    return array(
        select distinct s.table_name
        from pb_internal.realtime_subscribers s
        where s.business_owner_id in (p_owner, '00000000-0000-0000-0000-000000000000'::uuid)
          and s.table_name = any(p_tables)
          and s.expires_at > pg_catalog.now());
end
$$;
revoke all on function pb_internal.realtime_wanted_tables(uuid, text[]) from public;
grant execute on function pb_internal.realtime_wanted_tables(uuid, text[]) to pb_definer;

-- Security invoker and no SET clause, so the marks outlive this call (the caller's SET clause
-- ends them). A failing lookup (it should have none) changes no mark, and the triggers ask for
-- themselves: the write still succeeds and is announced, as migration 0007 intends.
create or replace function pb_internal.realtime_quiet(p_owner uuid, p_tables text[])
returns void
language plpgsql volatile as $$
declare
    v_table  text;
    v_stamp  text := pg_catalog.statement_timestamp()::text;
    v_wanted text[];
begin
    v_wanted := pb_internal.realtime_wanted_tables(p_owner, p_tables);
    foreach v_table in array p_tables loop
        perform pg_catalog.set_config('pb_realtime_quiet.' || v_table,
                                      case when v_table <> all(v_wanted) then v_stamp else '' end,
                                      true);
    end loop;
exception when others then
    -- The subtransaction's rollback has undone any mark set above.
    return;
end
$$;
revoke all on function pb_internal.realtime_quiet(uuid, text[]) from public;
grant execute on function pb_internal.realtime_quiet(uuid, text[]) to pb_definer;
