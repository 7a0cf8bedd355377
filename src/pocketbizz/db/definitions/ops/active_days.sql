-- Who was active on which day (issue 11.2): an authenticated request that day (recorded by the
-- server in pb_internal.user_activity) or a product-analytics event the user's app sent about
-- that day (events may arrive later from an offline queue; they count for the day they
-- happened). Days are Asia/Kuala_Lumpur days, as user_activity's are. Events sent before
-- sign-in (the nil tenant) belong to no user and are left out.
create or replace function pb_internal.active_days(p_from date, p_to date)
returns table (user_id uuid, day date)
language sql stable security definer set search_path = '' as $$
    select a.user_id, a.day
    from pb_internal.user_activity a
    where a.day between p_from and p_to
    union
    select e.business_owner_id, (e.occurred_at at time zone 'Asia/Kuala_Lumpur')::date
    from public.analytics_events e
    where e.occurred_at >= p_from::timestamp at time zone 'Asia/Kuala_Lumpur'
      and e.occurred_at < (p_to + 1)::timestamp at time zone 'Asia/Kuala_Lumpur'
      and e.business_owner_id <> '00000000-0000-0000-0000-000000000000'::uuid
$$;
alter function pb_internal.active_days(date, date) owner to pb_metrics;
revoke all on function pb_internal.active_days(date, date) from public;
