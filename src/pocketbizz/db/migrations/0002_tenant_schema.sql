-- The PocketBizz tenant schema (the seed's tables, corrected per DESIGN.md §3).
--
-- Every tenant table: business_owner_id uuid not null default auth.uid(); primary key
-- (business_owner_id, id); foreign keys between tenant tables include business_owner_id, so a
-- row can never point at another tenant's row (FK checks ignore RLS); RLS enabled and forced
-- with the seed's four policies; grants no wider than the API needs.

-- Plans are global reference data, readable by everyone, written only by the operator.
create table public.plans (
    code                text primary key,
    name                text not null,
    price_monthly       numeric(12, 2) not null default 0 check (price_monthly >= 0),
    max_active_products integer check (max_active_products >= 0),  -- null: unlimited
    max_sales_per_month integer check (max_sales_per_month >= 0),   -- null: unlimited
    is_active           boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);
insert into public.plans (code, name, price_monthly, max_active_products, max_sales_per_month)
values ('free', 'Free', 0, 50, 500),
       ('pro', 'Pro', 29.00, null, null);

-- The tenant's profile and subscription (one row per auth user; id = business_owner_id).
create table public.users (
    business_owner_id       uuid not null default auth.uid()
                            references auth.users (id) on delete cascade,
    id                      uuid not null,
    email                   text not null,
    full_name               text check (length(full_name) <= 200),
    phone                   text check (length(phone) <= 32),
    subscription_plan       text not null default 'free' references public.plans (code),
    subscription_expires_at timestamptz,
    is_active               boolean not null default true,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    primary key (business_owner_id, id),
    unique (business_owner_id),
    unique (business_owner_id, email),
    check (id = business_owner_id)
);
create index users_plan_idx on public.users (subscription_plan);

-- A time zone name PostgreSQL knows: reports and sale numbers use it, so a bad one would stop
-- every sale. (Immutable for use in a CHECK; the zone database changes only with upgrades.)
create function pb_internal.is_time_zone(name text) returns boolean
language plpgsql immutable as $$
begin
    perform now() at time zone name;
    return true;
exception when invalid_parameter_value then
    return false;
end
$$;
grant execute on function pb_internal.is_time_zone(text)
    to anon, authenticated, service_role, pb_auth;

create table public.business_profiles (
    business_owner_id   uuid not null default auth.uid()
                        references public.users (business_owner_id) on delete cascade,
    id                  uuid not null default gen_random_uuid(),
    business_name       text not null default '' check (length(business_name) <= 200),
    business_type       text,
    registration_number text,
    tax_number          text,
    phone               text,
    email               text,
    address             jsonb,
    logo_url            text,
    timezone            text not null default 'Asia/Kuala_Lumpur'
                        check (pb_internal.is_time_zone(timezone)),
    settings            jsonb not null default '{}'::jsonb,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    primary key (business_owner_id, id),
    unique (business_owner_id)  -- one profile per tenant
);
create index idx_business_settings on public.business_profiles using gin (settings);

create table public.customers (
    business_owner_id  uuid not null default auth.uid()
                       references public.users (business_owner_id) on delete cascade,
    id                 uuid not null default gen_random_uuid(),
    name               text not null check (length(name) between 1 and 200),
    phone              text check (length(phone) <= 32),
    email              text check (length(email) <= 320),
    notes              text,
    whatsapp_consent   boolean not null default false,
    consent_updated_at timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    primary key (business_owner_id, id)
);
create index customers_owner_name_idx on public.customers (business_owner_id, name);
create index customers_owner_phone_idx on public.customers (business_owner_id, phone)
    where phone is not null;

create table public.products (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    sku               text not null check (length(sku) between 1 and 64),
    name              text not null check (length(name) between 1 and 200),
    description       text,
    category          text,
    unit              text not null default 'pcs',
    cost_price        numeric(12, 2) not null default 0 check (cost_price >= 0),
    sale_price        numeric(12, 2) not null check (sale_price >= 0),
    current_stock     numeric(12, 3) not null default 0,
    reorder_level     numeric(12, 3) not null default 0 check (reorder_level >= 0),
    is_active         boolean not null default true,
    barcode           text,
    images            jsonb not null default '[]'::jsonb,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    primary key (business_owner_id, id),
    unique (business_owner_id, sku)
);
create unique index products_owner_barcode_key on public.products (business_owner_id, barcode)
    where barcode is not null;
create index idx_products_owner_active on public.products (business_owner_id, is_active)
    where is_active = true;
create index products_owner_name_idx on public.products (business_owner_id, name);
create index products_owner_category_idx on public.products (business_owner_id, category);

create table public.sales (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    sale_number       text not null,
    customer_id       uuid,
    channel           text not null default 'walk-in'
                      check (channel in ('walk-in', 'online', 'delivery')),
    status            text not null default 'completed' check (status in ('completed', 'void')),
    total_amount      numeric(12, 2) not null check (total_amount >= 0),
    discount_amount   numeric(12, 2) not null default 0 check (discount_amount >= 0),
    tax_amount        numeric(12, 2) not null default 0 check (tax_amount >= 0),
    rounding_amount   numeric(12, 2) not null default 0 check (rounding_amount between -0.02 and 0.02),
    final_amount      numeric(12, 2) not null check (final_amount >= 0),
    payment_method    text not null default 'cash'
                      check (payment_method in ('cash', 'card', 'ewallet', 'qr', 'bank_transfer',
                                                'toyyibpay', 'credit', 'other')),
    payment_status    text not null default 'paid'
                      check (payment_status in ('pending', 'paid', 'failed', 'refunded')),
    notes             text,
    client_ref        uuid,
    request_hash      text,
    voided_at         timestamptz,
    void_reason       text,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    primary key (business_owner_id, id),
    unique (business_owner_id, sale_number),
    unique (business_owner_id, client_ref),
    foreign key (business_owner_id, customer_id)
        references public.customers (business_owner_id, id) on delete set null (customer_id),
    check ((status = 'void') = (voided_at is not null))
);
create index idx_sales_owner_date on public.sales (business_owner_id, created_at desc);
create index idx_sales_pending on public.sales (business_owner_id)
    where payment_status = 'pending';
create index sales_owner_customer_idx on public.sales (business_owner_id, customer_id)
    where customer_id is not null;

create table public.sale_items (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    sale_id           uuid not null,
    product_id        uuid not null,
    product_name      text not null,
    quantity          numeric(12, 3) not null check (quantity > 0),
    unit_price        numeric(12, 2) not null check (unit_price >= 0),
    discount_amount   numeric(12, 2) not null default 0 check (discount_amount >= 0),
    tax_amount        numeric(12, 2) not null default 0 check (tax_amount >= 0),
    subtotal          numeric(12, 2) not null check (subtotal >= 0),
    unit_cost         numeric(12, 2) not null default 0 check (unit_cost >= 0),
    created_at        timestamptz not null default now(),
    primary key (business_owner_id, id),
    foreign key (business_owner_id, sale_id)
        references public.sales (business_owner_id, id) on delete cascade,
    foreign key (business_owner_id, product_id)
        references public.products (business_owner_id, id)
);
create index sale_items_owner_sale_idx on public.sale_items (business_owner_id, sale_id);
create index idx_sale_items_product on public.sale_items (business_owner_id, product_id);

-- Append-only: products.current_stock = Σ in − Σ out at every commit.
create table public.stock_movements (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    product_id        uuid not null,
    reference_type    text not null
                      check (reference_type in ('sale', 'void', 'refund', 'purchase',
                                                'adjustment', 'production', 'waste', 'opening')),
    reference_id      uuid,
    movement_type     text not null check (movement_type in ('in', 'out')),
    quantity          numeric(12, 3) not null check (quantity > 0),
    unit_cost         numeric(12, 2) check (unit_cost >= 0),
    reason            text,
    notes             text,
    created_by        uuid default auth.uid(),
    created_at        timestamptz not null default now(),
    primary key (business_owner_id, id),
    foreign key (business_owner_id, product_id)
        references public.products (business_owner_id, id)
);
create index idx_stock_movements_product
    on public.stock_movements (business_owner_id, product_id, created_at desc);
create index stock_movements_owner_date_idx
    on public.stock_movements (business_owner_id, created_at desc);
create index stock_movements_reference_idx
    on public.stock_movements (business_owner_id, reference_id) where reference_id is not null;

create function pb_internal.refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception '% is append-only', tg_table_name using errcode = '42501';
end
$$;
create trigger stock_movements_append_only before update or delete on public.stock_movements
    for each row execute function pb_internal.refuse_change();

-- updated_at kept by trigger
create trigger plans_touch before update on public.plans
    for each row execute function pb_internal.touch_updated_at();
create trigger users_touch before update on public.users
    for each row execute function pb_internal.touch_updated_at();
create trigger business_profiles_touch before update on public.business_profiles
    for each row execute function pb_internal.touch_updated_at();
create trigger customers_touch before update on public.customers
    for each row execute function pb_internal.touch_updated_at();
create trigger products_touch before update on public.products
    for each row execute function pb_internal.touch_updated_at();
create trigger sales_touch before update on public.sales
    for each row execute function pb_internal.touch_updated_at();

-- ---------------------------------------------------------------------------------------------
-- Row level security: enabled and forced, the seed's four policies on every tenant table.
-- Policies apply to every role (no TO clause, as in the seed): SECURITY DEFINER functions run as
-- the migration owner, which is subject to them too when it is not a superuser (FORCE).
-- Later migrations call it for each tenant table they add.
create function pb_internal.protect_tenant_table(t text) returns void
language plpgsql as $$
begin
    execute format('alter table public.%I enable row level security', t);
    execute format('alter table public.%I force row level security', t);
    execute format('create policy %I on public.%I for select '
                   'using (business_owner_id = (select auth.uid()))', t || '_select_own', t);
    execute format('create policy %I on public.%I for insert '
                   'with check (business_owner_id = (select auth.uid()))', t || '_insert_own', t);
    execute format('create policy %I on public.%I for update '
                   'using (business_owner_id = (select auth.uid())) '
                   'with check (business_owner_id = (select auth.uid()))', t || '_update_own', t);
    execute format('create policy %I on public.%I for delete '
                   'using (business_owner_id = (select auth.uid()))', t || '_delete_own', t);
end
$$;

select pb_internal.protect_tenant_table(t)
from unnest(array['users', 'business_profiles', 'customers', 'products', 'sales', 'sale_items',
                  'stock_movements']) t;

alter table public.plans enable row level security;
alter table public.plans force row level security;
create policy plans_read_all on public.plans for select using (is_active);

-- ---------------------------------------------------------------------------------------------
-- Grants: what each API role may touch. Stock, totals and subscriptions change only through
-- SQL functions, so clients get no write grant on those columns or tables.
grant select on public.plans to anon, authenticated;

grant select on public.users to authenticated;
grant update (full_name, phone) on public.users to authenticated;

grant select on public.business_profiles to authenticated;
grant update (business_name, business_type, registration_number, tax_number, phone, email,
              address, logo_url, timezone, settings)
    on public.business_profiles to authenticated;

grant select, delete on public.customers to authenticated;
grant insert (business_owner_id, id, name, phone, email, notes, whatsapp_consent,
              consent_updated_at)
    on public.customers to authenticated;
grant update (name, phone, email, notes, whatsapp_consent, consent_updated_at)
    on public.customers to authenticated;

grant select, delete on public.products to authenticated;
grant insert (business_owner_id, id, sku, name, description, category, unit, cost_price,
              sale_price, reorder_level, is_active, barcode, images)
    on public.products to authenticated;
grant update (sku, name, description, category, unit, cost_price, sale_price, reorder_level,
              is_active, barcode, images)
    on public.products to authenticated;

grant select on public.sales, public.sale_items, public.stock_movements to authenticated;

grant select, insert, update, delete on all tables in schema public to service_role;

-- ---------------------------------------------------------------------------------------------
-- Sign-up creates the tenant: profile row, empty business profile, free plan. Runs in the
-- sign-up transaction; the claims are set to the new user so the inserts pass forced RLS even
-- when the function owner is not a superuser.
create function pb_internal.create_tenant() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    perform set_config('request.jwt.claims',
                       json_build_object('sub', new.id, 'role', 'authenticated')::text, true);
    insert into public.users (business_owner_id, id, email, full_name, phone)
    values (new.id, new.id, new.email,
            left(new.raw_user_meta_data ->> 'full_name', 200),
            left(new.raw_user_meta_data ->> 'phone', 32));
    insert into public.business_profiles (business_owner_id, business_name)
    values (new.id, left(coalesce(new.raw_user_meta_data ->> 'business_name', ''), 200));
    return new;
end
$$;
create trigger on_auth_user_created after insert on auth.users
    for each row execute function pb_internal.create_tenant();

create function pb_internal.sync_tenant_email() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    perform set_config('request.jwt.claims',
                       json_build_object('sub', new.id, 'role', 'authenticated')::text, true);
    update public.users set email = new.email where business_owner_id = new.id;
    return new;
end
$$;
create trigger on_auth_user_email_changed after update of email on auth.users
    for each row when (old.email is distinct from new.email)
    execute function pb_internal.sync_tenant_email();
