-- PocketBizz on Citus: every tenant table distributed by business_owner_id, all co-located with
-- public.users, so one tenant's rows (a sale, its items, its stock movements, its products) sit
-- on one node and every request — one tenant's transaction — runs on that node alone.
--
-- Run once, as a superuser, on the coordinator, after `pocketbizz migrate` and after
-- `CREATE EXTENSION citus` (docs/DEPLOY.md, "Past one database server"). Tables created by later
-- migrations are distributed by adding them here; tests/deploy/test_distributable.py fails
-- while a table with business_owner_id is missing from this file, or when a table's keys or
-- foreign keys would keep it from being distributed and co-located.
--
-- Order matters: a table is distributed after every table its foreign keys reference.

begin;

-- Reference tables (a full copy on every node): the plans, and the accounts public.users
-- references. The other auth tables, storage, realtime.messages, the job queue and the
-- bookkeeping in pb_internal stay on the coordinator as local tables.
select create_reference_table('public.plans');
select create_reference_table('auth.users');

-- No schema change is needed first: every tenant table's primary key holds business_owner_id
-- (the two bill lookups since migration 0032). The ToyyibPay callback's lookup of a bill by
-- its id alone (it does not name the tenant) is a query of every shard, at callback rates.

-- The tenant, then what refers to it.
select create_distributed_table('public.users', 'business_owner_id');
select create_distributed_table('public.business_profiles', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.customers', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.products', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.recipe_items', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.sales', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.sale_items', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.sale_number_counters', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.stock_movements', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.receipt_links', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.outbound_messages', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.subscription_payments', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.payment_settings', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('public.payment_links', 'business_owner_id', colocate_with => 'public.users');
-- Partitioned by month: its partitions are distributed with it.
select create_distributed_table('public.analytics_events', 'business_owner_id', colocate_with => 'public.users');

select create_distributed_table('pb_internal.analytics_days', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('pb_internal.analytics_day_sales', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('pb_internal.analytics_day_products', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('pb_internal.payment_secrets', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('pb_internal.payment_bills', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('pb_internal.payment_link_bills', 'business_owner_id', colocate_with => 'public.users');
select create_distributed_table('pb_internal.plan_reminders', 'business_owner_id', colocate_with => 'public.users');
-- Which tenants have a live realtime subscriber: read by the change triggers with the row's
-- tenant (or the nil uuid for service_role subscribers), so it lives beside the tenant's rows.
select create_distributed_table('pb_internal.realtime_subscribers', 'business_owner_id', colocate_with => 'public.users');

commit;
