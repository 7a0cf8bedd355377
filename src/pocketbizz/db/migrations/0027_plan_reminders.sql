-- The plan-expiry reminder (issue 10.2): three days before a paid plan ends, the owner is told
-- once (WhatsApp template when the server has WhatsApp, else e-mail). One row per tenant and
-- expiry, written after the reminder went out: renewing moves the expiry, and the new expiry
-- gets its own reminder. Written and read only by the reminder job (service_role); never
-- exposed.
create table pb_internal.plan_reminders (
    business_owner_id uuid not null references public.users (business_owner_id)
                      on delete cascade,
    expires_at        timestamptz not null,
    channel           text not null check (channel in ('whatsapp', 'email')),
    sent_at           timestamptz not null default now(),
    primary key (business_owner_id, expires_at)
);
revoke all on pb_internal.plan_reminders from public;
grant select, insert on pb_internal.plan_reminders to service_role;

-- The job's scan: paid plans ending soon (most users are on the free plan, with no expiry).
create index users_expiring_idx on public.users (subscription_expires_at)
    where subscription_expires_at is not null;
