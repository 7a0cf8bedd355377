-- The operator's business figures for the days p_from..p_to (Asia/Kuala_Lumpur days), as
-- GET /functions/v1/admin/metrics answers them; docs/OPERATIONS.md defines each one. "As of the
-- end" means the end of p_to, or now when that is still to come.
--
--   dau              every day of the range with its number of active users
--   mau              users active in the 30 days ending p_to
--   retention.dN     of the users who signed up in the range and whose day N after sign-up is
--                    over, the fraction active on that day (null when there are none)
--   churn_rate       of the tenants paid at the start of the range, the fraction whose paid
--                    stretch ended by the end (null when none was paid)
--   conversion_rate  of the users who signed up in the range, the fraction who have paid since
--                    (null when nobody signed up)
--   mrr              Σ amount ÷ months of the payments covering the end, as a decimal string
--   tenants          accounts created by the end; those on a paid plan at the end
-- Activity is one table now (pb_internal.user_activity holds the events' days too, written by
-- event_activity.sql): read directly, so the planner sees its statistics and its key.
drop function if exists pb_internal.active_days(date, date);

-- Active: a row in pb_internal.user_activity (an authenticated request, or an app event that
-- happened that day). Days are Asia/Kuala_Lumpur days.
create or replace function pb_internal.business_metrics(p_from date, p_to date) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
declare
    v_today  date := (pg_catalog.now() at time zone 'Asia/Kuala_Lumpur')::date;
    v_start  timestamptz;
    v_end    timestamptz;
begin
    if p_from is null or p_to is null or p_to < p_from then
        raise exception 'from and to are required, from <= to' using errcode = '22023';
    end if;
    if p_to - p_from > 731 then
        raise exception 'the range is at most 732 days' using errcode = '22023';
    end if;
    v_start := p_from::timestamp at time zone 'Asia/Kuala_Lumpur';
    v_end := least(pg_catalog.now(), (p_to + 1)::timestamp at time zone 'Asia/Kuala_Lumpur');

    return (
        with cohort as materialized (
            select u.id, (u.created_at at time zone 'Asia/Kuala_Lumpur')::date as day
            from auth.users u
            where u.created_at >= v_start
              and u.created_at < (p_to + 1)::timestamp at time zone 'Asia/Kuala_Lumpur'
        ), paid as materialized (
            select * from pb_internal.paid_intervals()
        ), stretches as (
            -- a tenant's paid intervals joined where one ends as the next begins: each
            -- interval with the end of the stretch it belongs to
            select g.*, max(g.ends_at) over (partition by g.business_owner_id, g.stretch)
                        as stretch_end
            from (select p.*, sum(p.gap) over (partition by p.business_owner_id
                                               order by p.starts_at) as stretch
                  from (select i.*,
                               case when i.starts_at = lag(i.ends_at) over w then 0 else 1 end
                                   as gap
                        from paid i
                        window w as (partition by i.business_owner_id order by i.starts_at)) p
                 ) g
        ), retention as (
            -- One key lookup per cohort member and N (a join would hash all the activity).
            select n.days,
                   count(*) filter (where c.day + n.days < v_today) as eligible,
                   count(*) filter (where c.day + n.days < v_today and exists (
                       select from pb_internal.user_activity a
                       where a.day = c.day + n.days and a.user_id = c.id
                   )) as retained
            from (values (1), (7), (30)) n (days)
            left join cohort c on true  -- all three figures, even with nobody in the cohort
            group by n.days
        ), daily as (
            select a.day, count(*) as n from pb_internal.user_activity a
            where a.day between p_from and p_to
            group by a.day
        )
        select pg_catalog.jsonb_build_object(
            'dau', (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'date', g.day::date::text, 'count', coalesce(d.n, 0))
                               order by g.day)
                    from pg_catalog.generate_series(p_from, p_to, interval '1 day') g (day)
                    left join daily d on d.day = g.day::date),
            'mau', (select count(distinct a.user_id) from pb_internal.user_activity a
                    where a.day between p_to - 29 and p_to),
            'retention', (select pg_catalog.jsonb_object_agg(
                                     'd' || r.days,
                                     r.retained::float8 / nullif(r.eligible, 0))
                          from retention r),
            -- of the tenants paid at the start, those whose stretch ended by the end
            'churn_rate', (select count(*) filter (where s.stretch_end <= v_end)::float8
                                  / nullif(count(*), 0)
                           from stretches s
                           where s.starts_at <= v_start and v_start < s.ends_at),
            'conversion_rate', (select count(p.business_owner_id)::float8 / nullif(count(*), 0)
                                from cohort c
                                left join (select distinct i.business_owner_id from paid i) p
                                       on p.business_owner_id = c.id),
            'mrr', (select pg_catalog.round(coalesce(sum(p.monthly), 0), 2)::text from paid p
                    where p.starts_at <= v_end and v_end < p.ends_at),
            'tenants', pg_catalog.jsonb_build_object(
                'total', (select count(*) from auth.users u where u.created_at < v_end),
                'paid', (select count(distinct p.business_owner_id) from paid p
                         where p.starts_at <= v_end and v_end < p.ends_at))
        )
    );
end
$$;
alter function pb_internal.business_metrics(date, date) owner to pb_metrics;
revoke all on function pb_internal.business_metrics(date, date) from public;
grant execute on function pb_internal.business_metrics(date, date) to service_role;
