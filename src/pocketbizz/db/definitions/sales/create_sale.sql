-- sold_at (issue 9) joined the arguments: the old signature goes first, since create or replace
-- cannot change them, and there must be exactly one create_sale (two would make a call through
-- /rest/v1/rpc ambiguous, PGRST203). Dropping it drops its grants, owner and comment too: they
-- are set again below, after the body.
drop function if exists public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid);

create or replace function public.create_sale(
    items           jsonb,
    channel         text    default 'walk-in',
    customer_id     uuid    default null,
    discount_amount numeric default 0,
    payment_method  text    default 'cash',
    payment_status  text    default 'paid',
    notes           text    default null,
    client_ref      uuid    default null,
    sold_at         timestamptz default null
) returns jsonb
language plpgsql volatile security definer set search_path = ''
-- Generic plans: PL/pgSQL would otherwise plan the array- and jsonb-parameter statements below
-- anew on every call (their custom plans look cheaper than the generic ones), ~15% of a sale's
-- backend CPU (issue 12, bench/sale_ab.py). Every statement here reads by its table's key.
set plan_cache_mode = force_generic_plan
-- The quiet marks it makes (realtime/realtime_quiet.sql) end with its return.
set pb_realtime_quiet.products = '' set pb_realtime_quiet.stock_movements = ''
set pb_realtime_quiet.sales = '' set pb_realtime_quiet.sale_items = '' as $$
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
    -- When the sale happened: now, or the device's time for a sale replayed after being made
    -- offline. It is the sale's created_at, so analytics count it on its day, and it picks the
    -- sale number's {YYYY}/{MM} period.
    v_when     timestamptz := coalesce(create_sale.sold_at, now());
    v_hash     text;
    v_found_id uuid;
    v_found_hash text;
    v_biz      record;
    v_lines    pb_internal.sale_line[];
    v_line     pb_internal.sale_line;
    v_bad      record;
    v_missing  uuid;
    v_inactive text;
    v_negative integer;
    v_products uuid[] := '{}';
    v_outs     numeric[] := '{}';
    v_costs    numeric[] := '{}';
    v_total    numeric := 0;
    v_tax      numeric := 0.00;
    v_shares   numeric[];
    v_base     numeric;
    v_pre      numeric;
    v_rounding numeric := 0.00;
    v_local    timestamp;
    v_period   text;
    v_seq      bigint;
    v_number   text;
    v_plan     text;
    v_limit    integer;
    v_count    bigint;
    v_sale_id  uuid := gen_random_uuid();
    v_result   jsonb;
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
    v_discount := pb_internal.require_number('discount_amount', v_discount, 2, 0, false, 1e10);
    -- The first bad item, and what is wrong with it.
    select p.ord, p.problem into v_bad
    from (select e.ord, coalesce(
                     case when jsonb_typeof(e.x) is distinct from 'object'
                          then 'must be an object with product_id and quantity' end,
                     case when jsonb_typeof(e.x -> 'product_id') is distinct from 'string'
                            or not pg_input_is_valid(e.x ->> 'product_id', 'uuid')
                          then 'product_id must be a product id (uuid)' end,
                     'quantity '
                     || pb_internal.json_number_problem(e.x, 'quantity', true, 3, 0, true, 1e9),
                     'unit_price '
                     || pb_internal.json_number_problem(e.x, 'unit_price', false, 2, 0, false,
                                                        1e10),
                     'discount_amount '
                     || pb_internal.json_number_problem(e.x, 'discount_amount', false, 2, 0,
                                                        false, 1e10)) as problem
          from jsonb_array_elements(v_items) with ordinality e(x, ord)) p
    where p.problem is not null
    order by p.ord
    limit 1;
    if found then
        raise exception 'item %: %', v_bad.ord, v_bad.problem using errcode = '22023';
    end if;

    -- Idempotency: one client_ref, one sale. The advisory lock makes a retry that arrives while
    -- the first call is still running wait for it, then see its committed sale.
    if v_ref is not null then
        v_hash := md5((jsonb_build_object(
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
            'payment_status', v_pstatus, 'notes', v_notes)
            -- The instant, not its spelling (offset, precision): a retry that sends the same
            -- time in another zone is the same body. Absent when not given, so a call without
            -- sold_at hashes as it did before the argument existed.
            || case when create_sale.sold_at is null then '{}'::jsonb
                    else jsonb_build_object('sold_at',
                                            trim_scale(extract(epoch from create_sale.sold_at)))
               end)::text);
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
    -- The time window is checked after the idempotency lookup: it moves with the clock, and a
    -- retry of a sale already recorded returns it even once its sold_at has left the window.
    -- Up to 5 minutes ahead is a device clock running fast, recorded as now (a sale is never
    -- dated after it was recorded); 7 days back is the longest an offline queue may wait.
    if v_when > now() + interval '5 minutes' then
        raise exception 'sold_at % is in the future', create_sale.sold_at using errcode = '22023';
    end if;
    if v_when < now() - interval '7 days' then
        raise exception 'sold_at % is more than 7 days ago', create_sale.sold_at
            using errcode = '22023';
    end if;
    v_when := least(v_when, now());

    if v_customer is not null then
        perform 1 from public.customers c where c.business_owner_id = v_uid and c.id = v_customer;
        if not found then
            raise exception 'customer not found' using errcode = 'PT404';
        end if;
    end if;

    -- The business's settings and its plan's limits, in one statement (the limit is checked
    -- after the sale number below).
    select b.*, l.plan_code, l.max_sales_per_month into v_biz
    from public.business_profiles b
    left join pb_internal.plan_limits(v_uid) l on true
    where b.business_owner_id = v_uid;
    if not found then
        raise exception 'business profile not found' using errcode = 'PT404';
    end if;
    v_plan := v_biz.plan_code;
    v_limit := v_biz.max_sales_per_month;

    -- Lock the products in id order (sales over the same products queue, never deadlock) and
    -- read them as locked, in one statement.
    with locked as materialized (
        select p.*
        from public.products p
        -- An array, not a subquery: the key lookup stays an index probe in the generic plan.
        where p.business_owner_id = v_uid
          and p.id = any(array(select (t.x ->> 'product_id')::uuid
                               from jsonb_array_elements(v_items) t(x)))
        order by p.id
        for update
    )
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
    -- Each number at its column's scale (exact: checked above), so the rows written need no
    -- scale-restoring trigger call (migration 0017).
    from (select t.ord::integer as ord,
                 (t.x ->> 'product_id')::uuid as product_id,
                 round((t.x ->> 'quantity')::numeric, 3) as quantity,
                 round((t.x ->> 'unit_price')::numeric, 2) as unit_price,
                 round(coalesce((t.x ->> 'discount_amount')::numeric, 0), 2) as discount
          from jsonb_array_elements(v_items) with ordinality t(x, ord)) e
    left join locked p on p.id = e.product_id;

    -- One pass over the lines, in item order: the first line failing each check (raised
    -- below in the checks' order), the total, and the stock movements' arrays. Plain
    -- PL/pgSQL expressions, where a statement per check cost an executor start-up each.
    foreach v_line in array v_lines loop
        if not v_line.found then
            v_missing := coalesce(v_missing, v_line.product_id);
        elsif not v_line.active then
            v_inactive := coalesce(v_inactive, v_line.product_name);
        elsif v_line.subtotal < 0 then
            v_negative := coalesce(v_negative, v_line.line_no);
        end if;
        v_total := v_total + v_line.subtotal;
        v_products := v_products || v_line.product_id;
        v_outs := v_outs || -v_line.quantity;
        v_costs := v_costs || v_line.unit_cost;
    end loop;
    if v_missing is not null then
        raise exception 'product % not found', v_missing using errcode = 'PT404';
    end if;
    if v_inactive is not null then
        raise exception 'product "%" is not active', v_inactive using errcode = 'PT422';
    end if;
    if v_negative is not null then
        raise exception 'the discount on item % is larger than its amount', v_negative
            using errcode = 'PT422';
    end if;
    -- From here on it writes: the tables nobody listens to skip their realtime triggers
    -- (realtime/realtime_quiet.sql).
    perform pb_internal.realtime_quiet(v_uid, '{products,stock_movements,sales,sale_items}');
    -- The stock out, one movement per line (refused, naming the product, when a product under
    -- the 'block' policy has too little): the ledger rows come before the sale row they
    -- reference, all in this transaction.
    perform pb_internal.move_stock(v_uid, 'sale', v_sale_id, v_products, v_outs, v_costs, true,
                                   p_locked => true);

    -- Money: the sale discount is shared across lines in proportion to their subtotals
    -- (largest remainder, so the shares add up to the sen) only to find each line's tax base;
    -- the stored discount stays one amount.
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
            when v_line.tax_rate = 0 then 0.00
            when v_biz.prices_include_tax
                then round(v_base * v_line.tax_rate / (100 + v_line.tax_rate), 2)
            else round(v_base * v_line.tax_rate / 100, 2) end;
        v_tax := v_tax + v_lines[i].tax;
    end loop;
    v_pre := v_total - v_discount + case when v_biz.prices_include_tax then 0 else v_tax end;
    if v_method = 'cash' and v_biz.cash_rounding then
        -- Bank Negara rounding: 1-2 sen down, 3-4 up, 6-7 down, 8-9 up (never a half).
        v_rounding := round(round(v_pre * 20) / 20 - v_pre, 2);
    end if;

    -- The sale number, then the plan limit (exact: the counter row serialises the tenant's
    -- sales for the period).
    v_local := v_when at time zone v_biz.timezone;
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

    if v_limit is not null then
        select count(*) into v_count
        from public.sales s
        where s.business_owner_id = v_uid
          and s.created_at >= date_trunc('month', v_local) at time zone v_biz.timezone
          -- A sale dated into last month counts there, not with this month's as well.
          and s.created_at < (date_trunc('month', v_local) + interval '1 month')
                             at time zone v_biz.timezone;
        if v_count >= v_limit then
            raise exception 'plan limit reached: max_sales_per_month is % on the % plan',
                            v_limit, v_plan
                using errcode = 'PT402', hint = 'Upgrade the plan to record more sales.';
        end if;
    end if;

    -- The sale and its lines in one statement (the lines' foreign key to the sale is checked
    -- at its end); the answer is built from the rows as written (defaults and triggers
    -- applied), not read back.
    with sale as (
        insert into public.sales (business_owner_id, id, sale_number, customer_id, channel,
                                  total_amount, discount_amount, tax_amount, rounding_amount,
                                  final_amount, payment_method, payment_status, notes,
                                  client_ref, request_hash, items_discount_amount, cost_amount,
                                  items_quantity, created_at)
        select v_uid, v_sale_id, v_number, v_customer, v_channel, v_total, v_discount, v_tax,
               v_rounding, v_pre + v_rounding, v_method, v_pstatus, v_notes, v_ref, v_hash,
               sum(l.discount), sum(round(l.quantity * l.unit_cost, 2)), sum(l.quantity), v_when
        from unnest(v_lines) l
        returning *
    ), written as (
        insert into public.sale_items (business_owner_id, sale_id, line_no, product_id,
                                       product_name, quantity, unit_price, discount_amount,
                                       tax_amount, subtotal, unit_cost)
        select v_uid, v_sale_id, l.line_no, l.product_id, l.product_name, l.quantity,
               l.unit_price, l.discount, l.tax, l.subtotal, l.unit_cost
        from unnest(v_lines) l
        returning *
    )
    select pb_internal.sale_json_of(
               s::public.sales,
               (select jsonb_agg(pb_internal.sale_item_json(w::public.sale_items)
                                 order by w.line_no)
                from written w))
    into v_result
    from sale s;
    return v_result;
end
$$;

-- What the drop above took away: execute for the API roles only (not PUBLIC), pb_definer as the
-- owner (migration 0009), and the description /rest/v1/ serves (migration 0014).
revoke execute on function public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid,
                                              timestamptz) from public;
grant execute on function public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid,
                                             timestamptz)
    to authenticated, service_role;
-- Runs as pb_definer (no BYPASSRLS): forced RLS applies inside too (migration 0009).
alter function public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid, timestamptz)
    owner to pb_definer;
comment on function public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid,
                                       timestamptz) is
$$Record a sale atomically: lines, totals, sale number and stock movements
items: [{product_id, quantity, unit_price?, discount_amount?}] (1 to 500; unit_price defaults to the product's sale_price). channel: walk-in | online | delivery. payment_method: cash | card | ewallet | qr | bank_transfer | toyyibpay | credit | other. payment_status: paid | pending | failed. client_ref: an idempotency key. sold_at: when a sale made offline happened (default now; at most 5 minutes ahead, at most 7 days ago): its created_at and sale-number period. Returns the sale with its items. Errors: 22023 bad argument (400), PT404 unknown product or customer (404), PT409 client_ref reused with another body (409), PT422 insufficient stock, inactive product or too large a discount (422), PT402 plan limit (402).$$;
