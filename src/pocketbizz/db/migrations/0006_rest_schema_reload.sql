-- The data API's schema cache follows DDL: after any schema change (a later migration, a
-- function added by hand) PostgreSQL announces `reload schema` on channel `pgrst`, as
-- PostgREST's documented event trigger does, and every server process reloads its cache.
--
-- Event triggers can only be created by a superuser. Where the migrating role is not one
-- (a managed PostgreSQL), this step is skipped with a notice and a reload is requested by hand:
-- `NOTIFY pgrst, 'reload schema'` (or a server restart).

create function pb_internal.announce_schema_change() returns event_trigger
language plpgsql as $$
begin
    perform pg_notify('pgrst', 'reload schema');
end
$$;

do $$
begin
    if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
        create event trigger pocketbizz_rest_schema_reload on ddl_command_end
            execute function pb_internal.announce_schema_change();
        create event trigger pocketbizz_rest_schema_reload_drop on sql_drop
            execute function pb_internal.announce_schema_change();
    else
        raise notice 'not a superuser: the schema cache reloads only on NOTIFY pgrst';
    end if;
end
$$;
