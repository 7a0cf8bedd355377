-- Queue a WhatsApp receipt for one of the caller's sales, and its sending job in the same
-- transaction (the outbox): the message and its job exist together or not at all.
-- The tenant comes from auth.uid() (the column default); the composite foreign key refuses
-- another tenant's sale. Called by POST /functions/v1/send-receipt as the caller.
create or replace function pb_internal.queue_receipt_message(sale_id uuid, to_phone text)
returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_id uuid;
begin
    insert into public.outbound_messages (sale_id, to_phone)
    values (queue_receipt_message.sale_id, queue_receipt_message.to_phone)
    returning id into v_id;
    perform pb_internal.enqueue_job('pocketbizz.messages.send_receipt',
                                    jsonb_build_object('message_id', v_id));
    return v_id;
end
$$;
alter function pb_internal.queue_receipt_message(uuid, text) owner to pb_definer;
revoke all on function pb_internal.queue_receipt_message(uuid, text) from public;
grant execute on function pb_internal.queue_receipt_message(uuid, text) to authenticated;
