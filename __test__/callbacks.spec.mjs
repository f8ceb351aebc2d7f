// JavaScript decides: the validator, bucketCredsFetcher and hmacFetcher
// callbacks, their caches, and how the proxy fails closed when a callback
// misbehaves. The backend is s3s-fs, which checks its own keys.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3'

import {
  BACKEND_AK,
  BACKEND_SK,
  CLIENT_AK,
  CLIENT_SK,
  bucketConfig,
  errorOf,
  makeClient,
  readAll,
  startBackend,
  startProxy,
  statusOf,
} from './helpers.mjs'

const BUCKET = 'callback-bucket'
const OTHER = 'other-bucket'
const READER = { accessKey: 'reader-access', secretKey: 'reader-secret-key-0123' }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Rules an application might already have: tokens mapped to allowed prefixes and operations. */
const RULES = {
  [CLIENT_AK]: { prefixes: [''], operations: null },
  [READER.accessKey]: { prefixes: ['public/'], operations: ['GetObject', 'HeadObject', 'ListObjectsV2', 'ListBuckets', 'CopyObject', 'DeleteObjects'] },
}

function allowedByRules(token, bucket, request) {
  const rule = RULES[token]
  if (!rule) return false
  if (rule.operations && !rule.operations.includes(request.operation)) return false
  const keys = [request.key, request.copySource?.key, ...(request.deleteKeys ?? [])].filter((key) => key != null)
  return keys.every((key) => rule.prefixes.some((prefix) => key.startsWith(prefix)))
}

async function putText(client, key, text) {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(text) }))
}

async function getText(client, key, bucket = BUCKET) {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return (await readAll(response.Body)).toString()
}

describe('callbacks', () => {
  let backend
  const keystore = [{ accessKey: CLIENT_AK, secretKey: CLIENT_SK }, READER]

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET, OTHER] })
    const seed = await startProxy({ cosMap: { [BUCKET]: bucketConfig(backend.port) } })
    const admin = makeClient(seed.httpPort)
    await putText(admin, 'public/a.txt', 'public text')
    await putText(admin, 'private/b.txt', 'private text')
    await seed.close()
  })

  after(async () => {
    await backend?.stop()
  })

  function cosMap(extra = {}) {
    return { [BUCKET]: bucketConfig(backend.port, extra), [OTHER]: bucketConfig(backend.port, extra) }
  }

  test('validator allows by key prefix and operation', async (t) => {
    const seen = []
    const proxy = await startProxy({
      cosMap: cosMap(),
      hmacKeystore: keystore,
      validator: (token, bucket, request) => {
        seen.push(request)
        return allowedByRules(token, bucket, request)
      },
    })
    t.after(() => proxy.close())
    const reader = makeClient(proxy.httpPort, READER)

    assert.equal(await getText(reader, 'public/a.txt'), 'public text')
    const privateRead = await errorOf(() => reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'private/b.txt' })))
    assert.equal(statusOf(privateRead), 403)
    assert.equal(privateRead.name, 'AccessDenied')
    const acl = await errorOf(() => reader.send(new GetObjectAclCommand({ Bucket: BUCKET, Key: 'public/a.txt' })))
    assert.equal(acl.name, 'AccessDenied', 'GetObjectAcl is another operation than GetObject')
    const write = await errorOf(() => reader.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'public/a.txt', Body: 'x' })))
    assert.equal(write.name, 'AccessDenied')
    assert.equal(await getText(reader, 'public/a.txt'), 'public text', 'the denied PUT changed nothing')

    const request = seen.find((info) => info.operation === 'GetObject')
    assert.equal(request.method, 'GET')
    assert.equal(request.bucket, BUCKET)
    assert.equal(request.key, 'public/a.txt')
    assert.equal(request.sourceIp, '127.0.0.1')
    assert.equal(typeof request.query, 'object')
    assert.ok(!('authorization' in request.headers), 'no Authorization header')
    assert.ok(request.headers['x-amz-date'], 'other headers are there')
    assert.ok(seen.some((info) => info.operation === 'GetObjectAcl'))
    assert.ok(seen.some((info) => info.operation === 'PutObject'))
  })

  test('copy from outside the prefix is denied', async (t) => {
    const sources = []
    const proxy = await startProxy({
      cosMap: cosMap(),
      hmacKeystore: keystore,
      validator: (token, bucket, request) => {
        if (request.copySource) sources.push(request.copySource)
        return allowedByRules(token, bucket, request)
      },
    })
    t.after(() => proxy.close())
    const reader = makeClient(proxy.httpPort, READER)

    const denied = await errorOf(() =>
      reader.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'public/copy.txt', CopySource: `${BUCKET}/private/b.txt` })),
    )
    assert.equal(denied.name, 'AccessDenied')
    await reader.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'public/copy.txt', CopySource: `${BUCKET}/public/a.txt` }))
    assert.equal(await getText(reader, 'public/copy.txt'), 'public text')
    assert.deepEqual(sources[0], { bucket: BUCKET, key: 'private/b.txt' })
  })

  test('copy source outside the bucket map is denied', async (t) => {
    const proxy = await startProxy({ cosMap: cosMap(), hmacKeystore: keystore, validator: () => true })
    t.after(() => proxy.close())
    const admin = makeClient(proxy.httpPort)
    const error = await errorOf(() =>
      admin.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'x.txt', CopySource: 'not-served/a.txt' })),
    )
    assert.equal(error.name, 'AccessDenied')
  })

  test('DeleteObjects listing a forbidden key is denied', async (t) => {
    const lists = []
    const proxy = await startProxy({
      cosMap: cosMap(),
      hmacKeystore: keystore,
      validator: (token, bucket, request) => {
        if (request.deleteKeys) lists.push(request.deleteKeys)
        return allowedByRules(token, bucket, request)
      },
    })
    t.after(() => proxy.close())
    const admin = makeClient(proxy.httpPort)
    const reader = makeClient(proxy.httpPort, READER)
    await putText(admin, 'public/d1.txt', '1')
    await putText(admin, 'public/d2.txt', '2')

    const mixed = { Bucket: BUCKET, Delete: { Objects: [{ Key: 'public/d1.txt' }, { Key: 'private/b.txt' }] } }
    const denied = await errorOf(() => reader.send(new DeleteObjectsCommand(mixed)))
    assert.equal(denied.name, 'AccessDenied')
    assert.equal(await getText(admin, 'private/b.txt'), 'private text', 'nothing was deleted')
    assert.deepEqual(lists[0], ['public/d1.txt', 'private/b.txt'])

    const allowed = { Bucket: BUCKET, Delete: { Objects: [{ Key: 'public/d1.txt' }, { Key: 'public/d2.txt' }] } }
    const result = await reader.send(new DeleteObjectsCommand(allowed))
    assert.equal(result.Deleted.length, 2)
    const gone = await errorOf(() => admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'public/d1.txt' })))
    assert.equal(statusOf(gone), 404)
  })

  test('large DeleteObjects is authorized after its body', async (t) => {
    const proxy = await startProxy({ cosMap: cosMap(), hmacKeystore: keystore, validator: allowedByRules })
    t.after(() => proxy.close())
    const admin = makeClient(proxy.httpPort)
    const reader = makeClient(proxy.httpPort, READER)
    await putText(admin, 'public/big-1.txt', '1')
    // Long keys push the XML body past the 64 KiB the proxy reads ahead.
    const filler = Array.from({ length: 700 }, (_, i) => ({ Key: `public/${'x'.repeat(80)}-${i}` }))
    const objects = [{ Key: 'public/big-1.txt' }, ...filler]

    const denied = await errorOf(() =>
      reader.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [...objects, { Key: 'private/b.txt' }] } })),
    )
    assert.equal(denied.name, 'AccessDenied')
    assert.equal(await getText(admin, 'public/big-1.txt'), '1', 'nothing was deleted')
    assert.equal(await getText(admin, 'private/b.txt'), 'private text')

    const result = await reader.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: objects } }))
    assert.equal(result.Errors?.length ?? 0, 0)
    const gone = await errorOf(() => admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'public/big-1.txt' })))
    assert.equal(statusOf(gone), 404)
  })

  test('ListBuckets shows only buckets the validator allows', async (t) => {
    const proxy = await startProxy({
      cosMap: cosMap(),
      hmacKeystore: keystore,
      validator: (token, bucket, request) => request.operation !== 'ListBuckets' || token === CLIENT_AK || bucket === OTHER,
    })
    t.after(() => proxy.close())
    const all = await makeClient(proxy.httpPort).send(new ListBucketsCommand({}))
    assert.deepEqual(all.Buckets.map((bucket) => bucket.Name).sort(), [BUCKET, OTHER].sort())
    const some = await makeClient(proxy.httpPort, READER).send(new ListBucketsCommand({}))
    assert.deepEqual(some.Buckets.map((bucket) => bucket.Name), [OTHER])
  })

  for (const style of ['sync', 'async']) {
    const wrap = (value) => (style === 'sync' ? value : sleep(5).then(() => value))

    test(`every callback works ${style}`, async (t) => {
      const calls = { validator: 0, creds: 0, secret: 0 }
      const proxy = await startProxy({
        cosMap: { [BUCKET]: { ...bucketConfig(backend.port), accessKey: undefined, secretKey: undefined } },
        hmacKeystore: [],
        hmacFetcher: (accessKey) => {
          calls.secret++
          return wrap(accessKey === READER.accessKey ? READER.secretKey : null)
        },
        bucketCredsFetcher: (token, bucket) => {
          calls.creds++
          return wrap({ accessKey: BACKEND_AK, secretKey: BACKEND_SK })
        },
        validator: (token, bucket, request) => {
          calls.validator++
          return wrap(allowedByRules(token, bucket, request))
        },
      })
      t.after(() => proxy.close())
      const reader = makeClient(proxy.httpPort, READER)
      assert.equal(await getText(reader, 'public/a.txt'), 'public text')
      assert.equal(await getText(reader, 'public/a.txt'), 'public text')
      assert.deepEqual(calls, { validator: 1, creds: 1, secret: 1 }, 'the second request is served from the caches')

      const unknown = makeClient(proxy.httpPort, { accessKey: 'nobody', secretKey: 'whatever-secret' })
      const error = await errorOf(() => unknown.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'public/a.txt' })))
      assert.equal(error.name, 'InvalidAccessKeyId')
    })
  }

  test('credentials as a JSON string from the Python package', async (t) => {
    const proxy = await startProxy({
      cosMap: { [BUCKET]: { ...bucketConfig(backend.port), accessKey: undefined, secretKey: undefined } },
      bucketCredsFetcher: () => JSON.stringify({ access_key: BACKEND_AK, secret_key: BACKEND_SK }),
    })
    t.after(() => proxy.close())
    assert.equal(await getText(makeClient(proxy.httpPort), 'public/a.txt'), 'public text')
  })

  test('concurrent misses share one validator call', async (t) => {
    let calls = 0
    const proxy = await startProxy({
      cosMap: cosMap(),
      validator: async () => {
        calls++
        await sleep(100)
        return true
      },
    })
    t.after(() => proxy.close())
    const client = makeClient(proxy.httpPort)
    const texts = await Promise.all(Array.from({ length: 50 }, () => getText(client, 'public/a.txt')))
    assert.ok(texts.every((text) => text === 'public text'))
    assert.equal(calls, 1)
    await getText(client, 'private/b.txt')
    assert.equal(calls, 2, 'another key is another decision')
  })

  test('listing prefixes are decided separately', async (t) => {
    let calls = 0
    const proxy = await startProxy({
      cosMap: cosMap(),
      hmacKeystore: keystore,
      validator: (token, bucket, request) => {
        calls++
        return request.operation !== 'ListObjectsV2' || request.query.prefix === 'public/'
      },
    })
    t.after(() => proxy.close())
    const reader = makeClient(proxy.httpPort, READER)
    const allowed = await reader.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'public/' }))
    assert.ok(allowed.Contents.length > 0)
    const denied = await errorOf(() => reader.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'private/' })))
    assert.equal(denied.name, 'AccessDenied', 'an allowed prefix is not reused for another')
    const unprefixed = await errorOf(() => reader.send(new ListObjectsV2Command({ Bucket: BUCKET })))
    assert.equal(unprefixed.name, 'AccessDenied')
    await reader.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'public/' }))
    assert.equal(calls, 3, 'the repeated listing came from the cache')
  })

  test('ttl 0 asks the validator every time', async (t) => {
    let calls = 0
    const proxy = await startProxy({
      cosMap: cosMap({ ttl: 0 }),
      validator: () => {
        calls++
        return true
      },
    })
    t.after(() => proxy.close())
    const client = makeClient(proxy.httpPort)
    for (let i = 0; i < 5; i++) await getText(client, 'public/a.txt')
    assert.equal(calls, 5)
  })

  test('misbehaving callbacks fail closed', async (t) => {
    let mode = 'ok'
    const proxy = await startProxy({
      cosMap: cosMap({ ttl: 0 }),
      callbackTimeoutMs: 300,
      validator: (token, bucket, request) => {
        switch (mode) {
          case 'throw':
            throw new Error('rules database unavailable')
          case 'reject':
            return Promise.reject(new Error('rules database unavailable'))
          case 'wrong type':
            return 'yes'
          case 'timeout':
            return new Promise(() => {})
          default:
            return true
        }
      },
    })
    t.after(() => proxy.close())
    const client = makeClient(proxy.httpPort)
    const expected = {
      throw: [500, 'InternalError'],
      reject: [500, 'InternalError'],
      'wrong type': [500, 'InternalError'],
      timeout: [503, 'ServiceUnavailable'],
    }
    for (const [failure, [status, code]] of Object.entries(expected)) {
      mode = failure
      const error = await errorOf(() => client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'public/a.txt' })))
      assert.equal(statusOf(error), status, failure)
      assert.equal(error.name, code, failure)
      mode = 'ok'
      assert.equal(await getText(client, 'public/a.txt'), 'public text', `served again after ${failure}`)
    }
  })

  test('event loop stays responsive under callback load', async (t) => {
    const proxy = await startProxy({
      cosMap: cosMap({ ttl: 0 }),
      validator: async () => {
        await sleep(1)
        return true
      },
    })
    t.after(() => proxy.close())
    const client = makeClient(proxy.httpPort)
    let last = Date.now()
    let longestGap = 0
    const timer = setInterval(() => {
      const now = Date.now()
      longestGap = Math.max(longestGap, now - last)
      last = now
    }, 10)
    try {
      for (let round = 0; round < 4; round++) {
        await Promise.all(Array.from({ length: 50 }, () => getText(client, 'public/a.txt')))
      }
    } finally {
      clearInterval(timer)
    }
    assert.ok(longestGap < 200, `longest timer gap ${longestGap} ms`)
  })
})
