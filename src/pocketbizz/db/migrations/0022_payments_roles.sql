-- Payments without the owner (issue 18): the ToyyibPay callback, the return page and the
-- re-query job used to write through an owner pool inside the web server (a superuser in the
-- embedded default). They now run on the request pool (login `authenticator`) as
--
--   pb_payments    what those transactions switch to (set_config('role', ..., true)); its only
--                  rights are EXECUTE on the narrow functions of definitions/payments/.
--   pb_settlement  the owner of those SECURITY DEFINER functions: logs in never, bypasses
--                  nothing, and holds only the table rights they use. Each function names the
--                  payment's tenant in the claims before it writes, so forced RLS and the owner
--                  policies scope every write to that tenant (the pattern of 0009 and 0011).
do $$
begin
    if not exists (select from pg_roles where rolname = 'pb_payments') then
        create role pb_payments nologin noinherit nobypassrls;
    end if;
    if not exists (select from pg_roles where rolname = 'pb_settlement') then
        create role pb_settlement nologin noinherit nobypassrls;
    end if;
    -- The migration owner hands the definition files' functions to pb_settlement.
    execute format('grant pb_settlement to %I', current_user);
    if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
        grant create on schema pb_internal to pb_settlement;
    end if;
end
$$;

grant pb_payments to authenticator;
grant usage on schema pb_internal to pb_payments;

grant usage on schema public, auth, pb_internal to pb_settlement;
grant execute on function auth.uid() to pb_settlement;
grant select on public.plans to pb_settlement;
grant select, insert,
      update (status, settled_at, provider_ref, provider_amount, provider_reason)
    on public.subscription_payments to pb_settlement;
-- Plan changes happen only on settlement.
grant select, update (subscription_plan, subscription_expires_at) on public.users
    to pb_settlement;

-- Evidence names a payment by its id, not its tenant, and tenant tables show a row only to its
-- tenant. This index of bills (never exposed, written only by the functions) says whose a
-- payment is; the functions then act as that tenant, so RLS scopes what they read and write.
-- `pending_since` is set while the payment is pending: the re-query's work list.
create table pb_internal.payment_bills (
    id                uuid primary key,
    business_owner_id uuid not null references public.users (business_owner_id)
                      on delete cascade,
    bill_code         text not null,
    pending_since     timestamptz
);
create index payment_bills_owner_idx on pb_internal.payment_bills (business_owner_id);
create index payment_bills_pending_idx on pb_internal.payment_bills (pending_since)
    where pending_since is not null;
revoke all on pb_internal.payment_bills from public;
grant select, insert, update (pending_since) on pb_internal.payment_bills to pb_settlement;

-- Payments made before this migration (their rows are visible here only to a superuser owner,
-- which the embedded default is; the feature had not been released).
insert into pb_internal.payment_bills (id, business_owner_id, bill_code, pending_since)
select id, business_owner_id, bill_code, case when status = 'pending' then created_at end
from public.subscription_payments;

-- The job worker without the owner: it logs in as `authenticator` with the session role
-- pb_jobs_worker (libpq options `-c role=pb_jobs_worker`) on its own connections only, which
-- may use procrastinate's schema and record job errors, and nothing else. The schema's objects
-- are made by pb_jobs (pocketbizz.jobs applies the installed library's schema after the
-- migrations, with the owner DSN), so the default privileges hand them over as they appear.
-- Its tasks reach tenant data through the request roles, switched per transaction.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pb_jobs_worker') then
        create role pb_jobs_worker nologin noinherit nobypassrls;
    end if;
end
$$;
grant pb_jobs_worker to authenticator;
grant usage on schema procrastinate, pb_internal to pb_jobs_worker;
grant select, insert, update on pb_internal.job_errors to pb_jobs_worker;
alter default privileges for role pb_jobs in schema procrastinate
    grant select, insert, update, delete on tables to pb_jobs_worker;
alter default privileges for role pb_jobs in schema procrastinate
    grant usage, select on sequences to pb_jobs_worker;
alter default privileges for role pb_jobs in schema procrastinate
    grant execute on functions to pb_jobs_worker;
-- A schema applied before this migration.
grant select, insert, update, delete on all tables in schema procrastinate to pb_jobs_worker;
grant usage, select on all sequences in schema procrastinate to pb_jobs_worker;
grant execute on all functions in schema procrastinate to pb_jobs_worker;
