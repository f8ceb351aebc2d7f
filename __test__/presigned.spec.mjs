// Presigned URLs (query-string SigV4) through the proxy, fetched with plain HTTP.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'

import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'

import {
  HOST,
  cosMapFor,
  httpRequest,
  makeClient,
  parseS3Error,
  presignUrl,
  randomBody,
  readAll,
  sha256,
  startBackend,
  startProxy,
} from './helpers.mjs'

const BUCKET = 'presigned-bucket'

describe('presigned URLs', { timeout: 60_000 }, () => {
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

  test('a presigned GET URL returns the object bytes', async () => {
    const body = randomBody(200_000)
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'presigned-get.bin', Body: body }))
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: 'presigned-get.bin' }), {
      expiresIn: 300,
    })
    assert.ok(url.startsWith(`http://${HOST}:${proxy.httpPort}/`), url)
    const res = await fetch(url)
    const bytes = Buffer.from(await res.arrayBuffer())
    assert.equal(res.status, 200, bytes.toString())
    assert.equal(sha256(bytes), sha256(body))
  })

  test('a presigned PUT URL stores the uploaded bytes', async () => {
    const body = randomBody(150_000)
    // With the default checksum setting the SDK puts the CRC32 of an empty
    // body into a presigned PUT URL, which no other body matches. Presigning
    // with WHEN_REQUIRED leaves the checksum out.
    const presigner = makeClient(proxy.httpPort, { requestChecksumCalculation: 'WHEN_REQUIRED' })
    const url = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: BUCKET, Key: 'presigned-put.bin' }), {
      expiresIn: 300,
    })
    presigner.destroy()
    assert.doesNotMatch(url, /x-amz-checksum-crc32/)
    const res = await fetch(url, { method: 'PUT', body })
    assert.equal(res.status, 200, await res.text())
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'presigned-put.bin' }))
    assert.equal(sha256(await readAll(out.Body)), sha256(body))
  })

  test('expired URL: 403 AccessDenied', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'expiring.txt', Body: Buffer.from('soon gone') }))
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: 'expiring.txt' }), {
      expiresIn: 1,
    })
    await sleep(2100)
    const res = await fetch(url)
    const text = await res.text()
    assert.equal(res.status, 403, text)
    assert.match(text, /<Code>AccessDenied<\/Code>/)
  })

  test('X-Amz-Expires over 604800: 400 AuthorizationQueryParametersError', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'long-lived.txt', Body: Buffer.from('x') }))
    const { path } = presignUrl({
      host: `${HOST}:${proxy.httpPort}`,
      path: `/${BUCKET}/long-lived.txt`,
      expires: 604801,
    })
    const res = await httpRequest({ port: proxy.httpPort, path, headers: { host: `${HOST}:${proxy.httpPort}` } })
    assert.equal(res.status, 400, res.body.toString())
    assert.equal(parseS3Error(res.body).code, 'AuthorizationQueryParametersError')
  })

  test('tampered signature: 403 SignatureDoesNotMatch', async () => {
    const { path } = presignUrl({ host: `${HOST}:${proxy.httpPort}`, path: `/${BUCKET}/long-lived.txt` })
    const tampered = path.replace(/X-Amz-Signature=([0-9a-f])/, (_, c) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`)
    assert.notEqual(tampered, path)
    const res = await httpRequest({ port: proxy.httpPort, path: tampered, headers: { host: `${HOST}:${proxy.httpPort}` } })
    assert.equal(res.status, 403, res.body.toString())
    assert.equal(parseS3Error(res.body).code, 'SignatureDoesNotMatch')
  })
})
