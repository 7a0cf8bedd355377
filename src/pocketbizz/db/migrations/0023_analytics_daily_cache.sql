-- Analytics' per-day rollup (issue 12.2): a cache of closed days, filled lazily by
-- public.analytics() and never written by a sale.
--
-- A sale is dated at most 7 days back (create_sale's sold_at window), so a day that ended more
-- than 8 days ago (one day of margin for a transaction still open) in the business's time zone
-- no longer changes through the domain functions, except by a void. analytics() sums such days
-- from here and computes the open ones live. The functions that fill, read and forget the
-- cache are in db/definitions/analytics/analytics_cache.sql; a trigger forgets a day whenever
-- one of its sales or lines changes (a void included), so the cache never answers what the
-- live computation would not.
--
-- Not client-visible: pb_internal, no grant to the API roles; written and read only by
-- pb_definer functions under the same forced owner policies as every tenant table, with
-- business_owner_id first in every key. The time zone is part of the key: a business that
-- changes its zone gets its days computed afresh (rows of another zone are never read).

-- A day whose rollup rows are complete (a day without sales has this row and no others).
create table pb_internal.analytics_days (
    business_owner_id uuid not null default auth.uid()
        references public.users (business_owner_id) on delete cascade,
    timezone          text not null,
    day               date not null,
    primary key (business_owner_id, timezone, day)
);

-- That day's completed sales summed per channel and payment method (analytics_sales's rows).
create table pb_internal.analytics_day_sales (
    business_owner_id uuid not null default auth.uid(),
    timezone          text not null,
    day               date not null,
    channel           text not null,
    payment_method    text not null,
    sales_count       bigint not null,
    subtotal          numeric,
    line_discount     numeric,
    sale_discount     numeric,
    tax               numeric,
    rounding          numeric,
    final             numeric,
    cogs              numeric,
    quantity          numeric,
    primary key (business_owner_id, timezone, day, channel, payment_method),
    foreign key (business_owner_id, timezone, day)
        references pb_internal.analytics_days on delete cascade
);

-- That day's completed sales' lines summed per product (analytics_products's rows).
create table pb_internal.analytics_day_products (
    business_owner_id uuid not null default auth.uid(),
    timezone          text not null,
    day               date not null,
    product_id        uuid not null,
    product_name      text,
    quantity          numeric,
    revenue           numeric,
    primary key (business_owner_id, timezone, day, product_id),
    foreign key (business_owner_id, timezone, day)
        references pb_internal.analytics_days on delete cascade
);

do $$
declare
    t text;
    op text;
begin
    foreach t in array array['analytics_days', 'analytics_day_sales', 'analytics_day_products']
    loop
        execute pg_catalog.format('alter table pb_internal.%I enable row level security', t);
        execute pg_catalog.format('alter table pb_internal.%I force row level security', t);
        foreach op in array array['select', 'insert', 'update', 'delete'] loop
            execute pg_catalog.format(
                'create policy %I on pb_internal.%I for %s to pb_definer %s '
                '(business_owner_id = (select auth.uid()))',
                t || '_' || op || '_own', t, op,
                case op when 'insert' then 'with check' else 'using' end);
        end loop;
        execute pg_catalog.format(
            'grant select, insert, delete on pb_internal.%I to pb_definer', t);
    end loop;
end
$$;
-- The trigger that forgets days runs as whoever changes a sale: pb_definer (void_sale, under
-- the policies above), or service_role and the owner writing directly (BYPASSRLS: any
-- tenant's days). Deleting a day cascades to its rollup rows as the tables' owner.
grant delete on pb_internal.analytics_days to service_role;

comment on table pb_internal.analytics_days is
    'Analytics days whose rollup rows are cached (closed days only; filled by analytics())';
