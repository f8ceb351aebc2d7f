// Client authentication at the proxy: SigV4 checks, S3 error responses, and
// proof that rejected requests never reach a backend or store anything.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'

import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'

import {
  BACKEND_SK,
  CLIENT_SK,
  HOST,
  assertS3Error,
  bucketConfig,
  errorOf,
  httpRequest,
  makeClient,
  rawExchange,
  readAll,
  sha256,
  signRequest,
  startBackend,
  startCountingServer,
  startProxy,
  statusOf,
} from './helpers.mjs'

const BUCKET = 'auth-bucket'
// A bucket whose backend only counts connections.
const GUARDED = 'guarded-bucket'


/** Sends a PUT with `Expect: 100-continue` and writes the body only after 100 Continue. */
function putWithExpect({ port, path, headers, body, timeoutMs = 5000 }) {
  return new Promise((resolve, reject) => {
    const events = []
    const req = http.request({ host: HOST, port, method: 'PUT', path, headers: { ...headers, expect: '100-continue' }, agent: false })
    const timer = setTimeout(() => {
      events.push('timeout')
      req.destroy()
      resolve({ events, status: undefined, body: Buffer.alloc(0) })
    }, timeoutMs)
    req.on('continue', () => {
      events.push('continue')
      req.end(body)
    })
    req.on('response', async (res) => {
      events.push('response')
      const data = await readAll(res)
      clearTimeout(timer)
      req.destroy()
      resolve({ events, status: res.statusCode, body: data })
    })
    req.on('error', (err) => {
      clearTimeout(timer)
      if (events.includes('response')) return
      reject(err)
    })
    req.flushHeaders()
  })
}

describe('authentication at the proxy', { timeout: 60_000 }, () => {
  let backend
  let counting
  let proxy
  let client
  let authority

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET] })
    counting = await startCountingServer()
    proxy = await startProxy({
      cosMap: { [BUCKET]: bucketConfig(backend.port), [GUARDED]: bucketConfig(counting.port) },
    })
    client = makeClient(proxy.httpPort)
    authority = `${HOST}:${proxy.httpPort}`
  })

  after(async () => {
    client?.destroy()
    await proxy?.close()
    await counting?.close()
    await backend?.stop()
  })

  test('wrong client secret: 403 SignatureDoesNotMatch, nothing stored', async () => {
    const bad = makeClient(proxy.httpPort, { secretKey: 'not-the-client-secret' })
    try {
      const err = await errorOf(() =>
        bad.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'wrong-secret.txt', Body: Buffer.from('nope') })),
      )
      assert.equal(statusOf(err), 403)
      assert.equal(err.name, 'SignatureDoesNotMatch')
    } finally {
      bad.destroy()
    }
    const head = await errorOf(() => client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'wrong-secret.txt' })))
    assert.equal(statusOf(head), 404)
    assert.equal(backend.hasObject(BUCKET, 'wrong-secret.txt'), false)
  })

  test('wrong signature never reaches the backend', async () => {
    const bad = makeClient(proxy.httpPort, { secretKey: 'not-the-client-secret' })
    try {
      const err = await errorOf(() => bad.send(new GetObjectCommand({ Bucket: GUARDED, Key: 'anything' })))
      assert.equal(statusOf(err), 403)
      assert.equal(err.name, 'SignatureDoesNotMatch')
    } finally {
      bad.destroy()
    }
    assert.equal(counting.connections, 0)
  })

  test('unknown access key: 403 InvalidAccessKeyId', async () => {
    const stranger = makeClient(proxy.httpPort, { accessKey: 'unknown-access-key' })
    try {
      const err = await errorOf(() => stranger.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'x' })))
      assert.equal(statusOf(err), 403)
      assert.equal(err.name, 'InvalidAccessKeyId')
    } finally {
      stranger.destroy()
    }
  })

  test('unknown bucket: 404 NoSuchBucket, no backend contacted', async () => {
    const err = await errorOf(() => client.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'x' })))
    assert.equal(statusOf(err), 404)
    assert.equal(err.name, 'NoSuchBucket')
    assert.equal(counting.connections, 0)
  })

  test('unsigned request: 403 AccessDenied', async () => {
    const res = await httpRequest({ port: proxy.httpPort, path: `/${BUCKET}/anything`, headers: { host: authority } })
    assertS3Error(res, 403, 'AccessDenied')
  })

  test('unsigned request, unknown bucket: 403, not 404', async () => {
    const res = await httpRequest({ port: proxy.httpPort, path: '/no-such-bucket/x', headers: { host: authority } })
    assertS3Error(res, 403, 'AccessDenied')
  })

  test('error body is S3 XML with x-amz-request-id', async () => {
    const res = await httpRequest({ port: proxy.httpPort, path: `/${BUCKET}/anything`, headers: { host: authority } })
    const err = assertS3Error(res, 403, 'AccessDenied')
    assert.match(err.text, /<Error>[\s\S]*<\/Error>/)
    assert.ok(err.message !== undefined, `no <Message> in ${err.text}`)
    assert.ok(err.requestId, `no <RequestId> in ${err.text}`)
    assert.ok(res.headers['x-amz-request-id'], `headers: ${JSON.stringify(res.headers)}`)
    assert.match(String(res.headers['content-type']), /xml/)
  })

  test('HEAD error response has no body', async () => {
    const request =
      `HEAD /${BUCKET}/anything HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`
    const { data, timedOut } = await rawExchange(proxy.httpPort, request)
    const text = data.toString('latin1')
    const end = text.indexOf('\r\n\r\n')
    assert.ok(end > 0, `no complete response head in ${JSON.stringify(text)} (timed out: ${timedOut})`)
    assert.match(text, /^HTTP\/1\.1 403 /)
    assert.equal(text.slice(end + 4), '', 'bytes after the response head')
  })

  test('signed 20 minutes ago: 403 RequestTimeTooSkewed', async () => {
    const signed = signRequest({
      host: authority,
      path: `/${BUCKET}/skewed.txt`,
      date: new Date(Date.now() - 20 * 60 * 1000),
    })
    const res = await httpRequest({ port: proxy.httpPort, path: signed.path, headers: signed.headers })
    assertS3Error(res, 403, 'RequestTimeTooSkewed')
  })

  test('wrong payload hash: 400 XAmzContentSHA256Mismatch, nothing stored', async () => {
    const body = Buffer.from('the bytes actually sent')
    const signed = signRequest({
      method: 'PUT',
      host: authority,
      path: `/${BUCKET}/mismatch.txt`,
      payloadHash: sha256('some other bytes'),
      headers: { 'content-length': String(body.length) },
    })
    const res = await httpRequest({ port: proxy.httpPort, method: 'PUT', path: signed.path, headers: signed.headers, body })
    assertS3Error(res, 400, 'XAmzContentSHA256Mismatch')
    const head = await errorOf(() => client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'mismatch.txt' })))
    assert.equal(statusOf(head), 404)
    assert.equal(backend.hasObject(BUCKET, 'mismatch.txt'), false)
  })

  test('Expect: 100-continue PUT stores the object', async () => {
    const body = Buffer.from('sent after 100 Continue')
    const signed = signRequest({
      method: 'PUT',
      host: authority,
      path: `/${BUCKET}/expect.txt`,
      body,
      headers: { 'content-length': String(body.length) },
    })
    const res = await putWithExpect({ port: proxy.httpPort, path: signed.path, headers: signed.headers, body })
    assert.deepEqual(res.events, ['continue', 'response'], `body: ${res.body}`)
    assert.equal(res.status, 200, res.body.toString())
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'expect.txt' }))
    assert.deepEqual(await readAll(out.Body), body)
  })

  test('Expect: 100-continue, wrong signature: 403 before the body', async () => {
    const body = Buffer.from('must never be sent')
    const signed = signRequest({
      method: 'PUT',
      host: authority,
      path: `/${BUCKET}/expect-denied.txt`,
      body,
      secretKey: 'not-the-client-secret',
      headers: { 'content-length': String(body.length) },
    })
    const res = await putWithExpect({ port: proxy.httpPort, path: signed.path, headers: signed.headers, body })
    assert.deepEqual(res.events, ['response'])
    assertS3Error(res, 403, 'SignatureDoesNotMatch')
    assert.equal(backend.hasObject(BUCKET, 'expect-denied.txt'), false)
  })

  test('signature error reveals no secret key', async () => {
    const bad = signRequest({ host: authority, path: `/${BUCKET}/x`, secretKey: 'not-the-client-secret' })
    const res = await httpRequest({ port: proxy.httpPort, path: bad.path, headers: bad.headers })
    assertS3Error(res, 403, 'SignatureDoesNotMatch')
    const response = JSON.stringify(res.headers) + res.body.toString()
    for (const secret of [CLIENT_SK, BACKEND_SK, 'not-the-client-secret']) {
      assert.ok(!response.includes(secret), `the response contains a secret: ${response}`)
    }
  })
})

describe('skipSignatureValidation', { timeout: 60_000 }, () => {
  let backend
  let proxy

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET] })
    proxy = await startProxy({ cosMap: { [BUCKET]: bucketConfig(backend.port) }, skipSignatureValidation: true })
  })

  after(async () => {
    await proxy?.close()
    await backend?.stop()
  })

  test('lets unsigned requests through', async () => {
    const authority = `${HOST}:${proxy.httpPort}`
    const body = Buffer.from('stored without a client signature')
    const put = await httpRequest({
      port: proxy.httpPort,
      method: 'PUT',
      path: `/${BUCKET}/unsigned.txt`,
      headers: { host: authority, 'content-length': String(body.length) },
      body,
    })
    assert.equal(put.status, 200, put.body.toString())
    assert.equal(backend.hasObject(BUCKET, 'unsigned.txt'), true)
    const get = await httpRequest({ port: proxy.httpPort, path: `/${BUCKET}/unsigned.txt`, headers: { host: authority } })
    assert.equal(get.status, 200, get.body.toString())
    assert.deepEqual(get.body, body)
  })
})
