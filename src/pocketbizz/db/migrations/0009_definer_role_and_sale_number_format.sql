-- 1. pb_definer: the owner of the domain's SECURITY DEFINER functions (issue 13.3).
--
-- Until now create_sale & co. ran as the migration owner, a superuser in the embedded default:
-- RLS did not apply inside them at all and isolation rested only on each function's
-- `business_owner_id = v_uid` predicates. pb_definer logs in never, bypasses nothing (forced
-- RLS and the owner policies, which read auth.uid() from the caller's claims, apply inside the
-- functions too) and holds only the table rights the functions use. The definition files
-- (db/definitions/) hand each writer to it and grant it the helpers they call.
--
-- 2. sale_number_format validated fully (issues 8 A.5 and 13.5), one named check per rule:
--   _max_40_characters, _one_seq (exactly one {SEQ}), _known_tokens ({YYYY} {YY} {MM} {SEQ},
--   no other brace), _month_needs_year ({MM} only with {YYYY} or {YY}: a month-only number
--   repeats a year later, and then every sale fails on the unique sale number).
-- An existing row that breaks a rule stops this migration (the check names the rule); it is
-- not rewritten.

do $$
begin
    if not exists (select from pg_roles where rolname = 'pb_definer') then
        create role pb_definer nologin noinherit nobypassrls;
    end if;
end
$$;
-- The migration owner re-creates the functions (create or replace needs membership in the
-- owning role), and hands them over: a role that is not a superuser may give a function away
-- only to a role with CREATE on its schema.
do $$
begin
    execute format('grant pb_definer to %I', current_user);
    if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
        grant create on schema public, pb_internal to pb_definer;
    end if;
end
$$;

grant usage on schema public, auth, pb_internal to pb_definer;
grant execute on function auth.uid() to pb_definer;
-- The realtime trigger runs as the writer, so as pb_definer inside the functions; it fails
-- open (announces) if it cannot ask, which would undo 0007's filter.
grant execute on function pb_internal.realtime_wanted(uuid, text) to pb_definer;

grant select on public.users, public.plans, public.business_profiles, public.customers,
                public.recipe_items
    to pb_definer;
grant select, update (current_stock, cost_price) on public.products to pb_definer;
grant select, insert, update (status, voided_at, void_reason) on public.sales to pb_definer;
grant select, insert on public.sale_items, public.stock_movements to pb_definer;
grant select, insert, update (last_value, updated_at) on public.sale_number_counters
    to pb_definer;

-- /ready may compare the applied definitions with the shipped ones, as it does migrations.
grant select on pb_internal.schema_definitions to authenticator;

-- ---------------------------------------------------------------------------------------------
alter table public.business_profiles
    drop constraint business_profiles_sale_number_format_check,
    add constraint business_profiles_sale_number_format_max_40_characters
        check (length(sale_number_format) between 1 and 40),
    add constraint business_profiles_sale_number_format_one_seq
        check (length(sale_number_format) - length(replace(sale_number_format, '{SEQ}', '')) = 5),
    add constraint business_profiles_sale_number_format_known_tokens
        check (regexp_replace(sale_number_format, '\{(YYYY|YY|MM|SEQ)\}', '', 'g') !~ '[{}]'),
    add constraint business_profiles_sale_number_format_month_needs_year
        check (strpos(sale_number_format, '{MM}') = 0
               or strpos(sale_number_format, '{YYYY}') > 0
               or strpos(sale_number_format, '{YY}') > 0);
