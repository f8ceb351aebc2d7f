// IBM Cloud Object Storage with API keys: the proxy exchanges a bucket's API
// key at IAM for a bearer token and sends that to the backend instead of a
// SigV4 signature. IAM cannot be reached from here, so a local stand-in
// follows IBM's published token API (POST /identity/token with a form body,
// JSON answer with access_token, expires_in and expiration) and counts the
// exchanges; a local backend stand-in accepts only the current bearer tokens.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { after, before, describe, test } from 'node:test'

import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'

import { HOST, errorOf, makeClient, readAll, startProxy, statusOf } from './helpers.mjs'
import { makeCertificates } from './tls.mjs'

const BUCKET = 'ibm-bucket'
const API_KEY = 'ibm-api-key-0123456789'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function listen(server) {
  return new Promise((resolve) => server.listen(0, HOST, () => resolve(server.address().port)))
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
  })
}

/** IAM stand-in. `mode` is 'ok', 'error' (500) or 'reject' (400); `lifetime` is expires_in in seconds. */
async function startIam() {
  const iam = { exchanges: 0, mode: 'ok', lifetime: 3600, issued: new Set(), lastRequest: null }
  iam.server = http.createServer(async (req, res) => {
    const body = (await readBody(req)).toString()
    if (req.method !== 'POST' || req.url !== '/identity/token') {
      res.writeHead(404).end()
      return
    }
    iam.exchanges++
    iam.lastRequest = { headers: req.headers, form: new URLSearchParams(body) }
    const headers = { 'content-type': 'application/json', 'transaction-id': `tx-${iam.exchanges}` }
    if (iam.mode === 'error') {
      res.writeHead(500, headers).end(JSON.stringify({ errorCode: 'BXNIM0500E' }))
      return
    }
    const form = iam.lastRequest.form
    const valid = form.get('grant_type') === 'urn:ibm:params:oauth:grant-type:apikey' && form.get('apikey') === API_KEY
    if (iam.mode === 'reject' || !valid) {
      res.writeHead(400, headers).end(JSON.stringify({ errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found.' }))
      return
    }
    const token = `token-${iam.exchanges}-${Date.now()}`
    iam.issued.add(token)
    const now = Math.floor(Date.now() / 1000)
    res.writeHead(200, headers).end(
      JSON.stringify({ access_token: token, refresh_token: 'not_supported', token_type: 'Bearer', expires_in: iam.lifetime, expiration: now + iam.lifetime, scope: 'ibm openid' }),
    )
  })
  iam.port = await listen(iam.server)
  iam.close = () => new Promise((resolve) => iam.server.close(resolve))
  return iam
}

/** A backend stand-in that stores objects in memory and accepts only tokens IAM issued. */
async function startBearerBackend(iam) {
  const backend = { objects: new Map(), tokensSeen: [] }
  backend.server = http.createServer(async (req, res) => {
    const body = await readBody(req)
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    backend.tokensSeen.push(token)
    if (!token || !iam.issued.has(token)) {
      res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>')
      return
    }
    const path = decodeURIComponent(req.url.split('?')[0])
    if (req.method === 'PUT') {
      backend.objects.set(path, body)
      res.writeHead(200, { etag: '"1"' }).end()
    } else if (req.method === 'GET' && backend.objects.has(path)) {
      const object = backend.objects.get(path)
      res.writeHead(200, { 'content-length': object.length }).end(object)
    } else {
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>')
    }
  })
  backend.port = await listen(backend.server)
  backend.close = () => new Promise((resolve) => backend.server.close(resolve))
  return backend
}

describe('IBM Cloud IAM tokens', () => {
  let iam
  let backend

  before(async () => {
    iam = await startIam()
    backend = await startBearerBackend(iam)
  })

  after(async () => {
    await backend?.close()
    await iam?.close()
  })

  async function proxyWith(bucket = {}, extra = {}) {
    const proxy = await startProxy({
      cosMap: { [BUCKET]: { host: HOST, port: backend.port, tls: false, addressingStyle: 'path', apiKey: API_KEY, ...bucket } },
      iamEndpoint: `http://${HOST}:${iam.port}`,
      ...extra,
    })
    return { proxy, client: makeClient(proxy.httpPort) }
  }

  function reset({ mode = 'ok', lifetime = 3600 } = {}) {
    iam.exchanges = 0
    iam.mode = mode
    iam.lifetime = lifetime
  }

  test('API key becomes a bearer token', async (t) => {
    reset()
    const { proxy, client } = await proxyWith()
    t.after(() => proxy.close())
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a.txt', Body: 'hello ibm' }))
    const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' }))
    assert.equal((await readAll(response.Body)).toString(), 'hello ibm')
    assert.equal(iam.exchanges, 1, 'one exchange serves both requests')
    assert.equal(iam.lastRequest.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.equal(iam.lastRequest.headers.accept, 'application/json')
  })

  test('concurrent first requests share one exchange', async (t) => {
    reset()
    const { proxy, client } = await proxyWith()
    t.after(() => proxy.close())
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b.txt', Body: 'x' })).catch(() => {})
    reset()
    const { proxy: fresh, client: freshClient } = await proxyWith()
    t.after(() => fresh.close())
    const results = await Promise.all(
      Array.from({ length: 50 }, () => freshClient.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'b.txt' })).then(() => 'ok')),
    )
    assert.equal(results.length, 50)
    assert.equal(iam.exchanges, 1)
  })

  test('short-lived token refreshed once, not per request', async (t) => {
    reset({ lifetime: 3 })
    const { proxy, client } = await proxyWith()
    t.after(() => proxy.close())
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c.txt', Body: 'x' }))
    // A 3 s token is reused for 2.4 s (a fifth of its life is the margin).
    const deadline = Date.now() + 3200
    let requests = 0
    while (Date.now() < deadline) {
      await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'c.txt' }))
      requests++
      await sleep(100)
    }
    assert.ok(requests > 10, `only ${requests} requests ran`)
    assert.equal(iam.exchanges, 2)
  })

  test('IAM failing gives 503 and the next request retries', async (t) => {
    reset({ mode: 'error' })
    const { proxy, client } = await proxyWith()
    t.after(() => proxy.close())
    const error = await errorOf(() => client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })))
    assert.equal(statusOf(error), 503)
    assert.equal(error.name, 'ServiceUnavailable')
    iam.mode = 'ok'
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'd.txt', Body: 'x' }))
    assert.equal(iam.exchanges, 2, 'the failure was not cached')
  })

  test('IAM down gives 503', async (t) => {
    reset()
    const closed = http.createServer()
    const port = await listen(closed)
    await new Promise((resolve) => closed.close(resolve))
    const { proxy, client } = await proxyWith({}, { iamEndpoint: `http://${HOST}:${port}` })
    t.after(() => proxy.close())
    const error = await errorOf(() => client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })))
    assert.equal(statusOf(error), 503)
  })

  test('rejected key gives 500 and retries reuse the rejection', async (t) => {
    reset({ mode: 'reject' })
    const { proxy, client } = await proxyWith()
    t.after(() => proxy.close())
    for (let i = 0; i < 10; i++) {
      const error = await errorOf(() => client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })))
      assert.equal(statusOf(error), 500)
      assert.equal(error.name, 'InternalError')
    }
    assert.equal(iam.exchanges, 1)
  })

  test('IAM over TLS is trusted through caCert', async (t) => {
    reset()
    const certificates = await makeCertificates({ servers: ['iam'] })
    t.after(() => certificates.remove())
    // A TLS front for the IAM stand-in, with a certificate from the test CA.
    const front = https.createServer(
      { cert: readFileSync(certificates.certPath('iam')), key: readFileSync(certificates.keyPath('iam')) },
      (req, res) => {
        const upstream = http.request({ host: HOST, port: iam.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode, answer.headers)
          answer.pipe(res)
        })
        req.pipe(upstream)
      },
    )
    const port = await listen(front)
    t.after(() => new Promise((resolve) => front.close(resolve)))
    const iamEndpoint = `https://${HOST}:${port}`

    const { proxy: untrusting, client: untrustingClient } = await proxyWith({}, { iamEndpoint })
    t.after(() => untrusting.close())
    const error = await errorOf(() => untrustingClient.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })))
    assert.equal(statusOf(error), 503, 'the platform store does not trust the test CA')

    const caCert = readFileSync(certificates.caPath)
    const { proxy, client } = await proxyWith({}, { iamEndpoint, caCert })
    t.after(() => proxy.close())
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'tls.txt', Body: 'over tls' }))
    assert.equal(iam.exchanges, 1)
  })

  for (const [form, value] of [
    ['string', API_KEY],
    ['object', { apiKey: API_KEY }],
  ]) {
    test(`bucketCredsFetcher returning an API key ${form}`, async (t) => {
      reset()
      const { proxy, client } = await proxyWith({ apiKey: undefined }, { bucketCredsFetcher: async () => value })
      t.after(() => proxy.close())
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `from-${form}.txt`, Body: form }))
      const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `from-${form}.txt` }))
      assert.equal((await readAll(response.Body)).toString(), form)
      assert.equal(iam.exchanges, 1)
    })
  }
})
