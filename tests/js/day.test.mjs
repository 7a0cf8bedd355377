// A PocketBizz day through supabase-js with default options: sign up, CRUD, RPC, an embed,
// storage with metadata and signed URLs, and a second tenant that sees none of it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { closeClient, newTenant } from './helpers.mjs'

// The smallest PNG header and some padding: product-images accepts image/* only.
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)])

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

  test('storage: uploads with metadata, info, list, signed URL and public URL', async () => {
    const receipts = a.client.storage.from('receipts')
    const receiptPath = `${a.user.id}/${sale.sale_number}.txt`
    // A Blob goes as multipart (metadata in a form field) ...
    const blob = new Blob([`Resit ${sale.sale_number}`], { type: 'text/plain' })
    const up = await receipts.upload(receiptPath, blob, {
      metadata: { sale_id: sale.id, printed: false },
    })
    assert.equal(up.error, null)
    assert.equal(up.data.path, receiptPath)
    assert.equal(up.data.fullPath, `receipts/${receiptPath}`)

    const info = await receipts.info(receiptPath)
    assert.equal(info.error, null)
    assert.equal(info.data.name, receiptPath)
    assert.equal(info.data.size, Buffer.byteLength(`Resit ${sale.sale_number}`))
    assert.equal(info.data.contentType, 'text/plain')
    // info() camel-cases every key, the metadata's own included.
    assert.deepEqual(info.data.metadata, { saleId: sale.id, printed: false })

    // ... raw bytes go as the body, with the metadata base64-encoded in x-metadata.
    const photoPath = `${a.user.id}/kopi-o.png`
    const photo = await a.client.storage
      .from('product-images')
      .upload(photoPath, Buffer.from(PNG), {
        contentType: 'image/png',
        metadata: { product_id: product.id, caption: 'Kopi O ☕' },
      })
    assert.equal(photo.error, null)
    const photoInfo = await a.client.storage.from('product-images').info(photoPath)
    assert.equal(photoInfo.error, null)
    assert.equal(photoInfo.data.contentType, 'image/png')
    assert.deepEqual(photoInfo.data.metadata, { productId: product.id, caption: 'Kopi O ☕' })

    const exists = await receipts.exists(receiptPath)
    assert.equal(exists.data, true)
    const missing = await receipts.exists(`${a.user.id}/nope.txt`)
    assert.equal(missing.data, false)

    const listed = await receipts.list(a.user.id)
    assert.equal(listed.error, null)
    assert.deepEqual(listed.data.map((f) => f.name), [`${sale.sale_number}.txt`])

    const downloaded = await receipts.download(receiptPath)
    assert.equal(downloaded.error, null)
    assert.equal(await downloaded.data.text(), `Resit ${sale.sale_number}`)

    // A signed URL works with no credentials at all, as a browser or WhatsApp link would.
    const signed = await receipts.createSignedUrl(receiptPath, 60)
    assert.equal(signed.error, null)
    const fetched = await fetch(signed.data.signedUrl)
    assert.equal(fetched.status, 200)
    assert.equal(await fetched.text(), `Resit ${sale.sale_number}`)

    const named = await receipts.createSignedUrl(receiptPath, 60, { download: 'resit.txt' })
    const attachment = await fetch(named.data.signedUrl)
    assert.equal(
      attachment.headers.get('content-disposition'),
      "attachment; filename=resit.txt; filename*=UTF-8''resit.txt;",
    )

    // product-images is public: its URL needs no request to make and no token to fetch.
    const { data: pub } = a.client.storage.from('product-images').getPublicUrl(photoPath)
    const image = await fetch(pub.publicUrl)
    assert.equal(image.status, 200)
    assert.deepEqual(Buffer.from(await image.arrayBuffer()), Buffer.from(PNG))
  })

  test('storage: listV2 pages through a folder', async () => {
    const receipts = a.client.storage.from('receipts')
    for (const n of [1, 2, 3]) {
      const res = await receipts.upload(`${a.user.id}/2026/r-${n}.txt`, `r${n}`)
      assert.equal(res.error, null)
    }
    const first = await receipts.listV2({ prefix: `${a.user.id}/`, with_delimiter: true, limit: 2 })
    assert.equal(first.error, null)
    assert.deepEqual(first.data.folders.map((f) => f.name), [`${a.user.id}/2026/`])
    assert.deepEqual(first.data.objects.map((o) => o.name), [`${a.user.id}/${sale.sale_number}.txt`])
    assert.equal(first.data.hasNext, false)

    const seen = []
    let cursor
    do {
      const page = await receipts.listV2({ prefix: `${a.user.id}/2026/`, limit: 2, cursor })
      assert.equal(page.error, null)
      seen.push(...page.data.objects.map((o) => o.name))
      cursor = page.data.hasNext ? page.data.nextCursor : undefined
    } while (cursor)
    assert.deepEqual(seen, [1, 2, 3].map((n) => `${a.user.id}/2026/r-${n}.txt`))
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

  test('tenant B sees none of A through Storage', async () => {
    const receipts = b.client.storage.from('receipts')
    const path = `${a.user.id}/${sale.sale_number}.txt`
    const listed = await receipts.list(a.user.id)
    assert.equal(listed.error, null)
    assert.deepEqual(listed.data, [])
    const listedV2 = await receipts.listV2({ prefix: `${a.user.id}/` })
    assert.equal(listedV2.error, null)
    assert.deepEqual(listedV2.data.objects, [])
    assert.deepEqual(listedV2.data.folders, [])

    const download = await receipts.download(path)
    assert.ok(download.error)
    assert.equal(download.error.status, 404)
    const info = await receipts.info(path)
    assert.equal(info.error.status, 404)
    const signed = await receipts.createSignedUrl(path, 60)
    assert.ok(signed.error, 'no signed URL for another tenant\'s object')

    const overwrite = await receipts.upload(path, 'forged', { upsert: true })
    assert.ok(overwrite.error)
    assert.equal(overwrite.error.status, 403)
    const remove = await receipts.remove([path])
    assert.equal(remove.error, null)
    assert.deepEqual(remove.data, [])
    const moved = await receipts.move(path, `${b.user.id}/stolen.txt`)
    assert.ok(moved.error)

    const mine = await a.client.storage.from('receipts').download(path)
    assert.equal(await mine.data.text(), `Resit ${sale.sale_number}`)
  })
})
