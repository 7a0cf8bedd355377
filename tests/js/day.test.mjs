// A PocketBizz day through supabase-js with default options: sign up, CRUD, RPC, an embed,
// storage with metadata and signed URLs, and a second tenant that sees none of it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { closeClient, newTenant } from './helpers.mjs'

// Yesterday to tomorrow (UTC), so the business's own time zone puts today's sales inside.
function aroundToday() {
  const day = 24 * 3600 * 1000
  const iso = (t) => new Date(t).toISOString().slice(0, 10)
  return { start_date: iso(Date.now() - day), end_date: iso(Date.now() + day) }
}

describe('a PocketBizz day with supabase-js', () => {
  let a
  let b
  let product
  let customer
  let sale

  before(async () => {
    a = await newTenant({ business_name: 'Kedai A' })
    b = await newTenant({ business_name: 'Kedai B' })
  })
  after(async () => {
    await closeClient(a.client)
    await closeClient(b.client)
  })

  test('sign-up gives a signed-in user', async () => {
    const { data, error } = await a.client.auth.getUser()
    assert.equal(error, null)
    assert.equal(data.user.id, a.user.id)
    assert.equal(data.user.email, a.email)
  })

  test('sign-in with the password gives a new session', async () => {
    const { data, error } = await b.client.auth.signInWithPassword({
      email: b.email,
      password: b.password,
    })
    assert.equal(error, null)
    assert.equal(data.user.id, b.user.id)
    assert.ok(data.session.access_token)
  })

  test('products: create, read, update, delete', async () => {
    const created = await a.client
      .from('products')
      .insert({ sku: 'KOPI-1', name: 'Kopi O', sale_price: 3.5, cost_price: 1.2 })
      .select()
      .single()
    assert.equal(created.error, null)
    assert.equal(created.status, 201)
    product = created.data
    assert.equal(product.name, 'Kopi O')
    assert.equal(product.business_owner_id, a.user.id)

    const spare = await a.client
      .from('products')
      .insert({ sku: 'TEH-1', name: 'Teh Tarik', sale_price: 2.8 })
      .select('id')
      .single()
    assert.equal(spare.error, null)

    const listed = await a.client
      .from('products')
      .select('sku, name', { count: 'exact' })
      .order('sku')
    assert.equal(listed.error, null)
    assert.equal(listed.count, 2)
    assert.deepEqual(listed.data, [
      { sku: 'KOPI-1', name: 'Kopi O' },
      { sku: 'TEH-1', name: 'Teh Tarik' },
    ])

    const updated = await a.client
      .from('products')
      .update({ sale_price: 4 })
      .eq('id', product.id)
      .select('sale_price')
      .single()
    assert.equal(updated.error, null)
    assert.equal(Number(updated.data.sale_price), 4)

    const deleted = await a.client.from('products').delete().eq('id', spare.data.id).select('id')
    assert.equal(deleted.error, null)
    assert.deepEqual(deleted.data, [{ id: spare.data.id }])

    const gone = await a.client.from('products').select('id').eq('id', spare.data.id).maybeSingle()
    assert.equal(gone.error, null)
    assert.equal(gone.data, null)
  })

  test('customers: create, filter, update, delete', async () => {
    const created = await a.client
      .from('customers')
      .insert([
        { name: 'Aminah', phone: '+60123456789' },
        { name: 'Ah Kow', phone: '+60198765432' },
      ])
      .select()
    assert.equal(created.error, null)
    assert.equal(created.data.length, 2)
    customer = created.data.find((c) => c.name === 'Aminah')

    const found = await a.client.from('customers').select('name').ilike('name', 'ami%')
    assert.equal(found.error, null)
    assert.deepEqual(found.data, [{ name: 'Aminah' }])

    const updated = await a.client
      .from('customers')
      .update({ whatsapp_consent: true })
      .eq('id', customer.id)
      .select('whatsapp_consent')
      .single()
    assert.equal(updated.error, null)
    assert.equal(updated.data.whatsapp_consent, true)

    const other = created.data.find((c) => c.name === 'Ah Kow')
    const deleted = await a.client.from('customers').delete().eq('id', other.id)
    assert.equal(deleted.error, null)
    assert.equal(deleted.status, 204)
  })

  test('rpc: stock in, a sale, and analytics', async () => {
    const purchase = await a.client.rpc('record_purchase', {
      product_id: product.id,
      quantity: 10,
      unit_cost: 1.2,
    })
    assert.equal(purchase.error, null)

    const created = await a.client.rpc('create_sale', {
      items: [{ product_id: product.id, quantity: 2 }],
      customer_id: customer.id,
      payment_method: 'ewallet',
    })
    assert.equal(created.error, null)
    sale = created.data
    assert.equal(sale.status, 'completed')
    assert.equal(Number(sale.final_amount), 8)
    assert.equal(sale.items.length, 1)

    const stock = await a.client
      .from('products')
      .select('current_stock')
      .eq('id', product.id)
      .single()
    assert.equal(Number(stock.data.current_stock), 8)

    const refused = await a.client.rpc('create_sale', {
      items: [{ product_id: product.id, quantity: 100 }],
    })
    assert.ok(refused.error, 'selling more than the stock is refused')
    assert.equal(refused.status, 422)
    assert.match(refused.error.message, /Kopi O/)

    const report = await a.client.rpc('analytics', aroundToday())
    assert.equal(report.error, null)
    assert.equal(report.data.totals.sales_count, 1)
    assert.equal(Number(report.data.totals.items_sold), 2)
    assert.equal(Number(report.data.totals.net_sales), 8)
  })

  test('embed: a sale with its lines, their products and its customer', async () => {
    const { data, error } = await a.client
      .from('sales')
      .select('sale_number, final_amount, customers(name), sale_items(quantity, products(sku, name))')
      .eq('id', sale.id)
      .single()
    assert.equal(error, null)
    assert.equal(data.sale_number, sale.sale_number)
    assert.deepEqual(data.customers, { name: 'Aminah' })
    assert.equal(data.sale_items.length, 1)
    assert.equal(Number(data.sale_items[0].quantity), 2)
    assert.deepEqual(data.sale_items[0].products, { sku: 'KOPI-1', name: 'Kopi O' })
  })

  test('tenant B sees none of A through REST', async () => {
    for (const table of ['products', 'customers', 'sales', 'sale_items', 'stock_movements']) {
      const { data, error } = await b.client.from(table).select('*')
      assert.equal(error, null, table)
      assert.deepEqual(data, [], table)
    }
    const byId = await b.client.from('products').select('id').eq('id', product.id)
    assert.deepEqual(byId.data, [])

    const update = await b.client
      .from('products')
      .update({ name: 'hijacked' })
      .eq('id', product.id)
      .select()
    assert.equal(update.error, null)
    assert.deepEqual(update.data, [])

    const remove = await b.client.from('products').delete().eq('id', product.id).select()
    assert.deepEqual(remove.data, [])

    const sell = await b.client.rpc('create_sale', {
      items: [{ product_id: product.id, quantity: 1 }],
    })
    assert.equal(sell.status, 404, 'another tenant\'s product is "not found"')

    const report = await b.client.rpc('analytics', aroundToday())
    assert.equal(report.error, null)
    assert.equal(report.data.totals.sales_count, 0)

    const still = await a.client.from('products').select('name').eq('id', product.id).single()
    assert.equal(still.data.name, 'Kopi O')
  })
})
