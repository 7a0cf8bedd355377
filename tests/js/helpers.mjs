// Shared by the *.test.mjs files: the server under test and fresh tenants, all through
// supabase-js with its default client options (as a client developer would write it).
import { randomUUID } from 'node:crypto'
import assert from 'node:assert/strict'
import { createClient } from '@supabase/supabase-js'

export const PB_URL = required('PB_URL')
export const PB_ANON_KEY = required('PB_ANON_KEY')
export const PB_SERVICE_KEY = required('PB_SERVICE_KEY')

function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run these tests through tests/js/test_js_sdk.py`)
  return value
}

/** A client with the anon key and default options. */
export function anonClient() {
  return createClient(PB_URL, PB_ANON_KEY)
}

/** A client with the service_role key and default options. */
export function serviceClient() {
  return createClient(PB_URL, PB_SERVICE_KEY)
}

/** Sign up a new tenant (its own business); returns {client, user, session, email, password}. */
export async function newTenant(metadata = {}) {
  const client = anonClient()
  const email = `js-${randomUUID().slice(0, 12)}@example.com`
  const password = 'correct horse battery'
  const { data, error } = await client.auth.signUp({ email, password, options: { data: metadata } })
  assert.equal(error, null)
  assert.ok(data.session, 'sign-up returns a session (autoconfirm)')
  return { client, user: data.user, session: data.session, email, password }
}

/** Close every realtime socket and stop the token refresh timer so node can exit. */
export async function closeClient(client) {
  await client.removeAllChannels()
  await client.auth.stopAutoRefresh()
}
