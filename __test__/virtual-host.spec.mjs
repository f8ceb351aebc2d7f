// Virtual-host style addressing: Host "<bucket>.<domain>" names the bucket.
// Connections always go to 127.0.0.1; the host names are never resolved.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'

import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'

import {
  CLIENT_AK,
  CLIENT_SK,
  HOST,
  REGION,
  captureRequests,
  cosMapFor,
  httpRequest,
  makeClient,
  readAll,
  signRequest,
  startBackend,
  startProxy,
} from './helpers.mjs'

const DOMAIN = 's3.local.test'
const BUCKET = 'vhost-bucket'
const DOTTED = 'my.dotted.bucket'

/** Resolves every host name to 127.0.0.1 without asking DNS. */
function loopbackLookup(hostname, options, callback) {
  if (options.all) callback(null, [{ address: HOST, family: 4 }])
  else callback(null, HOST, 4)
}

describe('virtual-host style requests', { timeout: 60_000 }, () => {
  let backend
  let proxy
  let agent
  let client

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET, DOTTED] })
    proxy = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET, DOTTED]), virtualHostDomains: [DOMAIN] })
    agent = new http.Agent({ keepAlive: true, lookup: loopbackLookup })
    client = new S3Client({
      endpoint: `http://${DOMAIN}:${proxy.httpPort}`,
      forcePathStyle: false,
      region: REGION,
      credentials: { accessKeyId: CLIENT_AK, secretAccessKey: CLIENT_SK },
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpAgent: agent }),
    })
  })

  after(async () => {
    client?.destroy()
    agent?.destroy()
    await proxy?.close()
    await backend?.stop()
  })

  test('the SDK in virtual-host style puts, gets and lists', async () => {
    const seen = captureRequests(client)
    const body = Buffer.from('virtual host body')
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'dir/vhost.txt', Body: body }))
    assert.equal(seen.at(-1).hostname, `${BUCKET}.${DOMAIN}`)
    assert.equal(seen.at(-1).path, '/dir/vhost.txt')
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'dir/vhost.txt' }))
    assert.deepEqual(await readAll(out.Body), body)
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'dir/' }))
    assert.deepEqual((listed.Contents ?? []).map((o) => o.Key), ['dir/vhost.txt'])
    assert.ok(backend.hasObject(BUCKET, 'dir/vhost.txt'))
  })

  test('a bucket name with dots works in virtual-host style', async () => {
    const authority = `${DOTTED}.${DOMAIN}:${proxy.httpPort}`
    const body = Buffer.from('dotted bucket body')
    const put = signRequest({
      method: 'PUT',
      host: authority,
      path: '/dotted.txt',
      body,
      headers: { 'content-length': String(body.length) },
    })
    const putRes = await httpRequest({ port: proxy.httpPort, method: 'PUT', path: put.path, headers: put.headers, body })
    assert.equal(putRes.status, 200, putRes.body.toString())
    assert.ok(backend.hasObject(DOTTED, 'dotted.txt'), 'the object is not in the dotted bucket at the backend')
    const get = signRequest({ host: authority, path: '/dotted.txt' })
    const getRes = await httpRequest({ port: proxy.httpPort, path: get.path, headers: get.headers })
    assert.equal(getRes.status, 200, getRes.body.toString())
    assert.deepEqual(getRes.body, body)
  })

  test('a Host header without a port is virtual-host style too', async () => {
    const body = Buffer.from('no port in host')
    const put = signRequest({
      method: 'PUT',
      host: `${BUCKET}.${DOMAIN}`,
      path: '/no-port.txt',
      body,
      headers: { 'content-length': String(body.length) },
    })
    const res = await httpRequest({ port: proxy.httpPort, method: 'PUT', path: put.path, headers: put.headers, body })
    assert.equal(res.status, 200, res.body.toString())
    assert.ok(backend.hasObject(BUCKET, 'no-port.txt'))
  })

  test('path style still works when virtual-host domains are set', async () => {
    const pathClient = makeClient(proxy.httpPort)
    try {
      const body = Buffer.from('path style body')
      await pathClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'path-style.txt', Body: body }))
      const out = await pathClient.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'path-style.txt' }))
      assert.deepEqual(await readAll(out.Body), body)
    } finally {
      pathClient.destroy()
    }
  })
})
