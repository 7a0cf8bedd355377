-- Who was active on which day (issue 11.2): an authenticated request that day (recorded by the
-- server) or a product-analytics event that happened that day (recorded as it is stored, by
-- definitions/ops/event_activity.sql). Both land in pb_internal.user_activity, one row per
-- user and Asia/Kuala_Lumpur day, so the figures never scan the events themselves.
create or replace function pb_internal.active_days(p_from date, p_to date)
returns table (user_id uuid, day date)
language sql stable security definer set search_path = '' as $$
    select a.user_id, a.day
    from pb_internal.user_activity a
    where a.day between p_from and p_to
$$;
alter function pb_internal.active_days(date, date) owner to pb_metrics;
revoke all on function pb_internal.active_days(date, date) from public;
