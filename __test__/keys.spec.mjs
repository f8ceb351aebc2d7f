// Object keys with characters that SigV4 path encoding must get right.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'

import { cosMapFor, errorOf, makeClient, readAll, startBackend, startProxy, statusOf } from './helpers.mjs'

const BUCKET = 'keys-bucket'

const ROUND_TRIP_KEYS = ['a+b', 'a b', 'a%b', 'a=b', 'a~b', 'ünïcödé/€', 'x/y:z', 'a&b', 'a?b', 'a#b']

// s3s-fs stores keys as file paths and collapses these, so only the
// signature check at the proxy is asserted for them.
const COLLAPSING_KEYS = ['a//b', 'a/./b', 'a/../b']

describe('awkward object keys', { timeout: 60_000 }, () => {
  let backend
  let proxy
  let client

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET] })
    proxy = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    client = makeClient(proxy.httpPort)
  })

  after(async () => {
    client?.destroy()
    await proxy?.close()
    await backend?.stop()
  })

  for (const key of ROUND_TRIP_KEYS) {
    test(`key ${JSON.stringify(key)} round trips`, async () => {
      const body = Buffer.from(`content of ${key}`)
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))
      const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      assert.deepEqual(await readAll(out.Body), body)
    })
  }

  for (const key of COLLAPSING_KEYS) {
    test(`key ${JSON.stringify(key)} passes the signature check`, async () => {
      for (const command of [
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(key) }),
        new GetObjectCommand({ Bucket: BUCKET, Key: key }),
      ]) {
        let status
        let name = 'none'
        try {
          const out = await client.send(command)
          status = out.$metadata.httpStatusCode
          if (out.Body) await readAll(out.Body)
        } catch (err) {
          status = statusOf(err)
          name = err.name
          assert.ok(status !== undefined, `no HTTP response: ${err}`)
        }
        const outcome = `${command.constructor.name}: ${status} ${name}`
        assert.notEqual(status, 403, outcome)
        assert.notEqual(name, 'SignatureDoesNotMatch', outcome)
      }
    })
  }

  test('the proxy still rejects a wrong signature on an awkward key', async () => {
    const bad = makeClient(proxy.httpPort, { secretKey: 'not-the-client-secret' })
    try {
      const err = await errorOf(() => bad.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a+b' })))
      assert.equal(statusOf(err), 403)
    } finally {
      bad.destroy()
    }
  })
})
