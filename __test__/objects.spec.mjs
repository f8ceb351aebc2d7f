// The S3 object surface through the proxy, driven by @aws-sdk/client-s3
// against a real s3s-fs backend that checks its own keys.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'

import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'

import {
  captureRequests,
  cosMapFor,
  errorOf,
  makeClient,
  randomBody,
  readAll,
  sha256,
  startBackend,
  startProxy,
  statusOf,
} from './helpers.mjs'

const BUCKET = 'objects-bucket'
const OTHER_BUCKET = 'second-bucket'
const MiB = 1024 * 1024

async function getBytes(client, key, extra = {}) {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ...extra }))
  return { out, bytes: await readAll(out.Body) }
}

describe('objects through the proxy', { timeout: 120_000 }, () => {
  let backend
  let proxy
  let client

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET, OTHER_BUCKET] })
    // A folder the backend lists as a bucket but the proxy does not map.
    await backend.createBucket('unmapped-bucket')
    proxy = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET, OTHER_BUCKET]) })
    client = makeClient(proxy.httpPort)
  })

  after(async () => {
    client?.destroy()
    await proxy?.close()
    await backend?.stop()
  })

  test('PutObject then GetObject returns the same bytes', async () => {
    const body = randomBody(MiB + 17)
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'put-get.bin', Body: body }))
    const { bytes } = await getBytes(client, 'put-get.bin')
    assert.equal(bytes.length, body.length)
    assert.equal(sha256(bytes), sha256(body))
  })

  test('HeadObject reports the content length', async () => {
    const body = randomBody(4321)
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'head.bin', Body: body }))
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'head.bin' }))
    assert.equal(head.ContentLength, 4321)
  })

  test('ListObjectsV2 with Prefix and Delimiter', async () => {
    for (const key of ['list/a.txt', 'list/sub/b.txt', 'list/sub/c.txt', 'list-other.txt']) {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(key) }))
    }
    const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'list/', Delimiter: '/' }))
    assert.deepEqual((out.Contents ?? []).map((o) => o.Key), ['list/a.txt'])
    assert.deepEqual((out.CommonPrefixes ?? []).map((p) => p.Prefix), ['list/sub/'])
  })

  test('DeleteObject then HEAD returns 404', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'delete-me.txt', Body: Buffer.from('x') }))
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'delete-me.txt' }))
    const err = await errorOf(() => client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'delete-me.txt' })))
    assert.equal(statusOf(err), 404, `expected 404, got ${statusOf(err)} ${err.name}`)
  })

  test('DeleteObjects removes the listed keys only', async () => {
    const keys = ['multi/1.txt', 'multi/2.txt', 'multi/3.txt']
    for (const key of keys) {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(key) }))
    }
    const out = await client.send(
      new DeleteObjectsCommand({
        Bucket: BUCKET,
        Delete: { Objects: [{ Key: 'multi/1.txt' }, { Key: 'multi/2.txt' }] },
      }),
    )
    assert.deepEqual((out.Errors ?? []).map((e) => `${e.Key}: ${e.Code}`), [])
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'multi/' }))
    assert.deepEqual((listed.Contents ?? []).map((o) => o.Key), ['multi/3.txt'])
  })

  test('CopyObject copies the bytes to a new key', async () => {
    const body = randomBody(70_000)
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'copy-source.bin', Body: body }))
    await client.send(
      new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy-target.bin', CopySource: `${BUCKET}/copy-source.bin` }),
    )
    const { bytes } = await getBytes(client, 'copy-target.bin')
    assert.equal(sha256(bytes), sha256(body))
  })

  test('range GET returns 206 and exactly those bytes', async () => {
    const body = randomBody(1000)
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'range.bin', Body: body }))
    const { out, bytes } = await getBytes(client, 'range.bin', { Range: 'bytes=10-19' })
    assert.equal(out.$metadata.httpStatusCode, 206)
    assert.deepEqual(bytes, body.subarray(10, 20))
  })

  test('multipart Upload (lib-storage) from a stream', async () => {
    const body = randomBody(12 * MiB)
    const upload = new Upload({
      client,
      params: { Bucket: BUCKET, Key: 'multipart.bin', Body: Readable.from(chunksOf(body, 256 * 1024)) },
      partSize: 5 * MiB,
      queueSize: 2,
    })
    await upload.done()
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'multipart.bin' }))
    assert.equal(head.ContentLength, body.length)
    const { bytes } = await getBytes(client, 'multipart.bin')
    assert.equal(sha256(bytes), sha256(body))
  })

  test('multipart upload with streamed parts (aws-chunked, trailer)', async () => {
    // lib-storage buffers each part and signs its hash; stream bodies make
    // UploadPart use STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    const body = randomBody(11 * MiB)
    const sizes = [5 * MiB, 5 * MiB, MiB]
    const client2 = makeClient(proxy.httpPort)
    const seen = captureRequests(client2)
    try {
      const { UploadId } = await client2.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'streamed-parts.bin' }))
      const parts = []
      let offset = 0
      for (const [index, size] of sizes.entries()) {
        const part = body.subarray(offset, offset + size)
        offset += size
        const out = await client2.send(
          new UploadPartCommand({
            Bucket: BUCKET,
            Key: 'streamed-parts.bin',
            UploadId,
            PartNumber: index + 1,
            Body: Readable.from(chunksOf(part, 128 * 1024)),
            ContentLength: part.length,
          }),
        )
        assert.equal(seen.at(-1).headers['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
        parts.push({ PartNumber: index + 1, ETag: out.ETag })
      }
      await client2.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'streamed-parts.bin',
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      )
    } finally {
      client2.destroy()
    }
    const { bytes } = await getBytes(client, 'streamed-parts.bin')
    assert.equal(bytes.length, body.length)
    assert.equal(sha256(bytes), sha256(body))
  })

  test('zero-byte object: put, head, get', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'empty.txt', Body: Buffer.alloc(0) }))
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'empty.txt' }))
    assert.equal(head.ContentLength, 0)
    const { bytes } = await getBytes(client, 'empty.txt')
    assert.equal(bytes.length, 0)
  })

  test('PutObject with a stream body (aws-chunked, trailer)', async () => {
    const body = randomBody(300_000)
    const client2 = makeClient(proxy.httpPort)
    const seen = captureRequests(client2)
    try {
      await client2.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: 'streamed.bin',
          Body: Readable.from(chunksOf(body, 64 * 1024)),
          ContentLength: body.length,
        }),
      )
      const sent = seen.at(-1).headers
      assert.equal(sent['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
      assert.equal(sent['content-encoding'], 'aws-chunked')
    } finally {
      client2.destroy()
    }
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'streamed.bin' }))
    assert.equal(head.ContentLength, body.length)
    const { bytes } = await getBytes(client, 'streamed.bin')
    assert.equal(sha256(bytes), sha256(body))
  })

  test('ListBuckets lists exactly the buckets of cosMap', async () => {
    const out = await client.send(new ListBucketsCommand({}))
    const names = (out.Buckets ?? []).map((b) => b.Name).sort()
    assert.deepEqual(names, [BUCKET, OTHER_BUCKET].sort())
  })
})

function* chunksOf(buffer, size) {
  for (let offset = 0; offset < buffer.length; offset += size) yield buffer.subarray(offset, offset + size)
}
