-- WhatsApp receipts (issue 10.5): each message a business sends a customer, and what the
-- WhatsApp Cloud API later says about it.
--
-- public.outbound_messages is a tenant table like the others (business_owner_id in every key,
-- RLS forced, the owner policies). Clients only read it: a message is queued by
-- pb_internal.queue_receipt_message (called by POST /functions/v1/send-receipt as the caller),
-- and the sending job and the webhook (service_role) move it on. Status only goes forward:
-- queued → sent → delivered → read; failed from queued or sent.
--
-- pb_internal.whatsapp_status_events is the webhook's inbox: one row per (wamid, status), so a
-- status delivered twice is applied once, and a status that arrives before the send was recorded
-- is kept until it can be applied.

create table public.outbound_messages (
    business_owner_id   uuid not null default auth.uid()
                        references public.users (business_owner_id) on delete cascade,
    id                  uuid not null default gen_random_uuid(),
    sale_id             uuid not null,
    -- international form without "+", as the Cloud API's `to` (Malaysia: 60…)
    to_phone            text not null check (to_phone ~ '^[1-9][0-9]{7,14}$'),
    status              text not null default 'queued'
                        check (status in ('queued', 'sent', 'delivered', 'read', 'failed')),
    provider_message_id text check (length(provider_message_id) <= 200),
    error_code          integer,
    error_detail        text check (length(error_detail) <= 2000),
    attempts            integer not null default 0 check (attempts >= 0),
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    primary key (business_owner_id, id),
    foreign key (business_owner_id, sale_id)
        references public.sales (business_owner_id, id) on delete cascade
);
create index outbound_messages_owner_sale_idx on public.outbound_messages (business_owner_id, sale_id);
-- The webhook finds a message by Meta's id (wamid) before it knows the tenant.
create index outbound_messages_provider_idx on public.outbound_messages (provider_message_id)
    where provider_message_id is not null;

select pb_internal.protect_tenant_table('outbound_messages');

grant select on public.outbound_messages to authenticated;
grant select, update on public.outbound_messages to service_role;
grant select, insert (sale_id, to_phone) on public.outbound_messages to pb_definer;

-- The order a status may move in; failed may follow queued or sent only.
create function pb_internal.message_status_rank(status text) returns integer
language sql immutable parallel safe set search_path = '' as $$
    select case status when 'queued' then 0 when 'sent' then 1 when 'failed' then 2
                       when 'delivered' then 3 when 'read' then 4 end
$$;
grant execute on function pb_internal.message_status_rank(text) to service_role;

-- Queue a receipt message for one of the caller's sales: the tenant comes from auth.uid() (the
-- column default), the composite foreign key refuses another tenant's sale.
create function pb_internal.queue_receipt_message(sale_id uuid, to_phone text) returns uuid
language sql volatile security definer set search_path = '' as $$
    insert into public.outbound_messages (sale_id, to_phone)
    values (queue_receipt_message.sale_id, queue_receipt_message.to_phone)
    returning id
$$;
alter function pb_internal.queue_receipt_message(uuid, text) owner to pb_definer;
revoke all on function pb_internal.queue_receipt_message(uuid, text) from public;
grant execute on function pb_internal.queue_receipt_message(uuid, text) to authenticated;

create table pb_internal.whatsapp_status_events (
    provider_message_id text not null,
    status              text not null,
    error_code          integer,
    error_detail        text,
    received_at         timestamptz not null default now(),
    primary key (provider_message_id, status)
);
revoke all on pb_internal.whatsapp_status_events from public;
grant select, insert on pb_internal.whatsapp_status_events to service_role;

comment on table public.outbound_messages is
$$WhatsApp messages sent for the business: read-only, written by send-receipt and the sender
Status moves forward only: queued, sent, delivered, read; or failed with Meta's error code.$$;
comment on column public.outbound_messages.sale_id is 'The sale whose receipt the message carries (sales.id).';
comment on column public.outbound_messages.to_phone is 'Recipient in international form without +, e.g. 60123456789.';
comment on column public.outbound_messages.provider_message_id is 'WhatsApp message id (wamid) once the Cloud API accepted it.';
comment on column public.outbound_messages.error_code is 'Meta error code of the last failure (e.g. 131026).';
comment on column public.outbound_messages.error_detail is 'Meta error details of the last failure.';
comment on column public.outbound_messages.attempts is 'Send attempts made so far.';
