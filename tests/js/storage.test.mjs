// Storage through supabase-js with default options, call by call as storage-js's own
// integration suite exercises it: buckets (service role), objects (a signed-in tenant).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { closeClient, newTenant, serviceClient } from './helpers.mjs'

describe('storage-js against PocketBizz', () => {
  const admin = serviceClient()
  let t
  let bucketName

  before(async () => {
    t = await newTenant()
    bucketName = `js-${randomUUID().slice(0, 8)}`
  })
  after(async () => {
    await closeClient(t.client)
    await closeClient(admin)
  })

  test('buckets: create, get, update, list, empty, delete', async () => {
    const created = await admin.storage.createBucket(bucketName, {
      public: false,
      fileSizeLimit: '1mb',
      allowedMimeTypes: ['text/plain', 'image/*'],
    })
    assert.equal(created.error, null)
    assert.deepEqual(created.data, { name: bucketName })

    const got = await admin.storage.getBucket(bucketName)
    assert.equal(got.error, null)
    assert.equal(got.data.id, bucketName)
    assert.equal(got.data.public, false)
    assert.equal(got.data.file_size_limit, 1_000_000)
    assert.deepEqual(got.data.allowed_mime_types, ['text/plain', 'image/*'])
    assert.match(got.data.created_at, /Z$/)

    const updated = await admin.storage.updateBucket(bucketName, { public: true, fileSizeLimit: 2048 })
    assert.equal(updated.error, null)
    assert.deepEqual(updated.data, { message: 'Successfully updated' })
    assert.equal((await admin.storage.getBucket(bucketName)).data.public, true)

    const listed = await admin.storage.listBuckets()
    assert.equal(listed.error, null)
    assert.ok(listed.data.some((b) => b.id === bucketName))
    const searched = await admin.storage.listBuckets({ search: bucketName })
    assert.equal(searched.error, null)
    assert.deepEqual(searched.data.map((b) => b.id), [bucketName])
    const newest = await admin.storage.listBuckets({ limit: 1, sortColumn: 'created_at', sortOrder: 'desc' })
    assert.equal(newest.error, null)
    assert.deepEqual(newest.data.map((b) => b.id), [bucketName])
    const paged = await admin.storage.listBuckets({ limit: 2, offset: 1, sortColumn: 'id' })
    const ids = listed.data.map((b) => b.id)
    assert.deepEqual(paged.data.map((b) => b.id), ids.slice(1, 3))

    const dup = await admin.storage.createBucket(bucketName)
    assert.equal(dup.error.status, 409)
    const denied = await t.client.storage.createBucket(`nope-${randomUUID().slice(0, 6)}`)
    assert.equal(denied.error.status, 403)

    const up = await admin.storage.from(bucketName).upload('x/a.txt', 'hello')
    assert.equal(up.error, null)
    const notEmpty = await admin.storage.deleteBucket(bucketName)
    assert.equal(notEmpty.error.status, 409)
    assert.deepEqual((await admin.storage.emptyBucket(bucketName)).data, {
      message: 'Successfully emptied',
    })
    assert.deepEqual((await admin.storage.deleteBucket(bucketName)).data, {
      message: 'Successfully deleted',
    })
    const gone = await admin.storage.getBucket(bucketName)
    assert.equal(gone.error.status, 404)
  })

  test('objects: upload, upsert, update, download, move, copy, remove', async () => {
    const files = t.client.storage.from('receipts')
    const dir = t.user.id
    const first = await files.upload(`${dir}/a.txt`, 'one', { contentType: 'text/plain' })
    assert.equal(first.error, null)
    assert.ok(first.data.id)

    const again = await files.upload(`${dir}/a.txt`, 'two')
    assert.equal(again.error.status, 409)
    const upsert = await files.upload(`${dir}/a.txt`, 'two', { upsert: true })
    assert.equal(upsert.error, null)
    assert.equal(await (await files.download(`${dir}/a.txt`)).data.text(), 'two')

    const updated = await files.update(`${dir}/a.txt`, new Blob(['three'], { type: 'text/plain' }))
    assert.equal(updated.error, null)
    assert.equal(await (await files.download(`${dir}/a.txt`)).data.text(), 'three')
    const updateMissing = await files.update(`${dir}/missing.txt`, 'x')
    assert.equal(updateMissing.error.status, 404)

    const moved = await files.move(`${dir}/a.txt`, `${dir}/b.txt`)
    assert.equal(moved.error, null)
    assert.deepEqual(moved.data, { message: 'Successfully moved' })
    const copied = await files.copy(`${dir}/b.txt`, `${dir}/c.txt`)
    assert.equal(copied.error, null)
    assert.equal(copied.data.path, `receipts/${dir}/c.txt`)
    assert.equal(await (await files.download(`${dir}/c.txt`)).data.text(), 'three')

    const listed = await files.list(dir, { sortBy: { column: 'name', order: 'desc' } })
    assert.deepEqual(listed.data.map((f) => f.name), ['c.txt', 'b.txt'])
    const searched = await files.list(dir, { search: 'c' })
    assert.deepEqual(searched.data.map((f) => f.name), ['c.txt'])

    const removed = await files.remove([`${dir}/b.txt`, `${dir}/c.txt`])
    assert.equal(removed.error, null)
    assert.deepEqual(removed.data.map((r) => r.name).sort(), [`${dir}/b.txt`, `${dir}/c.txt`])
    assert.deepEqual((await files.list(dir)).data, [])
  })

  test('signed URLs: many at once, with download names, and signed uploads', async () => {
    const files = t.client.storage.from('receipts')
    const dir = t.user.id
    await files.upload(`${dir}/s1.txt`, 's1')
    await files.upload(`${dir}/s2.txt`, 's2')

    const many = await files.createSignedUrls([`${dir}/s1.txt`, `${dir}/s2.txt`, `${dir}/none.txt`], 60)
    assert.equal(many.error, null)
    assert.equal(many.data.length, 3)
    assert.equal(await (await fetch(many.data[0].signedUrl)).text(), 's1')
    assert.equal(await (await fetch(many.data[1].signedUrl)).text(), 's2')
    assert.ok(many.data[2].error)

    const dl = await files.createSignedUrl(`${dir}/s1.txt`, 60, { download: true })
    const res = await fetch(dl.data.signedUrl)
    assert.equal(res.headers.get('content-disposition'), 'attachment;')

    const upload = await files.createSignedUploadUrl(`${dir}/via-link.txt`)
    assert.equal(upload.error, null)
    assert.ok(upload.data.token)
    const put = await files.uploadToSignedUrl(`${dir}/via-link.txt`, upload.data.token, 'linked')
    assert.equal(put.error, null)
    assert.equal(put.data.path, `${dir}/via-link.txt`)
    assert.equal(await (await files.download(`${dir}/via-link.txt`)).data.text(), 'linked')
  })

  test('errors carry the storage shape the client reads', async () => {
    const files = t.client.storage.from('receipts')
    const missing = await files.download(`${t.user.id}/never.txt`)
    assert.equal(missing.error.status, 404)
    const noBucket = await t.client.storage.from('no-such-bucket').list()
    assert.equal(noBucket.error.status, 404)
    const notMine = await files.upload(`${randomUUID()}/x.txt`, 'x')
    assert.equal(notMine.error.status, 403)
    const badKey = await files.upload(`${t.user.id}/../escape.txt`, 'x')
    assert.ok(badKey.error)
  })
})
