-- An app event makes its user active on the (Asia/Kuala_Lumpur) day it happened, which may be
-- an earlier day than today when an offline queue is sent late. One statement per batch of
-- events: the distinct (day, user) pairs of the batch, `on conflict do nothing`. Events sent
-- before sign-in (the nil tenant, which has no users row) are left out by the join.
-- SECURITY DEFINER as pb_metrics: the sender has no rights on pb_internal.user_activity.
create or replace function pb_internal.record_event_activity() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    insert into pb_internal.user_activity (day, user_id)
    select distinct (n.occurred_at at time zone 'Asia/Kuala_Lumpur')::date, n.business_owner_id
    from new_events n
    join public.users u on u.business_owner_id = n.business_owner_id
    on conflict do nothing;
    return null;
end
$$;
alter function pb_internal.record_event_activity() owner to pb_metrics;
revoke all on function pb_internal.record_event_activity() from public;

create or replace trigger analytics_events_activity after insert on public.analytics_events
    referencing new table as new_events
    for each statement execute function pb_internal.record_event_activity();
