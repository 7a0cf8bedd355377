-- Descriptions of the data API, as SQL comments: GET /rest/v1/ shows them in its OpenAPI
-- document (like PostgREST: a table's or function's first line is the summary), and so does
-- `\d+` in psql. docs/API.md is the developer guide written from the same facts.
--
-- "Read-only" marks a column no client may write: PostgreSQL refuses it (42501, HTTP 403) and
-- the error names the function to call instead. Enum-like columns are not listed here: their
-- CHECK constraints are, and the OpenAPI document shows them as `enum`.

-- ---------------------------------------------------------------------------------------------
comment on table public.plans is
$$Subscription plans and their limits
Global reference data: everyone may read the active plans; only the operator (service_role) writes them.$$;
comment on column public.plans.code is 'Plan code, referenced by users.subscription_plan (free, pro).';
comment on column public.plans.price_monthly is 'Price per month in MYR.';
comment on column public.plans.max_active_products is 'Most active products a tenant may have; null means unlimited.';
comment on column public.plans.max_sales_per_month is 'Most sales per calendar month (business time zone); null means unlimited.';

-- ---------------------------------------------------------------------------------------------
comment on table public.users is
$$The signed-in tenant's profile and subscription
One row per account, created at sign-up. A client may update full_name and phone only.$$;
comment on column public.users.business_owner_id is 'The tenant: the auth user id (auth.uid()). Read-only.';
comment on column public.users.id is 'Equal to business_owner_id. Read-only.';
comment on column public.users.email is 'Sign-in e-mail, kept in step with the auth account. Read-only: change it through the auth API (updateUser).';
comment on column public.users.full_name is 'Owner name, at most 200 characters.';
comment on column public.users.phone is 'Owner phone, at most 32 characters.';
comment on column public.users.subscription_plan is 'Current plan (plans.code). Read-only: changes through the payment flow.';
comment on column public.users.subscription_expires_at is 'When a paid plan ends; afterwards the free limits apply. Read-only.';
comment on column public.users.is_active is 'Account enabled. Read-only.';

-- ---------------------------------------------------------------------------------------------
comment on table public.business_profiles is
$$The business: name, tax registration, time zone and sale settings
One row per tenant, created at sign-up (insert and delete are refused: update it).$$;
comment on column public.business_profiles.business_owner_id is 'The tenant (auth.uid()). Read-only.';
comment on column public.business_profiles.id is 'Row id. Read-only.';
comment on column public.business_profiles.business_name is 'Trading name printed on receipts, at most 200 characters.';
comment on column public.business_profiles.registration_number is 'SSM registration number, printed on receipts.';
comment on column public.business_profiles.tax_number is 'SST registration number, printed on receipts.';
comment on column public.business_profiles.address is 'Address as JSON (free form, e.g. {"line1", "city", "postcode"}).';
comment on column public.business_profiles.logo_url is 'Logo URL, typically a public URL in the logos bucket.';
comment on column public.business_profiles.timezone is 'IANA time zone for reports and sale numbers (default Asia/Kuala_Lumpur).';
comment on column public.business_profiles.settings is 'Free-form app settings (JSON object).';
comment on column public.business_profiles.sst_enabled is 'Charge SST on sales (off by default).';
comment on column public.business_profiles.sst_rate is 'SST rate in percent, 0 to 100 (default 6); a product''s tax_rate overrides it.';
comment on column public.business_profiles.prices_include_tax is 'true: prices already contain SST; false: SST is added on top.';
comment on column public.business_profiles.negative_stock_policy is 'block: a sale may not take stock below zero; allow: it may. A product''s own policy overrides it.';
comment on column public.business_profiles.cash_rounding is 'Round cash sales to the nearest 5 sen (Bank Negara rounding), shown as rounding_amount.';
comment on column public.business_profiles.sale_number_format is 'Sale number pattern with {YYYY}, {YY}, {MM} and exactly one {SEQ}, at most 40 characters (default INV-{YYYY}-{SEQ}).';
comment on column public.business_profiles.sale_number_digits is 'Zero-padded width of {SEQ}, 1 to 12.';

-- ---------------------------------------------------------------------------------------------
comment on table public.customers is
$$The tenant's customers
Referenced by sales.customer_id; whatsapp_consent gates WhatsApp receipts.$$;
comment on column public.customers.business_owner_id is 'The tenant (auth.uid()); set by the server.';
comment on column public.customers.id is 'Row id (generated).';
comment on column public.customers.name is 'Customer name, 1 to 200 characters.';
comment on column public.customers.phone is 'Phone in international form for WhatsApp (e.g. 60123456789), at most 32 characters.';
comment on column public.customers.whatsapp_consent is 'The customer agreed to receive WhatsApp messages.';
comment on column public.customers.consent_updated_at is 'When whatsapp_consent last changed.';

-- ---------------------------------------------------------------------------------------------
comment on table public.products is
$$The tenant's products and stock on hand
current_stock is read-only: it changes only through the stock functions (adjust_stock, record_purchase, record_production, create_sale, void_sale), each of which writes stock_movements.$$;
comment on column public.products.business_owner_id is 'The tenant (auth.uid()); set by the server.';
comment on column public.products.id is 'Row id (generated).';
comment on column public.products.sku is 'Stock-keeping unit, unique per tenant, 1 to 64 characters.';
comment on column public.products.name is 'Product name, 1 to 200 characters.';
comment on column public.products.unit is 'Unit of sale (pcs, kg, cup...), default pcs.';
comment on column public.products.cost_price is 'Unit cost in MYR (2 decimals). record_purchase and record_production update it to the moving average.';
comment on column public.products.sale_price is 'Unit price in MYR (2 decimals).';
comment on column public.products.current_stock is 'Stock on hand (3 decimals). Read-only: changes only through the RPCs adjust_stock, record_purchase, record_production, create_sale and void_sale.';
comment on column public.products.reorder_level is 'Low-stock threshold: analytics lists the product under low_stock at or below it.';
comment on column public.products.is_active is 'Sellable; inactive products are refused by create_sale and do not count towards the plan limit.';
comment on column public.products.barcode is 'Barcode, unique per tenant when set.';
comment on column public.products.images is 'JSON array of image URLs or storage paths (product-images bucket).';
comment on column public.products.tax_rate is 'SST rate for this product in percent; null uses the business rate.';
comment on column public.products.negative_stock_policy is 'Overrides the business policy for this product; null uses the business policy.';

-- ---------------------------------------------------------------------------------------------
comment on table public.sales is
$$Sales: read-only, written by create_sale and void_sale
Totals, numbers and stock movements are computed by create_sale in one transaction; void_sale keeps the sale and returns its stock.$$;
comment on column public.sales.sale_number is 'Per-tenant gapless number from business_profiles.sale_number_format.';
comment on column public.sales.customer_id is 'Customer of the sale, if any (customers.id).';
comment on column public.sales.total_amount is 'Sum of the line subtotals (after line discounts), MYR.';
comment on column public.sales.discount_amount is 'Sale-level discount, MYR.';
comment on column public.sales.tax_amount is 'SST of the sale, MYR (0 unless the business charges SST).';
comment on column public.sales.rounding_amount is 'Cash rounding to 5 sen, between -0.02 and 0.02 MYR.';
comment on column public.sales.final_amount is 'What the customer pays: total - discount (+ tax when prices exclude it) + rounding.';
comment on column public.sales.notes is 'Free text, at most 1000 characters.';
comment on column public.sales.client_ref is 'Client-chosen idempotency key (uuid): a retried create_sale with the same key returns the first sale.';
comment on column public.sales.request_hash is 'Hash of the create_sale arguments, to refuse a reused client_ref with a different body.';
comment on column public.sales.voided_at is 'When void_sale voided the sale.';
comment on column public.sales.void_reason is 'The reason given to void_sale.';
comment on column public.sales.items_discount_amount is 'Sum of the line discounts, MYR.';
comment on column public.sales.cost_amount is 'Cost of goods sold: sum of quantity * unit cost at the time of sale, MYR.';
comment on column public.sales.items_quantity is 'Units sold (sum of line quantities).';

comment on table public.sale_items is
$$Sale lines: read-only, written by create_sale$$;
comment on column public.sale_items.product_name is 'The product name at the time of sale.';
comment on column public.sale_items.quantity is 'Quantity sold (3 decimals).';
comment on column public.sale_items.unit_price is 'Unit price charged, MYR.';
comment on column public.sale_items.discount_amount is 'Line discount, MYR.';
comment on column public.sale_items.tax_amount is 'SST of the line, MYR.';
comment on column public.sale_items.subtotal is 'round(quantity * unit_price, 2) - discount_amount.';
comment on column public.sale_items.unit_cost is 'The product cost_price at the time of sale.';
comment on column public.sale_items.line_no is 'Line order on the receipt, from 1.';

comment on table public.stock_movements is
$$The stock ledger: read-only and append-only
Every stock change is one row per product; products.current_stock equals the sum of in minus out.$$;
comment on column public.stock_movements.reference_id is 'The sale, purchase, adjustment or production batch the movement belongs to.';
comment on column public.stock_movements.quantity is 'Quantity moved, always positive; movement_type gives the direction.';
comment on column public.stock_movements.unit_cost is 'Unit cost of the moved goods, MYR.';
comment on column public.stock_movements.reason is 'The reason given to adjust_stock or void_sale.';
comment on column public.stock_movements.created_by is 'The user who made the change.';

comment on table public.recipe_items is
$$Recipes: one unit of product_id uses quantity of ingredient_id
record_production takes the ingredients out of stock. Only quantity can be updated.$$;
comment on column public.recipe_items.product_id is 'The finished product (products.id).';
comment on column public.recipe_items.ingredient_id is 'The ingredient (products.id), not the product itself.';
comment on column public.recipe_items.quantity is 'Ingredient quantity per unit of the product (3 decimals).';

comment on table public.sale_number_counters is
$$Sale number counters: read-only, kept by create_sale$$;
comment on column public.sale_number_counters.period is 'YYYY-MM, YYYY or all, depending on sale_number_format.';

-- ---------------------------------------------------------------------------------------------
comment on function public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid) is
$$Record a sale atomically: lines, totals, sale number and stock movements
items: [{product_id, quantity, unit_price?, discount_amount?}] (1 to 500; unit_price defaults to the product's sale_price). channel: walk-in | online | delivery. payment_method: cash | card | ewallet | qr | bank_transfer | toyyibpay | credit | other. payment_status: paid | pending | failed. client_ref: an idempotency key. Returns the sale with its items. Errors: 22023 bad argument (400), PT404 unknown product or customer (404), PT409 client_ref reused with another body (409), PT422 insufficient stock, inactive product or too large a discount (422), PT402 plan limit (402).$$;
comment on function public.void_sale(uuid, text) is
$$Void a sale and return its stock
reason is required (at most 500 characters). Voiding a void sale returns it unchanged. Errors: 22023 (400), PT404 unknown sale (404).$$;
comment on function public.record_purchase(uuid, numeric, numeric, text) is
$$Stock in from a supplier
quantity > 0 (3 decimals), unit_cost >= 0 (2 decimals); cost_price becomes the moving average. Returns {movement_id, product_id, current_stock, cost_price}. Errors: 22023 (400), PT404 (404).$$;
comment on function public.adjust_stock(uuid, numeric, text) is
$$Set stock to a counted quantity
counted_quantity >= 0 (3 decimals); reason is required (waste, damage and expired are recorded as waste, anything else as an adjustment). Returns {movement_id, product_id, previous_stock, current_stock, difference}. Errors: 22023 (400), PT404 (404).$$;
comment on function public.record_production(uuid, numeric, text) is
$$Produce finished goods from their recipe
quantity > 0 (3 decimals): the product comes in, its ingredients go out. Returns {production_id, product_id, current_stock, unit_cost, ingredients}. Errors: 22023 (400), PT404 (404), PT422 insufficient ingredient stock (422).$$;
comment on function public.analytics(date, date) is
$$Sales report for a date range
start_date <= end_date, at most 732 days, both inclusive, in the business time zone; completed sales only. Returns {start_date, end_date, timezone, totals, by_day, by_channel, by_payment_method, top_products, low_stock}. Errors: 22023 (400).$$;
