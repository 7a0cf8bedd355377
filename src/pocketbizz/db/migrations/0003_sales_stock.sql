-- Sales, the stock ledger and analytics, as SQL functions callable through /rest/v1/rpc.
--
-- Writers (create_sale, void_sale, record_purchase, adjust_stock, record_production) are
-- SECURITY DEFINER because clients hold no write grant on sales, sale_items, stock_movements or
-- products.current_stock. Each one takes the tenant only from auth.uid() (never from an
-- argument), refuses when it is null, filters every statement by business_owner_id, and relies
-- on forced RLS rather than bypassing it. analytics() needs no extra rights: SECURITY INVOKER.
--
-- Error contract (the REST layer maps SQLSTATE to HTTP like PostgREST):
--   42501  no signed-in user                                     -> 401/403
--   22023  invalid argument (shape, sign, scale, unknown channel) -> 400
--   PT404  unknown product / sale / customer, or another tenant's -> 404 ("not found", no leak)
--   PT409  client_ref reused with a different request body        -> 409
--   PT422  business rule refused: insufficient stock (names the product), inactive product,
--          discount larger than the amount                        -> 422
--   PT402  plan limit reached (names the limit and the plan)      -> 402
--
-- Money rules (mirrored in pocketbizz.domain.money for tests and receipts):
--   line gross    = round(quantity * unit_price, 2); line subtotal = gross - line discount
--   total_amount  = sum of line subtotals; discount_amount = the sale-level discount
--   tax           = per line on (subtotal - its share of the sale discount), rate = product
--                   tax_rate, else the business sst_rate; zero unless sst_enabled; exclusive
--                   prices add it, inclusive prices contain it (base * r / (100 + r))
--   rounding      = cash tenders only (business cash_rounding), total to the nearest 5 sen
--   final_amount  = total - discount (+ tax if exclusive) + rounding
--
-- analytics(start_date, end_date) -> {start_date, end_date, timezone, totals, by_day[],
--   by_channel[], by_payment_method[], top_products {by_revenue[10], by_quantity[10]},
--   low_stock[<=100]}. Completed sales only (void excluded), days in business_profiles.timezone,
--   both dates inclusive, every day present. Each totals/by_* entry carries:
--   sales_count; gross_sales = lines before any discount; discounts = line + sale discounts;
--   tax; rounding; net_sales = final - tax - rounding (what the business keeps);
--   cogs = sum of round(quantity * unit cost at sale, 2); gross_profit = net_sales - cogs;
--   margin_pct = gross_profit / net_sales * 100 (0 without sales); average_ticket =
--   final / sales_count; items_sold = units. top_products: revenue = line subtotals (after
--   line discounts), ties broken by product id.
--
-- Sale numbers: per tenant and period, gapless (the counter row is written in the sale's
-- transaction). Idempotency: client_ref + a hash of the normalised arguments; an advisory lock
-- on (tenant, client_ref) makes a concurrent retry wait for the first call. void_sale of a void
-- sale returns it unchanged. Plan limits: plans row of the current plan, or free once
-- subscription_expires_at has passed; counted under the counter lock, so exact.
--
-- Deployment note: with a non-superuser migration owner, that owner must be a member of
-- `authenticated` (the policies are `to authenticated`); otherwise these functions see no rows
-- and answer "not found" — failing closed.
--
-- Locking: every writer locks the products it touches in one statement ordered by id, and
-- takes other row locks only before (void_sale: the sale) or after (create_sale: the sale
-- number counter) that statement, so concurrent calls queue and never deadlock.

-- ---------------------------------------------------------------------------------------------
-- Business settings and per-product overrides.
alter table public.business_profiles
    add column sst_enabled           boolean not null default false,
    add column sst_rate              numeric(5, 2) not null default 6.00
                                     check (sst_rate between 0 and 100),
    add column prices_include_tax    boolean not null default false,
    add column negative_stock_policy text not null default 'block'
                                     check (negative_stock_policy in ('block', 'allow')),
    add column cash_rounding         boolean not null default true,
    -- {YYYY} {YY} {MM} {SEQ}; the counter restarts each month if {MM} is used, each year if
    -- only the year is, never otherwise.
    add column sale_number_format    text not null default 'INV-{YYYY}-{SEQ}'
                                     check (length(sale_number_format) <= 40
                                            and strpos(sale_number_format, '{SEQ}') > 0),
    add column sale_number_digits    smallint not null default 6
                                     check (sale_number_digits between 1 and 12);
grant update (sst_enabled, sst_rate, prices_include_tax, negative_stock_policy, cash_rounding,
              sale_number_format, sale_number_digits)
    on public.business_profiles to authenticated;

-- Every sale line updates its product's stock: leave room in each page so those updates stay
-- HOT (no new index entries for an unchanged key), instead of bloating every product index.
alter table public.products set (fillfactor = 80);

alter table public.products
    add column tax_rate              numeric(5, 2) check (tax_rate between 0 and 100),
    add column negative_stock_policy text check (negative_stock_policy in ('block', 'allow'));
grant insert (tax_rate, negative_stock_policy), update (tax_rate, negative_stock_policy)
    on public.products to authenticated;

-- Receipt line order.
alter table public.sale_items add column line_no integer not null default 1 check (line_no > 0);

-- Per-sale sums of its lines, written once by create_sale, so reports read sales alone:
-- line discounts, cost of goods (sum of round(quantity * unit_cost, 2)) and units sold.
alter table public.sales
    add column items_discount_amount numeric(12, 2) not null default 0
                                     check (items_discount_amount >= 0),
    add column cost_amount           numeric(12, 2) not null default 0 check (cost_amount >= 0),
    add column items_quantity        numeric(14, 3) not null default 0
                                     check (items_quantity >= 0);

-- ---------------------------------------------------------------------------------------------
-- Recipes: one unit of product_id consumes quantity of ingredient_id.
create table public.recipe_items (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id                uuid not null default gen_random_uuid(),
    product_id        uuid not null,
    ingredient_id     uuid not null,
    quantity          numeric(12, 3) not null check (quantity > 0),
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    primary key (business_owner_id, id),
    unique (business_owner_id, product_id, ingredient_id),
    foreign key (business_owner_id, product_id)
        references public.products (business_owner_id, id) on delete cascade,
    foreign key (business_owner_id, ingredient_id)
        references public.products (business_owner_id, id) on delete cascade,
    check (product_id <> ingredient_id)
);
create index recipe_items_owner_ingredient_idx
    on public.recipe_items (business_owner_id, ingredient_id);
create trigger recipe_items_touch before update on public.recipe_items
    for each row execute function pb_internal.touch_updated_at();

-- Gapless per-tenant sale numbers: the counter row is updated in the sale's transaction, so a
-- rolled-back sale gives its number back and concurrent sales queue on the row.
create table public.sale_number_counters (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    period            text not null,  -- 'YYYY-MM', 'YYYY' or 'all', per the format
    last_value        bigint not null check (last_value > 0),
    updated_at        timestamptz not null default now(),
    primary key (business_owner_id, period)
);

-- Forced RLS and the four owner policies (pb_internal.protect_tenant_table, from 0002).
select pb_internal.protect_tenant_table(t) from unnest(array['recipe_items', 'sale_number_counters']) t;

grant select, delete on public.recipe_items to authenticated;
grant insert (business_owner_id, id, product_id, ingredient_id, quantity),
      update (quantity) on public.recipe_items to authenticated;
grant select on public.sale_number_counters to authenticated;
grant select, insert, update, delete on public.recipe_items, public.sale_number_counters
    to service_role;

-- ---------------------------------------------------------------------------------------------
-- Plans: an expired paid plan falls back to free limits; the data stays.
-- No SET clause (and fully qualified names) so the planner can inline it into its callers.
create function pb_internal.plan_limits(p_owner uuid)
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
grant execute on function pb_internal.plan_limits(uuid) to authenticated, service_role;

create function pb_internal.enforce_active_product_limit() returns trigger
language plpgsql set search_path = '' as $$
declare
    v_plan text;
    v_limit integer;
    v_count bigint;
begin
    select l.plan_code, l.max_active_products into v_plan, v_limit
    from pb_internal.plan_limits(new.business_owner_id) l;
    if v_limit is null then
        return null;
    end if;
    -- Serialise activations per tenant so two concurrent inserts cannot both take the last slot.
    perform pg_advisory_xact_lock(
        hashtextextended('pocketbizz.active_products:' || new.business_owner_id::text, 0));
    select count(*) into v_count
    from public.products p
    where p.business_owner_id = new.business_owner_id and p.is_active;
    if v_count > v_limit then
        raise exception 'plan limit reached: max_active_products is % on the % plan',
                        v_limit, v_plan
            using errcode = 'PT402', hint = 'Upgrade the plan or deactivate a product.';
    end if;
    return null;
end
$$;
grant execute on function pb_internal.enforce_active_product_limit() to authenticated, service_role;
create trigger products_active_limit after insert or update of is_active on public.products
    for each row when (new.is_active)
    execute function pb_internal.enforce_active_product_limit();

-- ---------------------------------------------------------------------------------------------
-- A sale as the API returns it (create_sale, its idempotent replay, void_sale).
create function pb_internal.sale_json(p_owner uuid, p_sale_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'id', s.id, 'sale_number', s.sale_number, 'status', s.status, 'channel', s.channel,
        'customer_id', s.customer_id, 'total_amount', s.total_amount,
        'discount_amount', s.discount_amount, 'tax_amount', s.tax_amount,
        'rounding_amount', s.rounding_amount, 'final_amount', s.final_amount,
        'payment_method', s.payment_method, 'payment_status', s.payment_status,
        'notes', s.notes, 'client_ref', s.client_ref, 'created_at', s.created_at,
        'voided_at', s.voided_at, 'void_reason', s.void_reason,
        'items', coalesce((
            select jsonb_agg(jsonb_build_object(
                       'id', i.id, 'line_no', i.line_no, 'product_id', i.product_id,
                       'product_name', i.product_name, 'quantity', i.quantity,
                       'unit_price', i.unit_price, 'discount_amount', i.discount_amount,
                       'tax_amount', i.tax_amount, 'subtotal', i.subtotal)
                   order by i.line_no)
            from public.sale_items i
            where i.business_owner_id = p_owner and i.sale_id = s.id), '[]'::jsonb))
    from public.sales s
    where s.business_owner_id = p_owner and s.id = p_sale_id
$$;

-- One priced line of a sale being created, kept in memory between the set-based statements.
create type pb_internal.sale_line as (
    line_no      integer,
    product_id   uuid,
    product_name text,
    quantity     numeric,
    unit_price   numeric,
    discount     numeric,
    subtotal     numeric,
    tax_rate     numeric,
    tax          numeric,
    unit_cost    numeric,
    stock        numeric,
    policy       text,
    active       boolean,
    found        boolean
);

create function pb_internal.require_uid() returns uuid
language plpgsql stable set search_path = '' as $$
declare
    v_uid uuid := auth.uid();
begin
    if v_uid is null then
        raise exception 'a signed-in user is required' using errcode = '42501';
    end if;
    return v_uid;
end
$$;

-- True when v has at most `places` decimals (money 2, quantities 3). Inlined (no SET clause).
create function pb_internal.has_scale(v numeric, places integer) returns boolean
language sql immutable as $$
    select pg_catalog.round(v, places) operator(pg_catalog.=) v
$$;

-- ---------------------------------------------------------------------------------------------
create function public.create_sale(
    items           jsonb,
    channel         text    default 'walk-in',
    customer_id     uuid    default null,
    discount_amount numeric default 0,
    payment_method  text    default 'cash',
    payment_status  text    default 'paid',
    notes           text    default null,
    client_ref      uuid    default null
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_items    jsonb := create_sale.items;
    v_channel  text := coalesce(create_sale.channel, 'walk-in');
    v_customer uuid := create_sale.customer_id;
    v_discount numeric := coalesce(create_sale.discount_amount, 0);
    v_method   text := coalesce(create_sale.payment_method, 'cash');
    v_pstatus  text := coalesce(create_sale.payment_status, 'paid');
    v_notes    text := create_sale.notes;
    v_ref      uuid := create_sale.client_ref;
    v_hash     text;
    v_found_id uuid;
    v_found_hash text;
    v_biz      public.business_profiles;
    v_ids      uuid[];
    v_lines    pb_internal.sale_line[];
    v_line     pb_internal.sale_line;
    v_bad      record;
    v_total    numeric := 0;
    v_tax      numeric := 0;
    v_shares   numeric[];
    v_base     numeric;
    v_pre      numeric;
    v_rounding numeric := 0;
    v_local    timestamp;
    v_period   text;
    v_seq      bigint;
    v_number   text;
    v_plan     text;
    v_limit    integer;
    v_count    bigint;
    v_sale_id  uuid := gen_random_uuid();
begin
    -- Arguments.
    if jsonb_typeof(v_items) is distinct from 'array' or jsonb_array_length(v_items) = 0 then
        raise exception 'items must be a non-empty array' using errcode = '22023';
    end if;
    if jsonb_array_length(v_items) > 500 then
        raise exception 'a sale has at most 500 items' using errcode = '22023';
    end if;
    if v_channel not in ('walk-in', 'online', 'delivery') then
        raise exception 'unknown channel "%"', v_channel using errcode = '22023';
    end if;
    if v_method not in ('cash', 'card', 'ewallet', 'qr', 'bank_transfer', 'toyyibpay', 'credit',
                        'other') then
        raise exception 'unknown payment_method "%"', v_method using errcode = '22023';
    end if;
    if v_pstatus not in ('pending', 'paid', 'failed') then
        raise exception 'unknown payment_status "%"', v_pstatus using errcode = '22023';
    end if;
    if length(v_notes) > 1000 then
        raise exception 'notes are at most 1000 characters' using errcode = '22023';
    end if;
    if v_discount < 0 or not pb_internal.has_scale(v_discount, 2) then
        raise exception 'discount_amount must be a non-negative amount in sen'
            using errcode = '22023';
    end if;
    select e.ord into v_bad
    from jsonb_array_elements(v_items) with ordinality e(x, ord)
    where jsonb_typeof(e.x) is distinct from 'object'
       or jsonb_typeof(e.x -> 'product_id') is distinct from 'string'
       or coalesce(jsonb_typeof(e.x -> 'quantity'), 'null') not in ('number', 'string')
       or (e.x ->> 'quantity')::numeric <= 0
       or not pb_internal.has_scale((e.x ->> 'quantity')::numeric, 3)
       -- numbers, or strings holding numbers (clients that keep money out of floats)
       or coalesce(jsonb_typeof(e.x -> 'unit_price'), 'null') not in ('number', 'string', 'null')
       or coalesce(jsonb_typeof(e.x -> 'discount_amount'), 'null')
          not in ('number', 'string', 'null')
       or (e.x ->> 'unit_price')::numeric < 0
       or not pb_internal.has_scale((e.x ->> 'unit_price')::numeric, 2)
       or (e.x ->> 'discount_amount')::numeric < 0
       or not pb_internal.has_scale((e.x ->> 'discount_amount')::numeric, 2)
    order by e.ord
    limit 1;
    if found then
        raise exception 'item % is invalid: it needs product_id, a positive quantity (3 decimals '
                        'at most) and non-negative amounts in sen', v_bad.ord
            using errcode = '22023';
    end if;

    -- Idempotency: one client_ref, one sale. The advisory lock makes a retry that arrives while
    -- the first call is still running wait for it, then see its committed sale.
    if v_ref is not null then
        v_hash := md5(jsonb_build_object(
            'items', (select jsonb_agg(jsonb_build_object(
                                 'product_id', (e.x ->> 'product_id')::uuid,
                                 'quantity', trim_scale((e.x ->> 'quantity')::numeric),
                                 'unit_price', trim_scale((e.x ->> 'unit_price')::numeric),
                                 'discount_amount',
                                 trim_scale(coalesce((e.x ->> 'discount_amount')::numeric, 0)))
                             order by e.ord)
                      from jsonb_array_elements(v_items) with ordinality e(x, ord)),
            'channel', v_channel, 'customer_id', v_customer,
            'discount_amount', trim_scale(v_discount), 'payment_method', v_method,
            'payment_status', v_pstatus, 'notes', v_notes)::text);
        perform pg_advisory_xact_lock(
            hashtextextended('pocketbizz.sale:' || v_uid::text || ':' || v_ref::text, 0));
        select s.id, s.request_hash into v_found_id, v_found_hash
        from public.sales s
        where s.business_owner_id = v_uid and s.client_ref = v_ref;
        if found then
            if v_found_hash is distinct from v_hash then
                raise exception 'client_ref % was already used for a different sale', v_ref
                    using errcode = 'PT409';
            end if;
            return pb_internal.sale_json(v_uid, v_found_id);
        end if;
    end if;

    if v_customer is not null then
        perform 1 from public.customers c where c.business_owner_id = v_uid and c.id = v_customer;
        if not found then
            raise exception 'customer not found' using errcode = 'PT404';
        end if;
    end if;

    select b.* into v_biz from public.business_profiles b where b.business_owner_id = v_uid;
    if not found then
        raise exception 'business profile not found' using errcode = 'PT404';
    end if;

    -- Lock the products in id order: sales over the same products queue, never deadlock.
    select array_agg(distinct (e.x ->> 'product_id')::uuid) into v_ids
    from jsonb_array_elements(v_items) e(x);
    perform 1 from public.products p
    where p.business_owner_id = v_uid and p.id = any(v_ids)
    order by p.id
    for update;

    select array_agg(row(
               e.ord, e.product_id, p.name, e.quantity, coalesce(e.unit_price, p.sale_price),
               e.discount,
               round(e.quantity * coalesce(e.unit_price, p.sale_price), 2) - e.discount,
               case when v_biz.sst_enabled then coalesce(p.tax_rate, v_biz.sst_rate) else 0 end,
               0, p.cost_price, p.current_stock,
               coalesce(p.negative_stock_policy, v_biz.negative_stock_policy),
               p.is_active, p.id is not null
           )::pb_internal.sale_line order by e.ord)
    into v_lines
    from (select t.ord::integer as ord,
                 (t.x ->> 'product_id')::uuid as product_id,
                 (t.x ->> 'quantity')::numeric as quantity,
                 (t.x ->> 'unit_price')::numeric as unit_price,
                 coalesce((t.x ->> 'discount_amount')::numeric, 0) as discount
          from jsonb_array_elements(v_items) with ordinality t(x, ord)) e
    left join public.products p on p.business_owner_id = v_uid and p.id = e.product_id;

    select l.product_id into v_bad from unnest(v_lines) l where not l.found limit 1;
    if found then
        raise exception 'product % not found', v_bad.product_id using errcode = 'PT404';
    end if;
    select l.product_name into v_bad from unnest(v_lines) l where not l.active limit 1;
    if found then
        raise exception 'product "%" is not active', v_bad.product_name using errcode = 'PT422';
    end if;
    select l.line_no into v_bad from unnest(v_lines) l where l.subtotal < 0 limit 1;
    if found then
        raise exception 'the discount on item % is larger than its amount', v_bad.line_no
            using errcode = 'PT422';
    end if;
    select l.product_name, min(l.stock) as stock, sum(l.quantity) as wanted into v_bad
    from unnest(v_lines) l
    where l.policy = 'block'
    group by l.product_id, l.product_name
    having min(l.stock) < sum(l.quantity)
    order by l.product_id
    limit 1;
    if found then
        raise exception 'insufficient stock for "%": % available, % requested',
                        v_bad.product_name, trim_scale(v_bad.stock), trim_scale(v_bad.wanted)
            using errcode = 'PT422';
    end if;

    -- Money: the sale discount is shared across lines in proportion to their subtotals
    -- (largest remainder, so the shares add up to the sen) only to find each line's tax base;
    -- the stored discount stays one amount.
    select sum(l.subtotal) into v_total from unnest(v_lines) l;
    if v_discount > v_total then
        raise exception 'discount_amount % is larger than the sale total %', v_discount, v_total
            using errcode = 'PT422';
    end if;
    if v_discount > 0 then
        select array_agg(x.share + case when x.rank <= x.missing then 0.01 else 0 end
                         order by x.i)
        into v_shares
        from (select f.i, f.sen / 100 as share,
                     row_number() over (order by f.exact - f.sen desc, f.i) as rank,
                     v_discount * 100 - sum(f.sen) over () as missing
              from (select g.i, v_discount * 100 * v_lines[g.i].subtotal / v_total as exact,
                           floor(v_discount * 100 * v_lines[g.i].subtotal / v_total) as sen
                    from generate_subscripts(v_lines, 1) g(i)) f) x;
    end if;
    for i in 1 .. array_length(v_lines, 1) loop
        v_line := v_lines[i];
        v_base := v_line.subtotal - coalesce(v_shares[i], 0);
        v_lines[i].tax := case
            when v_line.tax_rate = 0 then 0
            when v_biz.prices_include_tax
                then round(v_base * v_line.tax_rate / (100 + v_line.tax_rate), 2)
            else round(v_base * v_line.tax_rate / 100, 2) end;
        v_tax := v_tax + v_lines[i].tax;
    end loop;
    v_pre := v_total - v_discount + case when v_biz.prices_include_tax then 0 else v_tax end;
    if v_method = 'cash' and v_biz.cash_rounding then
        -- Bank Negara rounding: 1-2 sen down, 3-4 up, 6-7 down, 8-9 up (never a half).
        v_rounding := round(v_pre * 20) / 20 - v_pre;
    end if;

    -- The sale number, then the plan limit (exact: the counter row serialises the tenant's
    -- sales for the period).
    v_local := now() at time zone v_biz.timezone;
    v_period := case
        when strpos(v_biz.sale_number_format, '{MM}') > 0 then to_char(v_local, 'YYYY-MM')
        when strpos(v_biz.sale_number_format, '{YYYY}') > 0
          or strpos(v_biz.sale_number_format, '{YY}') > 0 then to_char(v_local, 'YYYY')
        else 'all' end;
    insert into public.sale_number_counters as c (business_owner_id, period, last_value)
    values (v_uid, v_period, 1)
    on conflict (business_owner_id, period)
        do update set last_value = c.last_value + 1, updated_at = now()
    returning c.last_value into v_seq;
    v_number := replace(replace(replace(replace(v_biz.sale_number_format,
                    '{YYYY}', to_char(v_local, 'YYYY')),
                    '{YY}', to_char(v_local, 'YY')),
                    '{MM}', to_char(v_local, 'MM')),
                    '{SEQ}', lpad(v_seq::text, greatest(v_biz.sale_number_digits,
                                                        length(v_seq::text)), '0'));

    select l.plan_code, l.max_sales_per_month into v_plan, v_limit
    from pb_internal.plan_limits(v_uid) l;
    if v_limit is not null then
        select count(*) into v_count
        from public.sales s
        where s.business_owner_id = v_uid
          and s.created_at >= date_trunc('month', v_local) at time zone v_biz.timezone;
        if v_count >= v_limit then
            raise exception 'plan limit reached: max_sales_per_month is % on the % plan',
                            v_limit, v_plan
                using errcode = 'PT402', hint = 'Upgrade the plan to record more sales.';
        end if;
    end if;

    insert into public.sales (business_owner_id, id, sale_number, customer_id, channel,
                              total_amount, discount_amount, tax_amount, rounding_amount,
                              final_amount, payment_method, payment_status, notes, client_ref,
                              request_hash, items_discount_amount, cost_amount, items_quantity)
    select v_uid, v_sale_id, v_number, v_customer, v_channel, v_total, v_discount, v_tax,
           v_rounding, v_pre + v_rounding, v_method, v_pstatus, v_notes, v_ref, v_hash,
           sum(l.discount), sum(round(l.quantity * l.unit_cost, 2)), sum(l.quantity)
    from unnest(v_lines) l;
    insert into public.sale_items (business_owner_id, sale_id, line_no, product_id, product_name,
                                   quantity, unit_price, discount_amount, tax_amount, subtotal,
                                   unit_cost)
    select v_uid, v_sale_id, l.line_no, l.product_id, l.product_name, l.quantity, l.unit_price,
           l.discount, l.tax, l.subtotal, l.unit_cost
    from unnest(v_lines) l;
    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost,
                                        created_by)
    select v_uid, l.product_id, 'sale', v_sale_id, 'out', l.quantity, l.unit_cost, v_uid
    from unnest(v_lines) l;
    update public.products p
    set current_stock = p.current_stock - q.quantity
    from (select l.product_id, sum(l.quantity) as quantity
          from unnest(v_lines) l group by l.product_id) q
    where p.business_owner_id = v_uid and p.id = q.product_id;

    return pb_internal.sale_json(v_uid, v_sale_id);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Void: the sale is kept (status, time, reason) and its stock comes back. Voiding a void sale
-- returns it unchanged, so a retried void is harmless.
create function public.void_sale(sale_id uuid, reason text) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid    uuid := pb_internal.require_uid();
    v_sale   uuid := void_sale.sale_id;
    v_reason text := nullif(btrim(void_sale.reason), '');
    v_status text;
begin
    if v_reason is null or length(v_reason) > 500 then
        raise exception 'a reason (at most 500 characters) is required' using errcode = '22023';
    end if;
    select s.status into v_status
    from public.sales s
    where s.business_owner_id = v_uid and s.id = v_sale
    for update;
    if not found then
        raise exception 'sale not found' using errcode = 'PT404';
    end if;
    if v_status = 'void' then
        return pb_internal.sale_json(v_uid, v_sale);
    end if;

    perform 1 from public.products p
    where p.business_owner_id = v_uid
      and p.id in (select i.product_id from public.sale_items i
                   where i.business_owner_id = v_uid and i.sale_id = v_sale)
    order by p.id
    for update;
    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, reason,
                                        created_by)
    select v_uid, i.product_id, 'void', v_sale, 'in', i.quantity, i.unit_cost, v_reason, v_uid
    from public.sale_items i
    where i.business_owner_id = v_uid and i.sale_id = v_sale;
    update public.products p
    set current_stock = p.current_stock + q.quantity
    from (select i.product_id, sum(i.quantity) as quantity
          from public.sale_items i
          where i.business_owner_id = v_uid and i.sale_id = v_sale
          group by i.product_id) q
    where p.business_owner_id = v_uid and p.id = q.product_id;
    update public.sales s
    set status = 'void', voided_at = now(), void_reason = v_reason
    where s.business_owner_id = v_uid and s.id = v_sale;

    return pb_internal.sale_json(v_uid, v_sale);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Stock in from a supplier; cost_price becomes the moving average over the stock on hand
-- (negative stock counts as none).
create function public.record_purchase(product_id uuid, quantity numeric, unit_cost numeric,
                                       notes text default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_product  uuid := record_purchase.product_id;
    v_qty      numeric := record_purchase.quantity;
    v_cost     numeric := record_purchase.unit_cost;
    v_stock    numeric;
    v_old_cost numeric;
    v_new_cost numeric;
    v_movement uuid := gen_random_uuid();
begin
    if v_qty is null or v_qty <= 0 or not pb_internal.has_scale(v_qty, 3) then
        raise exception 'quantity must be positive with at most 3 decimals' using errcode = '22023';
    end if;
    if v_cost is null or v_cost < 0 or not pb_internal.has_scale(v_cost, 2) then
        raise exception 'unit_cost must be a non-negative amount in sen' using errcode = '22023';
    end if;
    select p.current_stock, p.cost_price into v_stock, v_old_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product
    for update;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;
    v_new_cost := round((greatest(v_stock, 0) * v_old_cost + v_qty * v_cost)
                        / (greatest(v_stock, 0) + v_qty), 2);
    insert into public.stock_movements (business_owner_id, id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, notes,
                                        created_by)
    values (v_uid, v_movement, v_product, 'purchase', v_movement, 'in', v_qty, v_cost,
            record_purchase.notes, v_uid);
    update public.products p
    set current_stock = p.current_stock + v_qty, cost_price = v_new_cost
    where p.business_owner_id = v_uid and p.id = v_product;
    return jsonb_build_object('movement_id', v_movement, 'product_id', v_product,
                              'current_stock', v_stock + v_qty, 'cost_price', v_new_cost);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- A stock count: the difference from the book level becomes one movement. Waste-like reasons
-- are recorded as waste, everything else as an adjustment.
create function public.adjust_stock(product_id uuid, counted_quantity numeric, reason text)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_product  uuid := adjust_stock.product_id;
    v_counted  numeric := adjust_stock.counted_quantity;
    v_reason   text := lower(nullif(btrim(adjust_stock.reason), ''));
    v_stock    numeric;
    v_cost     numeric;
    v_diff     numeric;
    v_movement uuid;
begin
    if v_counted is null or v_counted < 0 or not pb_internal.has_scale(v_counted, 3) then
        raise exception 'counted_quantity must be zero or more with at most 3 decimals'
            using errcode = '22023';
    end if;
    if v_reason is null or length(v_reason) > 200 then
        raise exception 'a reason (count, damage, waste, correction...) is required'
            using errcode = '22023';
    end if;
    select p.current_stock, p.cost_price into v_stock, v_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product
    for update;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;
    v_diff := v_counted - v_stock;
    if v_diff <> 0 then
        v_movement := gen_random_uuid();
        insert into public.stock_movements (business_owner_id, id, product_id, reference_type,
                                            reference_id, movement_type, quantity, unit_cost,
                                            reason, created_by)
        values (v_uid, v_movement, v_product,
                case when v_reason in ('waste', 'damage', 'expired') then 'waste'
                     else 'adjustment' end,
                v_movement, case when v_diff > 0 then 'in' else 'out' end, abs(v_diff), v_cost,
                v_reason, v_uid);
        update public.products p
        set current_stock = v_counted
        where p.business_owner_id = v_uid and p.id = v_product;
    end if;
    return jsonb_build_object('movement_id', v_movement, 'product_id', v_product,
                              'previous_stock', v_stock, 'current_stock', v_counted,
                              'difference', v_diff);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Production: finished goods in; by recipe, ingredients out in the same transaction. The
-- finished goods' cost is the recipe cost, averaged into cost_price like a purchase.
create function public.record_production(product_id uuid, quantity numeric,
                                         notes text default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
    v_uid      uuid := pb_internal.require_uid();
    v_product  uuid := record_production.product_id;
    v_qty      numeric := record_production.quantity;
    v_batch    uuid := gen_random_uuid();
    v_stock    numeric;
    v_old_cost numeric;
    v_unit_cost numeric;
    v_policy   text;
    v_bad      record;
begin
    if v_qty is null or v_qty <= 0 or not pb_internal.has_scale(v_qty, 3) then
        raise exception 'quantity must be positive with at most 3 decimals' using errcode = '22023';
    end if;
    select b.negative_stock_policy into v_policy
    from public.business_profiles b where b.business_owner_id = v_uid;

    -- The product and its ingredients, locked together in id order.
    perform 1 from public.products p
    where p.business_owner_id = v_uid
      and (p.id = v_product
           or p.id in (select r.ingredient_id from public.recipe_items r
                       where r.business_owner_id = v_uid and r.product_id = v_product))
    order by p.id
    for update;
    select p.current_stock, p.cost_price into v_stock, v_old_cost
    from public.products p
    where p.business_owner_id = v_uid and p.id = v_product;
    if not found then
        raise exception 'product % not found', v_product using errcode = 'PT404';
    end if;

    select i.name, i.current_stock, round(r.quantity * v_qty, 3) as wanted into v_bad
    from public.recipe_items r
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id
    where r.business_owner_id = v_uid and r.product_id = v_product
      and coalesce(i.negative_stock_policy, v_policy, 'block') = 'block'
      and i.current_stock < round(r.quantity * v_qty, 3)
    order by i.id
    limit 1;
    if found then
        raise exception 'insufficient stock for ingredient "%": % available, % needed',
                        v_bad.name, trim_scale(v_bad.current_stock), trim_scale(v_bad.wanted)
            using errcode = 'PT422';
    end if;

    select round(sum(r.quantity * i.cost_price), 2) into v_unit_cost
    from public.recipe_items r
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id
    where r.business_owner_id = v_uid and r.product_id = v_product;

    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, notes,
                                        created_by)
    select v_uid, r.ingredient_id, 'production', v_batch, 'out', round(r.quantity * v_qty, 3),
           i.cost_price, record_production.notes, v_uid
    from public.recipe_items r
    join public.products i on i.business_owner_id = v_uid and i.id = r.ingredient_id
    where r.business_owner_id = v_uid and r.product_id = v_product;
    update public.products i
    set current_stock = i.current_stock - round(r.quantity * v_qty, 3)
    from public.recipe_items r
    where r.business_owner_id = v_uid and r.product_id = v_product
      and i.business_owner_id = v_uid and i.id = r.ingredient_id;

    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        reference_id, movement_type, quantity, unit_cost, notes,
                                        created_by)
    values (v_uid, v_product, 'production', v_batch, 'in', v_qty,
            coalesce(v_unit_cost, v_old_cost), record_production.notes, v_uid);
    update public.products p
    set current_stock = p.current_stock + v_qty,
        cost_price = case when v_unit_cost is null then p.cost_price
                          else round((greatest(v_stock, 0) * v_old_cost + v_qty * v_unit_cost)
                                     / (greatest(v_stock, 0) + v_qty), 2) end
    where p.business_owner_id = v_uid and p.id = v_product;

    return jsonb_build_object('production_id', v_batch, 'product_id', v_product,
                              'current_stock', v_stock + v_qty,
                              'unit_cost', coalesce(v_unit_cost, v_old_cost),
                              'ingredients', coalesce((
                                  select jsonb_agg(jsonb_build_object(
                                             'product_id', m.product_id,
                                             'quantity', m.quantity) order by m.product_id)
                                  from public.stock_movements m
                                  where m.business_owner_id = v_uid and m.reference_id = v_batch
                                    and m.movement_type = 'out'), '[]'::jsonb));
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Analytics. The building blocks are plain SQL set-returning functions (no SET clause, not
-- definer) so PostgreSQL inlines them: EXPLAIN on them shows the plans analytics() runs.
--
-- Sales are first summed per (day, channel, payment method) — a few hundred rows even for a
-- year — and every breakdown is summed from those; lines are read only for top products.
create function pb_internal.analytics_sales(p_owner uuid, p_from timestamptz, p_to timestamptz,
                                            p_tz text)
returns table (day date, channel text, payment_method text, sales_count bigint,
               subtotal numeric, line_discount numeric, sale_discount numeric, tax numeric,
               rounding numeric, final numeric, cogs numeric, quantity numeric)
language sql stable as $$
    select (s.created_at at time zone p_tz)::date, s.channel, s.payment_method, count(*),
           sum(s.total_amount), sum(s.items_discount_amount), sum(s.discount_amount),
           sum(s.tax_amount), sum(s.rounding_amount), sum(s.final_amount), sum(s.cost_amount),
           sum(s.items_quantity)
    from public.sales s
    where s.business_owner_id = p_owner
      and s.created_at >= p_from and s.created_at < p_to
      and s.status = 'completed'
    group by 1, 2, 3
$$;

create function pb_internal.analytics_products(p_owner uuid, p_from timestamptz, p_to timestamptz)
returns table (product_id uuid, product_name text, quantity numeric, revenue numeric)
language sql stable as $$
    select i.product_id, max(i.product_name), sum(i.quantity), sum(i.subtotal)
    from public.sales s
    join public.sale_items i on i.business_owner_id = s.business_owner_id and i.sale_id = s.id
    where s.business_owner_id = p_owner and i.business_owner_id = p_owner
      and s.created_at >= p_from and s.created_at < p_to
      and s.status = 'completed'
    group by i.product_id
$$;

create function pb_internal.analytics_low_stock(p_owner uuid)
returns table (product_id uuid, sku text, name text, current_stock numeric,
               reorder_level numeric)
language sql stable as $$
    select p.id, p.sku, p.name, p.current_stock, p.reorder_level
    from public.products p
    where p.business_owner_id = p_owner and p.is_active
      and p.current_stock <= p.reorder_level
    order by p.current_stock - p.reorder_level, p.id
    limit 100
$$;

-- The figures reported for the whole range and for each day, channel and payment method.
create function pb_internal.analytics_figures(
    sales_count bigint, subtotal numeric, line_discount numeric, sale_discount numeric,
    tax numeric, rounding numeric, final numeric, cogs numeric, quantity numeric
) returns jsonb
language sql immutable as $$
    select jsonb_build_object(
        'sales_count', coalesce(sales_count, 0),
        'gross_sales', coalesce(subtotal + line_discount, 0),
        'discounts', coalesce(line_discount + sale_discount, 0),
        'tax', coalesce(tax, 0),
        'rounding', coalesce(rounding, 0),
        'net_sales', coalesce(final - tax - rounding, 0),
        'cogs', coalesce(cogs, 0),
        'gross_profit', coalesce(final - tax - rounding - cogs, 0),
        'margin_pct', case when final - tax - rounding > 0
                           then round((final - tax - rounding - cogs) * 100
                                      / (final - tax - rounding), 2)
                           else 0 end,
        'average_ticket', case when sales_count > 0 then round(final / sales_count, 2)
                               else 0 end,
        'items_sold', coalesce(quantity, 0))
$$;

grant execute on function
    pb_internal.analytics_sales(uuid, timestamptz, timestamptz, text),
    pb_internal.analytics_products(uuid, timestamptz, timestamptz),
    pb_internal.analytics_low_stock(uuid),
    pb_internal.analytics_figures(bigint, numeric, numeric, numeric, numeric, numeric, numeric,
                                  numeric, numeric),
    pb_internal.require_uid(),
    pb_internal.has_scale(numeric, integer)
    to authenticated, service_role;

-- Planned for each call's tenant and range: a cached generic plan cannot tell a 30-day range of
-- a small shop from a year of a busy one, and measured twice as slow on the latter.
-- random_page_cost 1.1: a tenant's rows are in memory (or on SSD), so index lookups of a
-- month's sale lines beat a scan of all of them — measured 21.7 → 8.2 ms for the top-products
-- query of a 50,000-sale tenant (bench/sales_bench.py data).
create function public.analytics(start_date date, end_date date) returns jsonb
language plpgsql stable security invoker
set search_path = '' set plan_cache_mode = force_custom_plan set random_page_cost = 1.1 as $$
#variable_conflict use_column
declare
    v_uid   uuid := pb_internal.require_uid();
    v_start date := analytics.start_date;
    v_end   date := analytics.end_date;
    v_tz    text;
    v_from  timestamptz;
    v_to    timestamptz;
begin
    if v_start is null or v_end is null or v_end < v_start then
        raise exception 'start_date and end_date are required, start_date <= end_date'
            using errcode = '22023';
    end if;
    if v_end - v_start > 731 then
        raise exception 'the range is at most 732 days' using errcode = '22023';
    end if;
    select b.timezone into v_tz from public.business_profiles b where b.business_owner_id = v_uid;
    v_tz := coalesce(v_tz, 'Asia/Kuala_Lumpur');
    v_from := v_start::timestamp at time zone v_tz;
    v_to := (v_end + 1)::timestamp at time zone v_tz;

    return (
        with cube as materialized (
            select * from pb_internal.analytics_sales(v_uid, v_from, v_to, v_tz)
        ), products as materialized (
            select * from pb_internal.analytics_products(v_uid, v_from, v_to)
        ), days as (
            select c.day, sum(c.sales_count) as n, sum(c.subtotal) as subtotal,
                   sum(c.line_discount) as line_discount, sum(c.sale_discount) as sale_discount,
                   sum(c.tax) as tax, sum(c.rounding) as rounding, sum(c.final) as final,
                   sum(c.cogs) as cogs, sum(c.quantity) as quantity
            from cube c group by c.day
        )
        select jsonb_build_object(
            'start_date', v_start,
            'end_date', v_end,
            'timezone', v_tz,
            'totals', (
                select pb_internal.analytics_figures(
                           coalesce(sum(c.sales_count), 0)::bigint, sum(c.subtotal),
                           sum(c.line_discount), sum(c.sale_discount), sum(c.tax),
                           sum(c.rounding), sum(c.final), sum(c.cogs), sum(c.quantity))
                from cube c),
            'by_day', (
                select jsonb_agg(jsonb_build_object('date', g.day::date)
                                 || pb_internal.analytics_figures(
                                        d.n::bigint, d.subtotal, d.line_discount,
                                        d.sale_discount, d.tax, d.rounding, d.final, d.cogs,
                                        d.quantity)
                                 order by g.day)
                from generate_series(v_start::timestamp, v_end::timestamp, interval '1 day') g(day)
                left join days d on d.day = g.day::date),
            'by_channel', (
                select coalesce(jsonb_agg(jsonb_build_object('channel', x.channel) || x.figures
                                          order by x.channel), '[]'::jsonb)
                from (select c.channel, pb_internal.analytics_figures(
                                 sum(c.sales_count)::bigint, sum(c.subtotal),
                                 sum(c.line_discount), sum(c.sale_discount), sum(c.tax),
                                 sum(c.rounding), sum(c.final), sum(c.cogs),
                                 sum(c.quantity)) as figures
                      from cube c group by c.channel) x),
            'by_payment_method', (
                select coalesce(jsonb_agg(jsonb_build_object('payment_method', x.payment_method)
                                          || x.figures order by x.payment_method), '[]'::jsonb)
                from (select c.payment_method, pb_internal.analytics_figures(
                                 sum(c.sales_count)::bigint, sum(c.subtotal),
                                 sum(c.line_discount), sum(c.sale_discount), sum(c.tax),
                                 sum(c.rounding), sum(c.final), sum(c.cogs),
                                 sum(c.quantity)) as figures
                      from cube c group by c.payment_method) x),
            'top_products', jsonb_build_object(
                'by_revenue', (
                    select coalesce(jsonb_agg(to_jsonb(t) order by t.revenue desc,
                                              t.product_id), '[]'::jsonb)
                    from (select * from products p
                          order by p.revenue desc, p.product_id limit 10) t),
                'by_quantity', (
                    select coalesce(jsonb_agg(to_jsonb(t) order by t.quantity desc,
                                              t.product_id), '[]'::jsonb)
                    from (select * from products p
                          order by p.quantity desc, p.product_id limit 10) t)),
            'low_stock', (
                select coalesce(jsonb_agg(to_jsonb(l) order by l.current_stock - l.reorder_level,
                                          l.product_id), '[]'::jsonb)
                from pb_internal.analytics_low_stock(v_uid) l))
    );
end
$$;

grant execute on function
    public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid),
    public.void_sale(uuid, text),
    public.record_purchase(uuid, numeric, numeric, text),
    public.adjust_stock(uuid, numeric, text),
    public.record_production(uuid, numeric, text),
    public.analytics(date, date)
    to authenticated, service_role;
