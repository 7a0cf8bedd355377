-- Plans: an expired paid plan falls back to free limits; the data stays.
-- No SET clause (and fully qualified names) so the planner can inline it into its callers.
create or replace function pb_internal.plan_limits(p_owner uuid)
returns table (plan_code text, max_active_products integer, max_sales_per_month integer)
language sql stable as $$
    select p.code, p.max_active_products, p.max_sales_per_month
    from public.plans p
    where p.code = coalesce(
        (select case when u.subscription_expires_at is null or u.subscription_expires_at > now()
                     then u.subscription_plan else 'free' end
         from public.users u where u.business_owner_id = p_owner),
        'free')
$$;
grant execute on function pb_internal.plan_limits(uuid) to authenticated, service_role,
    pb_definer;
