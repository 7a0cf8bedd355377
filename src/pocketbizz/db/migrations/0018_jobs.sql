-- Jobs in PostgreSQL (issue 10.1): procrastinate's tables live in their own schema,
-- `procrastinate`, owned by the login-less role pb_jobs; nothing of theirs is in `public`, so the
-- tenant-table rules (forced RLS, business_owner_id) are not theirs to meet. The library's own
-- schema is applied by pocketbizz.jobs (its SQL belongs to the installed version) right after
-- the migrations; this file makes the place and the entry points.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pb_jobs') then
        create role pb_jobs nologin noinherit nobypassrls;
    end if;
    -- The migration owner applies procrastinate's schema as pb_jobs (`set role`).
    execute format('grant pb_jobs to %I', current_user);
    if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
        grant create on schema pb_internal to pb_jobs;
    end if;
end
$$;

create schema if not exists procrastinate authorization pb_jobs;
revoke all on schema procrastinate from public;
grant usage on schema pb_internal to pb_jobs;

-- The last error of each job that raised, kept after the job is dead (procrastinate records
-- the status `failed`, not why).
create table pb_internal.job_errors (
    job_id     bigint primary key,
    task_name  text not null,
    attempts   integer not null,
    error      text not null,
    failed_at  timestamptz not null default now()
);
alter table pb_internal.job_errors owner to pb_jobs;
revoke all on pb_internal.job_errors from public;

-- Enqueue in the caller's transaction (the outbox): the job exists only if that transaction
-- commits, and procrastinate's insert trigger wakes the workers at commit. plpgsql resolves the
-- procrastinate names when called, after pocketbizz.jobs has applied the library's schema.
create function pb_internal.enqueue_job(
    task_name text,
    args jsonb default '{}',
    queue text default 'default',
    scheduled_at timestamptz default null,
    queueing_lock text default null
) returns bigint
language plpgsql security definer
set search_path = procrastinate, pg_temp
as $$
begin
    return (procrastinate_defer_jobs_v1(array[
        row(queue, task_name, 0, null, queueing_lock, args, scheduled_at)
            ::procrastinate_job_to_defer_v1
    ]))[1];
end
$$;
alter function pb_internal.enqueue_job(text, jsonb, text, timestamptz, text) owner to pb_jobs;
revoke all on function pb_internal.enqueue_job(text, jsonb, text, timestamptz, text) from public;
-- Domain functions (owned by pb_definer) enqueue what their change needs.
grant execute on function pb_internal.enqueue_job(text, jsonb, text, timestamptz, text)
    to pb_definer;
