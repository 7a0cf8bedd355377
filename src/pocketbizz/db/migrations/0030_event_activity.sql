-- Product-analytics events count as activity (issue 11.2) by writing (day, user) into
-- pb_internal.user_activity as they are stored (the trigger is in
-- definitions/ops/event_activity.sql), so the figures never scan the events themselves, whose
-- volume is many times the activity's. This migration gives the trigger's owner (pb_metrics)
-- what it writes with, and records the events stored before it.
grant insert on pb_internal.user_activity to pb_metrics;
grant select (business_owner_id) on public.users to pb_metrics;

insert into pb_internal.user_activity (day, user_id)
select distinct (e.occurred_at at time zone 'Asia/Kuala_Lumpur')::date, e.business_owner_id
from public.analytics_events e
join public.users u on u.business_owner_id = e.business_owner_id
on conflict do nothing;

-- The figures read activity only now: pb_metrics no longer reads the events (0029 let it).
revoke select (business_owner_id, occurred_at) on public.analytics_events from pb_metrics;
