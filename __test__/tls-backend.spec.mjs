// HTTPS towards the backend: nginx terminates TLS in front of s3s-fs with a
// certificate from a CA made at test time. The proxy trusts that CA through
// SSL_CERT_FILE, which it reads, like the platform trust store, when a server
// starts; so this file sets it before starting any server.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'

import {
  bucketConfig,
  errorOf,
  httpRequest,
  makeClient,
  parseS3Error,
  randomBody,
  readAll,
  sha256,
  signRequest,
  startBackend,
  startProxy,
  statusOf,
} from './helpers.mjs'
import { makeCertificates, startTlsTerminator } from './tls.mjs'

const BUCKET = 'tls-bucket'

describe('HTTPS backend', () => {
  let certificates
  let backend
  let terminator

  before(async () => {
    certificates = await makeCertificates({ servers: ['trusted'], selfSigned: ['untrusted'] })
    process.env.SSL_CERT_FILE = certificates.caPath
    backend = await startBackend({ buckets: [BUCKET] })
    terminator = await startTlsTerminator({
      certificates,
      names: ['trusted', 'untrusted'],
      upstreamPort: backend.port,
    })
  })

  after(async () => {
    await terminator?.stop()
    await backend?.stop()
    await certificates?.remove()
  })

  /** Starts a proxy whose bucket is reached over TLS on the named nginx port. */
  async function proxyFor(name, extra = {}) {
    const bucket = bucketConfig(terminator.ports[name], { tls: true })
    return startProxy({ cosMap: { [BUCKET]: bucket }, ...extra })
  }

  test('verified certificate carries put, list and get', async (t) => {
    const proxy = await proxyFor('trusted')
    t.after(() => proxy.close())
    const client = makeClient(proxy.httpPort)
    const body = randomBody(3 * 1024 * 1024 + 17)

    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'over-tls.bin', Body: body }))
    const listing = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))
    assert.ok(listing.Contents.some((item) => item.Key === 'over-tls.bin'))
    const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'over-tls.bin' }))
    const downloaded = await readAll(response.Body)
    assert.equal(sha256(downloaded), sha256(body))
  })

  test('untrusted certificate answers 502 BadGateway', async (t) => {
    const proxy = await proxyFor('untrusted')
    t.after(() => proxy.close())
    const response = await fetch(`http://127.0.0.1:${proxy.httpPort}/`, { method: 'GET' })
    assert.equal(response.status, 403, 'an unsigned request is rejected before any backend is contacted')

    const client = makeClient(proxy.httpPort)
    const error = await errorOf(() => client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'over-tls.bin' })))
    assert.equal(statusOf(error), 502)
    assert.equal(error.name, 'BadGateway')
  })

  test('verify false accepts an untrusted certificate', async (t) => {
    const proxy = await proxyFor('untrusted', { verify: false })
    t.after(() => proxy.close())
    const client = makeClient(proxy.httpPort)
    const body = randomBody(4096)

    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'unverified.bin', Body: body }))
    const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'unverified.bin' }))
    assert.equal(sha256(await readAll(response.Body)), sha256(body))
  })

  test('backend TLS failure body is S3 XML', async (t) => {
    const proxy = await proxyFor('untrusted')
    t.after(() => proxy.close())
    const signed = signRequest({ method: 'GET', host: `127.0.0.1:${proxy.httpPort}`, path: `/${BUCKET}/x` })
    const response = await httpRequest({ port: proxy.httpPort, path: signed.path, headers: signed.headers })
    const error = parseS3Error(response.body)
    assert.equal(response.status, 502)
    assert.equal(error.code, 'BadGateway')
    assert.equal(error.requestId, response.headers['x-amz-request-id'])
  })
})
