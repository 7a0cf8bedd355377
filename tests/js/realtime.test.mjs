// Realtime through supabase-js with default options (protocol 2.0.0): postgres_changes,
// broadcast between two clients (JSON and binary payloads), presence sync, private channels
// authorized by the tenant's default policy, and a second tenant that hears none of it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient } from '@supabase/supabase-js'
import { PB_ANON_KEY, PB_URL, closeClient, newTenant } from './helpers.mjs'

const WAIT_MS = 5000

/** Subscribe and resolve on SUBSCRIBED; reject with the server's reason otherwise. */
function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel)
      else if (status !== 'CLOSED') reject(err ?? new Error(status))
    })
  })
}

/** The channel's subscribe error (CHANNEL_ERROR), or a failure if it subscribed. */
function refused(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') reject(new Error('subscribed, expected a refusal'))
      else if (status === 'CHANNEL_ERROR') resolve(err)
    })
  })
}

/** Resolve with the first item of `list` that `predicate` accepts, polling until WAIT_MS. */
async function arrival(list, predicate = () => true) {
  const deadline = Date.now() + WAIT_MS
  while (Date.now() < deadline) {
    const found = list.find(predicate)
    if (found !== undefined) return found
    await new Promise((r) => setTimeout(r, 25))
  }
  assert.fail(`nothing arrived within ${WAIT_MS} ms; got ${JSON.stringify(list)}`)
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms))

/** A second signed-in client of the same tenant (another device of the shop). */
async function secondDevice(tenant) {
  const client = createClient(PB_URL, PB_ANON_KEY)
  const { error } = await client.auth.signInWithPassword({
    email: tenant.email,
    password: tenant.password,
  })
  assert.equal(error, null)
  return client
}

describe('realtime with supabase-js', () => {
  let a
  let aPhone
  let b
  // What tenant B's channels heard; checked at the end.
  const heardByB = []

  before(async () => {
    a = await newTenant({ business_name: 'Kedai A' })
    b = await newTenant({ business_name: 'Kedai B' })
    aPhone = await secondDevice(a)
    // B listens on the same channel names as A, for everything A does below.
    await subscribed(
      b.client
        .channel('till')
        .on('broadcast', { event: '*' }, (m) => heardByB.push(m))
        .on('postgres_changes', { event: '*', schema: 'public', table: 'products' }, (m) =>
          heardByB.push(m),
        ),
    )
  })
  after(async () => {
    await closeClient(a.client)
    await closeClient(aPhone)
    await closeClient(b.client)
  })

  test('the socket speaks protocol 2.0.0', () => {
    assert.equal(a.client.realtime.vsn, '2.0.0')
  })

  test('postgres_changes delivers a new product', async () => {
    const changes = []
    const channel = a.client
      .channel('products-feed')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'products' }, (m) =>
        changes.push(m),
      )
    await subscribed(channel)
    const { data, error } = await a.client
      .from('products')
      .insert({ sku: 'TEH-1', name: 'Teh tarik', sale_price: 2.5 })
      .select()
      .single()
    assert.equal(error, null)
    const change = await arrival(changes, (m) => m.new?.id === data.id)
    assert.equal(change.eventType, 'INSERT')
    assert.equal(change.table, 'products')
    assert.equal(change.new.name, 'Teh tarik')
    await a.client.removeChannel(channel)
  })

  test('broadcast between two clients, JSON and binary payloads', async () => {
    const heard = []
    await subscribed(
      aPhone.channel('till').on('broadcast', { event: 'sale' }, (m) => heard.push(m)),
    )
    const till = await subscribed(a.client.channel('till'))

    assert.equal(
      await till.send({ type: 'broadcast', event: 'sale', payload: { total: 12.5, items: 2 } }),
      'ok',
    )
    const json = await arrival(heard)
    assert.deepEqual(json.payload, { total: 12.5, items: 2 })

    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255])
    assert.equal(await till.send({ type: 'broadcast', event: 'sale', payload: bytes.buffer }), 'ok')
    const binary = await arrival(heard, (m) => m.payload instanceof ArrayBuffer)
    assert.deepEqual(new Uint8Array(binary.payload), bytes)
  })

  test('httpSend reaches the tenant\'s subscribed clients', async () => {
    const heard = []
    await subscribed(
      aPhone.channel('counter').on('broadcast', { event: 'order' }, (m) => heard.push(m)),
    )
    const result = await a.client.channel('counter').httpSend('order', { table: 7 })
    assert.deepEqual(result, { success: true })
    const got = await arrival(heard)
    assert.deepEqual(got.payload, { table: 7 })
  })

  test('presence syncs between two clients', async () => {
    const here = aPhone.channel('shop', { config: { presence: { key: 'phone' } } })
    const synced = []
    here.on('presence', { event: 'sync' }, () => synced.push(here.presenceState()))
    await subscribed(here)

    const till = a.client.channel('shop', { config: { presence: { key: 'till' } } })
    till.on('presence', { event: 'sync' }, () => {})
    await subscribed(till)
    assert.equal(await till.track({ device: 'till', open: true }), 'ok')

    const state = await arrival(synced, (s) => s.till !== undefined)
    assert.equal(state.till.length, 1)
    assert.equal(state.till[0].device, 'till')
    assert.equal(state.till[0].open, true)
    assert.ok(state.till[0].presence_ref)

    assert.equal(await till.untrack(), 'ok')
    await arrival(synced, (s) => s.till === undefined)
  })

  test('a private channel: refused to another tenant, allowed to its own', async () => {
    const topic = `${a.user.id}:orders`
    const err = await refused(b.client.channel(topic, { config: { private: true } }))
    assert.match(
      String(err?.message ?? err),
      new RegExp(`You do not have permissions to read from this Channel topic: ${topic}`),
    )

    const heard = []
    await subscribed(
      aPhone
        .channel(topic, { config: { private: true } })
        .on('broadcast', { event: 'order' }, (m) => heard.push(m)),
    )
    const own = await subscribed(a.client.channel(topic, { config: { private: true } }))
    assert.equal(await own.send({ type: 'broadcast', event: 'order', payload: { table: 4 } }), 'ok')
    const got = await arrival(heard)
    assert.deepEqual(got.payload, { table: 4 })
  })

  test('tenant B received nothing of A', async () => {
    await pause(300) // let any stray delivery land before looking
    assert.deepEqual(heardByB, [])
  })
})
