-- Operator metrics (issue 11.2): who was active on which day, and a role that may read across
-- tenants to count them.
--
--   pb_internal.user_activity  one row per (day, user) with an authenticated request that day,
--                              days in Asia/Kuala_Lumpur (the tenants' trading day). Written by
--                              each server process as service_role, at most once per user per
--                              day per process (`on conflict do nothing` settles the rest).
--   pb_metrics                 owner of the SECURITY DEFINER functions of definitions/ops/: logs
--                              in never, writes nothing, reads only the columns the figures
--                              need. It bypasses RLS because every figure counts all tenants;
--                              the functions return counts and sums, never a tenant's rows, and
--                              only service_role may call them (the operator endpoint runs as
--                              service_role after checking the caller is an operator).
do $$
begin
    if not exists (select from pg_roles where rolname = 'pb_metrics') then
        create role pb_metrics nologin noinherit bypassrls;
    end if;
    -- The migration owner hands the definition files' functions to pb_metrics.
    execute format('grant pb_metrics to %I', current_user);
    if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
        grant create on schema pb_internal to pb_metrics;
    end if;
end
$$;

create table pb_internal.user_activity (
    day     date not null,
    user_id uuid not null references public.users (business_owner_id) on delete cascade,
    primary key (day, user_id)
);
-- The foreign key's cascade (a closed account's activity goes with it) looks rows up by user.
create index user_activity_user_idx on pb_internal.user_activity (user_id);
revoke all on pb_internal.user_activity from public;
grant insert on pb_internal.user_activity to service_role;

grant usage on schema public, auth, pb_internal to pb_metrics;
grant select (id, created_at) on auth.users to pb_metrics;
grant select (business_owner_id, status, months, amount, settled_at)
    on public.subscription_payments to pb_metrics;
grant select (business_owner_id, occurred_at) on public.analytics_events to pb_metrics;
grant select on pb_internal.user_activity to pb_metrics;
