// streamingUploads: 'passthrough' forwards aws-chunked uploads in the
// client's streaming mode, framed again and re-signed with the backend's
// key, with the trailer checksum passed on. s3s-fs checks every chunk
// signature and trailer signature with its own keys and stores the trailer
// checksum, so a wrong re-signature fails the upload and a lost trailer shows
// as a missing checksum on HEAD. A recording relay between the proxy and
// s3s-fs shows the framing that went to the backend. A second bucket on the
// same backend keeps the default 'decode' for comparison.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3'

import {
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  checksumBase64,
  chunkedUpload,
  startRecordingRelay,
} from './chunked.mjs'
import {
  HOST,
  assertS3Error,
  bucketConfig,
  assertNotStored,
  getObjectBytes,
  httpRequest,
  makeClient,
  sha256,
  startBackend,
  startProxy,
} from './helpers.mjs'

const PASSTHROUGH = 'passthrough-bucket'
const DECODE = 'decode-bucket'
const KiB = 1024
const MiB = 1024 * KiB
// The chunk size the proxy frames passed-through uploads in.
const FRAMED_CHUNK = 64 * KiB
const ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256']


describe('streamingUploads passthrough', { timeout: 180_000 }, () => {
  let backend
  let relay
  let proxy
  let client
  let host
  let work

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'osp-passthrough-'))
    backend = await startBackend({ buckets: [PASSTHROUGH, DECODE] })
    relay = await startRecordingRelay(backend.port)
    proxy = await startProxy({
      cosMap: {
        [PASSTHROUGH]: bucketConfig(relay.port, { streamingUploads: 'passthrough' }),
        [DECODE]: bucketConfig(relay.port),
      },
    })
    client = makeClient(proxy.httpPort)
    host = `${HOST}:${proxy.httpPort}`
  })

  after(async () => {
    client?.destroy()
    await proxy?.close()
    await relay?.close()
    await backend?.stop()
    if (work) await rm(work, { recursive: true, force: true })
  })

  const send = (request) =>
    httpRequest({ port: proxy.httpPort, method: 'PUT', path: request.path, headers: request.headers, body: request.body })

  const getBytes = (bucket, key) => getObjectBytes(client, bucket, key)

  /** Sends HEAD with checksum mode on, which returns the checksums s3s-fs stored. */
  const head = (bucket, key) => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }))

  /** Returns the one PUT of `key` that the proxy sent to the backend. */
  function backendRequest(bucket, key) {
    const found = relay.requests().filter((request) => request.method === 'PUT' && request.target.startsWith(`/${bucket}/${key}`))
    assert.equal(found.length, 1, `one PUT of ${key} reached the backend`)
    return found[0]
  }

  const cases = [
    [STREAMING_SIGNED, undefined],
    ...ALGORITHMS.flatMap((algorithm) => [
      [STREAMING_SIGNED_TRAILER, algorithm],
      [STREAMING_UNSIGNED_TRAILER, algorithm],
    ]),
  ]
  for (const [mode, algorithm] of cases) {
    for (const size of [0, 3 * FRAMED_CHUNK + 1000]) {
      test(`${mode}${algorithm ? `, ${algorithm}` : ''}, ${size} bytes in 8 KiB client chunks`, async () => {
        const data = randomBytes(size)
        const key = `modes/${mode}-${algorithm ?? 'none'}-${size}.bin`
        const res = await send(chunkedUpload({ host, path: `/${PASSTHROUGH}/${key}`, data, mode, algorithm, chunkSize: 8 * KiB }))
        assert.equal(res.status, 200, res.body.toString())

        const sent = backendRequest(PASSTHROUGH, key)
        assert.equal(sent.headers['x-amz-content-sha256'], mode)
        assert.equal(sent.headers['content-encoding'], undefined, 'aws-chunked stays out of the stored metadata')
        assert.equal(sent.headers['x-amz-decoded-content-length'], String(size))
        assert.match(sent.headers.authorization, /^AWS4-HMAC-SHA256 Credential=backend-access\//)
        const signedChunks = mode === STREAMING_UNSIGNED_TRAILER ? 0 : Math.ceil(size / FRAMED_CHUNK) + 1
        assert.equal(sent.chunkSignatures, signedChunks, 'the body was framed again in 64 KiB chunks')

        assert.equal(sha256(await getBytes(PASSTHROUGH, key)), sha256(data), 'the stored bytes carry no framing')
        const stored = await head(PASSTHROUGH, key)
        assert.ok(!(stored.ContentEncoding ?? '').includes('aws-chunked'), `Content-Encoding ${stored.ContentEncoding}`)
        if (algorithm) {
          const name = `x-amz-checksum-${algorithm.toLowerCase()}`
          assert.equal(sent.trailers[name], checksumBase64(algorithm, data), 'the trailer went to the backend')
          assert.equal(stored[`Checksum${algorithm}`], checksumBase64(algorithm, data), 'the backend stored the checksum')
        }
      })
    }
  }

  test('the decode bucket on the same backend gets plain bytes and no checksum', async () => {
    const data = randomBytes(100 * KiB)
    const key = 'decoded.bin'
    const res = await send(chunkedUpload({ host, path: `/${DECODE}/${key}`, data, mode: STREAMING_UNSIGNED_TRAILER, algorithm: 'CRC32' }))
    assert.equal(res.status, 200, res.body.toString())
    const sent = backendRequest(DECODE, key)
    assert.equal(sent.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD')
    assert.equal(sent.headers['content-length'], String(data.length))
    assert.equal((await head(DECODE, key)).ChecksumCRC32, undefined)
    assert.equal(sha256(await getBytes(DECODE, key)), sha256(data))
  })

  test('@aws-sdk/client-s3 stream body keeps its CRC32 trailer', async () => {
    const data = randomBytes(MiB + 123)
    const file = join(work, 'stream.bin')
    await writeFile(file, data)
    await client.send(new PutObjectCommand({ Bucket: PASSTHROUGH, Key: 'sdk/stream.bin', Body: createReadStream(file), ContentLength: data.length }))
    const sent = backendRequest(PASSTHROUGH, 'sdk/stream.bin')
    assert.equal(sent.headers['x-amz-content-sha256'], STREAMING_UNSIGNED_TRAILER)
    assert.equal(sent.trailers['x-amz-checksum-crc32'], checksumBase64('CRC32', data))
    assert.equal((await head(PASSTHROUGH, 'sdk/stream.bin')).ChecksumCRC32, checksumBase64('CRC32', data))
    assert.equal(sha256(await getBytes(PASSTHROUGH, 'sdk/stream.bin')), sha256(data))
  })

  test('a multipart upload with streaming parts keeps each part checksum', async () => {
    const key = 'multipart/streamed.bin'
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: PASSTHROUGH, Key: key, ChecksumAlgorithm: 'CRC32' }))
    const parts = [
      [STREAMING_SIGNED_TRAILER, randomBytes(5 * MiB)],
      [STREAMING_UNSIGNED_TRAILER, randomBytes(300 * KiB)],
    ]
    const completed = []
    for (const [index, [mode, data]] of parts.entries()) {
      const query = { partNumber: String(index + 1), uploadId: UploadId }
      const res = await send(chunkedUpload({ host, path: `/${PASSTHROUGH}/${key}`, query, data, mode, algorithm: 'CRC32' }))
      assert.equal(res.status, 200, res.body.toString())
      completed.push({ PartNumber: index + 1, ETag: res.headers.etag, ChecksumCRC32: checksumBase64('CRC32', data) })
    }
    const sent = relay.requests().filter((request) => request.target.startsWith(`/${PASSTHROUGH}/${key}?`) && request.method === 'PUT')
    assert.deepEqual(sent.map((part) => part.headers['x-amz-content-sha256']), parts.map(([mode]) => mode))
    assert.deepEqual(
      sent.map((part) => part.trailers['x-amz-checksum-crc32']),
      completed.map((part) => part.ChecksumCRC32),
      'every part went with its checksum trailer',
    )
    await client.send(new CompleteMultipartUploadCommand({ Bucket: PASSTHROUGH, Key: key, UploadId, MultipartUpload: { Parts: completed } }))
    const whole = Buffer.concat(parts.map(([, data]) => data))
    assert.equal(sha256(await getBytes(PASSTHROUGH, key)), sha256(whole))
  })

  test('a streaming upload without x-amz-decoded-content-length gets 411', async () => {
    const data = randomBytes(1000)
    const request = chunkedUpload({ host, path: `/${PASSTHROUGH}/bad/no-length.bin`, data, mode: STREAMING_UNSIGNED_TRAILER, decodedLength: null })
    assertS3Error(await send(request), 411, 'MissingContentLength')
    await assertNotStored(client, backend, PASSTHROUGH, 'bad/no-length.bin')
  })
})
