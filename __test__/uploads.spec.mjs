// Every upload format that real clients send, through the proxy to s3s-fs
// (which checks its own SigV4 keys): each client at its default settings
// uploads and reads back its files, and the SHA-256 of the bytes must match.
// A recording relay in front of the plain-HTTP listener shows which format
// each client chose, and for the aws CLI's checksum uploads a second one
// between two TLS hops shows the same over https. Hand-built requests then
// check that a body failing any verification gets the S3 error and is never
// stored.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, pipeline } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'

import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import * as Minio from 'minio'

import { ensureApt, ensureVenv, root, toolsDir } from '../scripts/tools.mjs'
import {
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  checksumBase64,
  chunkedUpload,
  startRecordingRelay,
} from './chunked.mjs'
import {
  CLIENT_AK,
  CLIENT_SK,
  HOST,
  REGION,
  assertNotStored as assertNotStoredIn,
  assertS3Error,
  bucketConfig,
  captureRequests,
  cosMapFor,
  getObjectBytes,
  makeClient,
  parseS3Error,
  readAll,
  sha256,
  signRequest,
  startBackend,
  startProxy,
} from './helpers.mjs'
import { makeCertificates } from './tls.mjs'

const BUCKET = 'uploads-bucket'
const KiB = 1024
const MiB = 1024 * KiB
const HEX_HASH = /^[0-9a-f]{64}$/
const PYTHON_CLIENTS = join(root, '__test__', 'python-clients.py')
// botocore computes CRC32C and CRC64NVME only with the awscrt package
// (awscli[crt]). awscrt also replaces botocore's SigV4 signers with its own
// (AUTH_TYPE_MAPS in botocore/auth.py, as vendored in awscli 1.46.3). So the
// aws CLI with awscrt gets a virtualenv of its own, used only for these two,
// and the other Python clients keep botocore's signers.
const CRT_ALGORITHMS = new Set(['CRC32C', 'CRC64NVME'])
const CRT_VENV = join(toolsDir, 'venv-crt')
// The aws CLI's default multipart_chunksize.
const AWS_CLI_PART_SIZE = 8 * MiB

/** Computes the hex SHA-256 of a file, reading it as a stream. */
async function sha256File(path) {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk)
  return hash.digest('hex')
}

/**
 * Runs a command without blocking the event loop (the recording relay runs
 * in this process) and resolves with { stdout, stderr }. Rejects with the
 * output's tail when the command fails.
 */
function runTool(command, args, { env, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) return resolve({ stdout, stderr })
      const name = [command, ...args].join(' ')
      reject(new Error(`${name} exited with ${code ?? signal}\n${stdout.slice(-2000)}\n${stderr.slice(-4000)}`))
    })
  })
}

/**
 * Starts a listener on 127.0.0.1 that pipes each connection to
 * 127.0.0.1:targetPort. With `serverTls` ({ cert, key }) it accepts TLS, and
 * with `clientTls` ({ ca }) it connects to the target with TLS. Resolves
 * with { port, close }.
 */
function startPipe({ targetPort, serverTls, clientTls }) {
  const sockets = new Set()
  const onConnection = (client) => {
    const upstream = clientTls
      ? tls.connect({ host: HOST, port: targetPort, ...clientTls })
      : net.connect({ host: HOST, port: targetPort })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    }
    // Bytes flow client -> upstream -> client. An error on either side
    // destroys both, and so does the end of the exchange.
    pipeline(client, upstream, client, () => {
      client.destroy()
      upstream.destroy()
    })
  }
  const server = serverTls ? tls.createServer(serverTls, onConnection) : net.createServer(onConnection)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () => {
      resolve({
        port: server.address().port,
        close: () =>
          new Promise((done) => {
            server.close(() => done())
            for (const socket of sockets) socket.destroy()
          }),
      })
    })
  })
}

/** The PUT requests that carried object data (PutObject and UploadPart). */
const dataPuts = (requests) => requests.filter((request) => request.method === 'PUT' && request.target.split('?')[0].split('/').length > 2)

/** Sends one request and resolves with its response, also when the response arrives before the body is sent. */
function exchange({ port, method = 'PUT', path, headers, body, pieces, timeoutMs = 15_000 }) {
  return new Promise((resolve, reject) => {
    let answered = false
    const req = http.request({ host: HOST, port, method, path, headers, agent: false })
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path} got no response in ${timeoutMs} ms`)), timeoutMs)
    req.on('response', async (res) => {
      answered = true
      const data = await readAll(res)
      clearTimeout(timer)
      resolve({ status: res.statusCode, headers: res.headers, body: data })
    })
    req.on('error', (err) => {
      if (answered) return
      clearTimeout(timer)
      reject(err)
    })
    if (pieces) {
      for (const piece of pieces) req.write(piece)
      req.end()
    } else {
      req.end(body)
    }
  })
}

/** Asserts an S3 XML error with the given status and, when given, code. */

describe('uploads from real clients at their default settings', { timeout: 300_000 }, () => {
  let backend
  let certs
  let proxy
  let relay
  let tlsRelay
  let tlsPipes = []
  let work
  let files
  let venvBin
  let crtVenvBin
  let env

  /** The endpoint URL through the recording relay (plain HTTP). */
  const relayUrl = () => `http://${HOST}:${relay.port}`
  const httpsUrl = () => `https://${HOST}:${proxy.httpsPort}`
  /** The endpoint URL through the TLS recording relay to the HTTPS listener. */
  const tlsRelayUrl = () => `https://${HOST}:${tlsPipes[0].port}`

  /** Asserts that the backend stored exactly the bytes of `file` under `key`. */
  async function assertStored(key, file) {
    assert.equal(await sha256File(backend.objectPath(BUCKET, key)), await sha256File(file), `stored bytes of ${key}`)
  }

  before(async () => {
    venvBin = ensureVenv(['boto3', 'awscli', 'pyarrow'])
    crtVenvBin = ensureVenv(['awscli[crt]', 'awscrt'], CRT_VENV)
    ensureApt({ rclone: 'rclone', s3cmd: 's3cmd' })
    backend = await startBackend({ buckets: [BUCKET] })
    certs = await makeCertificates()
    const serverTls = { cert: await readFile(certs.certPath('server')), key: await readFile(certs.keyPath('server')) }
    proxy = await startProxy({
      httpsPort: 0,
      tls: serverTls,
      cosMap: cosMapFor(backend.port, [BUCKET]),
    })
    relay = await startRecordingRelay(proxy.httpPort)
    // The recording relay reads plain HTTP only. For https, one pipe ends
    // the client's TLS with the proxy's certificate, the relay reads the
    // plain bytes, and a second pipe sends them on over TLS to the proxy.
    const toHttps = await startPipe({ targetPort: proxy.httpsPort, clientTls: { ca: await readFile(certs.caPath) } })
    tlsRelay = await startRecordingRelay(toHttps.port)
    const fromClient = await startPipe({ targetPort: tlsRelay.port, serverTls })
    tlsPipes = [fromClient, toHttps]
    work = await mkdtemp(join(tmpdir(), 'osp-uploads-'))
    // Three sizes per client: empty, one small PUT, and one large enough
    // for multipart in the clients that split at 8 MiB.
    files = { empty: join(work, 'in', 'empty.bin'), small: join(work, 'in', 'small.bin'), large: join(work, 'in', 'large.bin') }
    await mkdir(join(work, 'in'))
    await writeFile(files.empty, Buffer.alloc(0))
    await writeFile(files.small, randomBytes(KiB))
    await writeFile(files.large, randomBytes(20 * MiB))
    await mkdir(join(work, 'mid'))
    await writeFile(join(work, 'mid', 'small.bin'), randomBytes(KiB))
    await writeFile(join(work, 'mid', 'nine.bin'), randomBytes(9 * MiB))
    // A clean environment: no user configuration, no instance metadata
    // lookups, the client keys in the standard variables.
    env = {
      PATH: `${venvBin}:${process.env.PATH}`,
      HOME: work,
      LANG: 'C.UTF-8',
      AWS_ACCESS_KEY_ID: CLIENT_AK,
      AWS_SECRET_ACCESS_KEY: CLIENT_SK,
      AWS_DEFAULT_REGION: REGION,
      AWS_CONFIG_FILE: join(work, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    }
  })

  after(async () => {
    await relay?.close()
    for (const pipe of tlsPipes) await pipe.close()
    await tlsRelay?.close()
    await proxy?.close()
    await backend?.stop()
    await certs?.remove()
    if (work) await rm(work, { recursive: true, force: true })
  })

  /** Compares every file of `expectedDir` with the file of the same name in `actualDir`. */
  async function assertSameFiles(expectedDir, actualDir) {
    const names = (await readdir(expectedDir)).sort()
    assert.deepEqual((await readdir(actualDir)).sort(), names)
    for (const name of names) {
      assert.equal(await sha256File(join(actualDir, name)), await sha256File(join(expectedDir, name)), name)
    }
  }

  // -------------------------------------------------------------------------
  // aws CLI v1

  const aws = (args) => runTool(join(venvBin, 'aws'), args, { env })

  test('aws CLI over http', async () => {
    // 0 B, 1 KiB and 20 MiB (multipart): a hex payload hash and x-amz-checksum-crc32.
    relay.reset()
    await aws(['s3', 'cp', join(work, 'in'), `s3://${BUCKET}/awscli/`, '--recursive', '--endpoint-url', relayUrl()])
    const puts = dataPuts(relay.requests())
    assert.equal(puts.length, 5, 'two PutObject and three UploadPart')
    for (const put of puts) {
      assert.match(put.headers['x-amz-content-sha256'], HEX_HASH, put.target)
      assert.ok(put.headers['x-amz-checksum-crc32'], `${put.target} carries x-amz-checksum-crc32`)
    }
    for (const [name, file] of Object.entries(files)) await assertStored(`awscli/${name}.bin`, file)
    const down = join(work, 'awscli-down')
    await aws(['s3', 'cp', `s3://${BUCKET}/awscli/`, down, '--recursive', '--endpoint-url', relayUrl()])
    await assertSameFiles(join(work, 'in'), down)
  })

  test('aws CLI over https', async () => {
    // 0 B, 1 KiB and 20 MiB (multipart), each as STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    const { stderr } = await aws([
      's3', 'cp', join(work, 'in'), `s3://${BUCKET}/awscli-tls/`, '--recursive',
      '--endpoint-url', httpsUrl(), '--ca-bundle', certs.caPath, '--debug',
    ])
    // botocore logs each request's headers at debug level.
    const sent = stderr
      .split('\n')
      .filter((line) => line.includes('Sending http request') && line.includes('method=PUT'))
      .map((line) => line.match(/'X-Amz-Content-SHA256': b'([^']+)'/)?.[1])
    assert.equal(sent.length, 5, 'two PutObject and three UploadPart')
    assert.deepEqual(new Set(sent), new Set(['STREAMING-UNSIGNED-PAYLOAD-TRAILER']))
    for (const [name, file] of Object.entries(files)) await assertStored(`awscli-tls/${name}.bin`, file)
    const down = join(work, 'awscli-tls-down')
    await aws(['s3', 'cp', `s3://${BUCKET}/awscli-tls/`, down, '--recursive', '--endpoint-url', httpsUrl(), '--ca-bundle', certs.caPath])
    await assertSameFiles(join(work, 'in'), down)
  })

  const awsCrt = (args) => runTool(join(crtVenvBin, 'aws'), args, { env })

  /**
   * Asserts that `checksumOf(put)` of each PutObject and UploadPart in `puts`
   * is the `algorithm` checksum of the bytes it uploaded from `source`.
   */
  async function assertChecksums(puts, source, algorithm, checksumOf) {
    for (const put of puts) {
      const [path, query = ''] = put.target.split('?')
      const data = await readFile(join(source, path.split('/').at(-1)))
      const partNumber = Number(new URLSearchParams(query).get('partNumber') ?? 0)
      const bytes = partNumber > 0 ? data.subarray((partNumber - 1) * AWS_CLI_PART_SIZE, partNumber * AWS_CLI_PART_SIZE) : data
      assert.equal(checksumOf(put), checksumBase64(algorithm, bytes), `${algorithm} of ${put.target}`)
    }
  }

  for (const algorithm of ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME']) {
    test(`aws CLI --checksum-algorithm ${algorithm}`, async () => {
      // 1 KiB and 9 MiB (multipart), over http (checksum header) and https
      // (trailer). The proxy rejects a wrong checksum header or trailer with
      // BadDigest (see the hand-built uploads), so each stored object passed
      // its check.
      const run = CRT_ALGORITHMS.has(algorithm) ? awsCrt : aws
      const header = `x-amz-checksum-${algorithm.toLowerCase()}`
      const source = join(work, 'mid')
      relay.reset()
      await run(['s3', 'cp', source, `s3://${BUCKET}/sum-${algorithm}/plain/`, '--recursive', '--checksum-algorithm', algorithm, '--endpoint-url', relayUrl()])
      const puts = dataPuts(relay.requests())
      assert.equal(puts.length, 3, 'one PutObject and two UploadPart')
      for (const put of puts) assert.ok(put.headers[header], `${put.target} carries ${header}`)
      await assertChecksums(puts, source, algorithm, (put) => put.headers[header])

      tlsRelay.reset()
      await run([
        's3', 'cp', source, `s3://${BUCKET}/sum-${algorithm}/tls/`, '--recursive', '--checksum-algorithm', algorithm,
        '--endpoint-url', tlsRelayUrl(), '--ca-bundle', certs.caPath,
      ])
      const streamed = dataPuts(tlsRelay.requests())
      assert.equal(streamed.length, 3, 'one PutObject and two UploadPart')
      for (const put of streamed) {
        assert.equal(put.headers['x-amz-content-sha256'], STREAMING_UNSIGNED_TRAILER, put.target)
        assert.equal(put.headers['x-amz-trailer'], header, put.target)
        assert.ok(put.trailers[header], `the ${header} trailer of ${put.target} went on the wire`)
      }
      await assertChecksums(streamed, source, algorithm, (put) => put.trailers[header])

      const down = join(work, `sum-${algorithm}-down`)
      await run(['s3', 'cp', `s3://${BUCKET}/sum-${algorithm}/`, down, '--recursive', '--endpoint-url', relayUrl()])
      await assertSameFiles(source, join(down, 'plain'))
      await assertSameFiles(source, join(down, 'tls'))
    })
  }

  // -------------------------------------------------------------------------
  // boto3 and pyarrow

  async function python(spec) {
    const { stdout } = await runTool(
      join(venvBin, 'python'),
      [PYTHON_CLIENTS, JSON.stringify({ bucket: BUCKET, access_key: CLIENT_AK, secret_key: CLIENT_SK, region: REGION, ca: null, ...spec })],
      { env },
    )
    const { results } = JSON.parse(stdout)
    for (const result of results) {
      assert.equal(result.sha256, result.expected_sha256, `bytes read back of ${result.key}`)
    }
    return results
  }

  const boto3Uploads = (prefix) => [
    { op: 'put_object', file: files.empty, key: `${prefix}/empty.bin` },
    { op: 'put_object', file: files.small, key: `${prefix}/small.bin` },
    { op: 'upload_file', file: files.large, key: `${prefix}/large.bin` },
  ]

  /** The requests of boto3 results that carried data. */
  const boto3DataRequests = (results) =>
    results.flatMap((result) => result.sent).filter((sent) => sent.operation === 'PutObject' || sent.operation === 'UploadPart')

  test('boto3 over http', async () => {
    // put_object of 0 B and 1 KiB, upload_file of 20 MiB (multipart): a hex payload hash.
    const results = await python({ client: 'boto3', endpoint: relayUrl(), uploads: boto3Uploads('boto3') })
    const sent = boto3DataRequests(results)
    assert.equal(sent.length, 5, 'two PutObject and three UploadPart')
    for (const request of sent) {
      assert.match(request['x-amz-content-sha256'], HEX_HASH)
      assert.ok(request['x-amz-checksum-crc32'], `${request.operation} carries x-amz-checksum-crc32`)
    }
    for (const name of ['empty', 'small', 'large']) await assertStored(`boto3/${name}.bin`, files[name])
  })

  test('boto3 over https', async () => {
    // The same uploads, each as STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    const results = await python({ client: 'boto3', endpoint: httpsUrl(), ca: certs.caPath, uploads: boto3Uploads('boto3-tls') })
    const sent = boto3DataRequests(results)
    assert.equal(sent.length, 5, 'two PutObject and three UploadPart')
    for (const request of sent) {
      assert.equal(request['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
      assert.equal(request['x-amz-trailer'], 'x-amz-checksum-crc32')
    }
    for (const name of ['empty', 'small', 'large']) await assertStored(`boto3-tls/${name}.bin`, files[name])
  })

  test('pyarrow S3FileSystem', async () => {
    // Every file as a multipart upload, parts with CRC64NVME trailers and Expect: 100-continue.
    relay.reset()
    const uploads = ['empty', 'small', 'large'].map((name) => ({ file: files[name], key: `pyarrow/${name}.bin` }))
    await python({ client: 'pyarrow', endpoint: `${HOST}:${relay.port}`, uploads })
    const parts = dataPuts(relay.requests())
    assert.ok(parts.every((part) => /[?&]partNumber=/.test(part.target)), 'every upload is a multipart upload')
    const streamed = parts.filter((part) => part.headers['x-amz-content-sha256'] === STREAMING_UNSIGNED_TRAILER)
    // The empty file goes as one empty part with a hash. Every other part streams.
    assert.equal(streamed.length, parts.length - 1, JSON.stringify(parts.map((part) => part.headers)))
    for (const part of streamed) {
      assert.equal(part.headers['x-amz-trailer'], 'x-amz-checksum-crc64nvme')
      assert.equal(part.headers.expect, '100-continue')
      assert.ok(part.trailers['x-amz-checksum-crc64nvme'], 'the CRC64NVME trailer went on the wire')
    }
    for (const name of ['empty', 'small', 'large']) await assertStored(`pyarrow/${name}.bin`, files[name])
  })

  // -------------------------------------------------------------------------
  // JavaScript: @aws-sdk/client-s3, lib-storage, minio-js

  test('@aws-sdk/client-s3 and lib-storage', async () => {
    // A Buffer body goes with a hash, a stream body with a trailer.
    const client = makeClient(relay.port)
    const seen = captureRequests(client)
    const small = await readFile(files.small)
    const large = await readFile(files.large)
    try {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/buffer.bin', Body: small }))
      assert.match(seen.at(-1).headers['x-amz-content-sha256'], HEX_HASH)
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/empty.bin', Body: Buffer.alloc(0) }))
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin', Body: createReadStream(files.large), ContentLength: large.length }),
      )
      assert.equal(seen.at(-1).headers['x-amz-content-sha256'], STREAMING_UNSIGNED_TRAILER)
      assert.equal(seen.at(-1).headers['x-amz-trailer'], 'x-amz-checksum-crc32')
      const upload = new Upload({
        client,
        params: { Bucket: BUCKET, Key: 'sdk/upload.bin', Body: Readable.from(createReadStream(files.large)) },
        partSize: 8 * MiB,
        queueSize: 2,
      })
      await upload.done()
      for (const [key, body] of [['buffer', small], ['empty', Buffer.alloc(0)], ['stream', large], ['upload', large]]) {
        const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `sdk/${key}.bin` }))
        assert.equal(sha256(await readAll(out.Body)), sha256(body), key)
      }
    } finally {
      client.destroy()
    }
  })

  test('minio-js over http', async () => {
    // A Buffer, a 20 MiB stream and an empty file. minio-js 8 buffers each
    // object and signs its SHA-256 over http (its client sets enableSHA256
    // when useSSL is false), so it sends no STREAMING-* payload.
    const client = new Minio.Client({
      endPoint: HOST,
      port: relay.port,
      useSSL: false,
      accessKey: CLIENT_AK,
      secretKey: CLIENT_SK,
      region: REGION,
      pathStyle: true,
    })
    relay.reset()
    const small = await readFile(files.small)
    await client.putObject(BUCKET, 'minio/small.bin', small)
    await client.putObject(BUCKET, 'minio/large.bin', createReadStream(files.large), 20 * MiB)
    await client.fPutObject(BUCKET, 'minio/empty.bin', files.empty)
    const puts = dataPuts(relay.requests())
    assert.equal(puts.length, 3)
    for (const put of puts) {
      assert.match(put.headers['x-amz-content-sha256'], HEX_HASH, put.target)
      assert.equal(put.chunkSignatures, 0, put.target)
    }
    for (const name of ['empty', 'small', 'large']) {
      const bytes = await readAll(await client.getObject(BUCKET, `minio/${name}.bin`))
      assert.equal(sha256(bytes), await sha256File(files[name]), name)
    }
  })

  // -------------------------------------------------------------------------
  // rclone and s3cmd from Debian

  async function rclone(args) {
    const config = join(work, 'rclone.conf')
    await writeFile(config, `[osp]\ntype = s3\naccess_key_id = ${CLIENT_AK}\nsecret_access_key = ${CLIENT_SK}\n`)
    const flags = ['--config', config, '--s3-provider', 'Other', '--s3-endpoint', relayUrl(), '--s3-region', REGION]
    return runTool('rclone', [...flags, ...args], { env })
  }

  test('rclone copyto and copy', async () => {
    // 0 B, 1 KiB and 20 MiB in single PUTs (UNSIGNED-PAYLOAD), then 20 MiB in 5 MiB parts.
    relay.reset()
    for (const name of ['empty', 'small', 'large']) await rclone(['copyto', files[name], `osp:${BUCKET}/rclone/${name}.bin`])
    // Not a default: a lower cutoff makes rclone use its multipart upload.
    await rclone(['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', 'copyto', files.large, `osp:${BUCKET}/rclone/parts.bin`])
    const puts = dataPuts(relay.requests())
    const single = puts.filter((put) => !put.target.includes('partNumber='))
    const parts = puts.filter((put) => put.target.includes('partNumber='))
    assert.deepEqual(single.map((put) => put.headers['x-amz-content-sha256']), Array(3).fill('UNSIGNED-PAYLOAD'))
    assert.equal(parts.length, 4)
    for (const part of parts) assert.match(part.headers['x-amz-content-sha256'], HEX_HASH)
    const down = join(work, 'rclone-down')
    await rclone(['copy', `osp:${BUCKET}/rclone/`, down])
    for (const name of ['empty', 'small', 'large']) {
      assert.equal(await sha256File(join(down, `${name}.bin`)), await sha256File(files[name]), name)
    }
    assert.equal(await sha256File(join(down, 'parts.bin')), await sha256File(files.large), 'parts.bin')
  })

  test('s3cmd put and get', async () => {
    // 0 B, 1 KiB and 20 MiB (multipart at 15 MiB), each with a hex payload hash.
    const config = join(work, 's3cfg')
    await writeFile(
      config,
      [
        '[default]',
        `access_key = ${CLIENT_AK}`,
        `secret_key = ${CLIENT_SK}`,
        `host_base = ${HOST}:${relay.port}`,
        `host_bucket = ${HOST}:${relay.port}`,
        'use_https = False',
        `bucket_location = ${REGION}`,
        '',
      ].join('\n'),
    )
    const s3cmd = (args) => runTool('s3cmd', ['-c', config, ...args], { env })
    relay.reset()
    for (const name of ['empty', 'small', 'large']) await s3cmd(['put', files[name], `s3://${BUCKET}/s3cmd/${name}.bin`])
    const puts = dataPuts(relay.requests())
    assert.equal(puts.length, 4, 'two PutObject and two UploadPart')
    for (const put of puts) assert.match(put.headers['x-amz-content-sha256'], HEX_HASH, put.target)
    const down = join(work, 's3cmd-down')
    await mkdir(down)
    for (const name of ['empty', 'small', 'large']) {
      await s3cmd(['get', `s3://${BUCKET}/s3cmd/${name}.bin`, join(down, `${name}.bin`)])
      assert.equal(await sha256File(join(down, `${name}.bin`)), await sha256File(files[name]), name)
    }
  })
})

// Every invalid upload below must get its S3 error, and HEAD of its key must
// then return 404: the backend stored nothing. The cases run once for each
// way a streaming upload is forwarded: decoded, and framed again in the
// client's mode.
for (const streamingUploads of ['decode', 'passthrough']) {
  describe(`hand-built uploads, streamingUploads: ${streamingUploads}`, { timeout: 120_000 }, () => {
    let backend
    let proxy
    let client
    let host

    before(async () => {
      backend = await startBackend({ buckets: [BUCKET] })
      proxy = await startProxy({ cosMap: { [BUCKET]: bucketConfig(backend.port, { streamingUploads }) } })
      client = makeClient(proxy.httpPort)
      host = `${HOST}:${proxy.httpPort}`
    })

    after(async () => {
      client?.destroy()
      await proxy?.close()
      await backend?.stop()
    })

    /** Returns random bytes for three 64 KiB chunks and a shorter fourth one. */
    const payload = () => randomBytes(3 * 64 * KiB + 1000)

    const getBytes = (key) => getObjectBytes(client, BUCKET, key)
    const assertNotStored = (key) => assertNotStoredIn(client, backend, BUCKET, key)

    const send = (request, extra = {}) => exchange({ port: proxy.httpPort, path: request.path, headers: request.headers, body: request.body, ...extra })

    // Valid uploads in each aws-chunked mode with each trailer checksum.
    const validCases = [
      [STREAMING_SIGNED, undefined],
      ...['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'].flatMap((algorithm) => [
        [STREAMING_SIGNED_TRAILER, algorithm],
        [STREAMING_UNSIGNED_TRAILER, algorithm],
      ]),
    ]
    for (const [mode, algorithm] of validCases) {
      test(`valid ${mode}${algorithm ? `, ${algorithm}` : ''}`, async () => {
        const data = payload()
        const key = `valid/${mode}-${algorithm ?? 'none'}.bin`
        const res = await send(chunkedUpload({ host, path: `/${BUCKET}/${key}`, data, mode, algorithm }))
        assert.equal(res.status, 200, res.body.toString())
        assert.equal(sha256(await getBytes(key)), sha256(data))
      })
    }

    test('flipped byte in chunk 2', async () => {
      const key = 'bad/flipped-chunk.bin'
      const request = chunkedUpload({
        host,
        path: `/${BUCKET}/${key}`,
        data: payload(),
        mode: STREAMING_SIGNED,
        tamper: (chunks) => {
          chunks[1][100] ^= 0x01
          return chunks
        },
      })
      assertS3Error(await send(request), 403, 'SignatureDoesNotMatch')
      await assertNotStored(key)
    })

    test('wrong CRC32 trailer', async () => {
      const key = 'bad/wrong-crc32.bin'
      const request = chunkedUpload({
        host,
        path: `/${BUCKET}/${key}`,
        data: payload(),
        mode: STREAMING_UNSIGNED_TRAILER,
        algorithm: 'CRC32',
        trailerValue: checksumBase64('CRC32', Buffer.from('other bytes')),
      })
      assertS3Error(await send(request), 400, 'BadDigest')
      await assertNotStored(key)
    })

    test('wrong SHA256 in a signed trailer', async () => {
      // The trailer signature is correct: only the checksum is wrong.
      const key = 'bad/wrong-sha256.bin'
      const request = chunkedUpload({
        host,
        path: `/${BUCKET}/${key}`,
        data: payload(),
        mode: STREAMING_SIGNED_TRAILER,
        algorithm: 'SHA256',
        trailerValue: checksumBase64('SHA256', Buffer.from('other bytes')),
      })
      assertS3Error(await send(request), 400, 'BadDigest')
      await assertNotStored(key)
    })

    test('declared trailer never sent', async () => {
      const key = 'bad/missing-trailer.bin'
      const request = chunkedUpload({ host, path: `/${BUCKET}/${key}`, data: payload(), mode: STREAMING_UNSIGNED_TRAILER, omitTrailer: true })
      assertS3Error(await send(request), 400)
      await assertNotStored(key)
    })

    test('decoded body too short', async () => {
      const key = 'bad/decoded-short.bin'
      const data = payload()
      const request = chunkedUpload({ host, path: `/${BUCKET}/${key}`, data, mode: STREAMING_SIGNED, decodedLength: data.length + 1 })
      assertS3Error(await send(request), 400, 'IncompleteBody')
      await assertNotStored(key)
    })

    test('decoded body too long', async () => {
      const key = 'bad/decoded-long.bin'
      const data = payload()
      const request = chunkedUpload({ host, path: `/${BUCKET}/${key}`, data, mode: STREAMING_UNSIGNED_TRAILER, decodedLength: data.length - 1 })
      assertS3Error(await send(request), 400, 'IncompleteBody')
      await assertNotStored(key)
    })

    test('hex payload hash mismatch', async () => {
      const key = 'bad/hash-mismatch.bin'
      const data = payload()
      const signed = signRequest({
        method: 'PUT',
        host,
        path: `/${BUCKET}/${key}`,
        payloadHash: sha256(Buffer.from('other bytes')),
        headers: { 'content-length': String(data.length) },
      })
      assertS3Error(await exchange({ port: proxy.httpPort, path: signed.path, headers: signed.headers, body: data }), 400, 'XAmzContentSHA256Mismatch')
      await assertNotStored(key)
    })

    test('8 MiB, last data chunk forged', async () => {
      // The backend has received all but the held-back piece when the forgery
      // shows. The object already stored under the key must survive.
      const key = 'bad/forged-last-chunk.bin'
      const old = randomBytes(1000)
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: old }))
      const request = chunkedUpload({
        host,
        path: `/${BUCKET}/${key}`,
        data: randomBytes(8 * MiB),
        mode: STREAMING_SIGNED,
        tamper: (chunks) => {
          chunks.at(-2)[0] ^= 0x80
          return chunks
        },
      })
      assertS3Error(await send(request), 403, 'SignatureDoesNotMatch')
      assert.equal(sha256(await getBytes(key)), sha256(old))
    })

    test('8 MiB, wrong CRC32C trailer', async () => {
      const key = 'bad/large-wrong-crc32c.bin'
      const request = chunkedUpload({
        host,
        path: `/${BUCKET}/${key}`,
        data: randomBytes(8 * MiB),
        mode: STREAMING_UNSIGNED_TRAILER,
        algorithm: 'CRC32C',
        trailerValue: checksumBase64('CRC32C', Buffer.from('other bytes')),
      })
      assertS3Error(await send(request), 400, 'BadDigest')
      await assertNotStored(key)
    })

    test('8 MiB, hex payload hash mismatch', async () => {
      const key = 'bad/large-hash-mismatch.bin'
      const data = randomBytes(8 * MiB)
      const signed = signRequest({
        method: 'PUT',
        host,
        path: `/${BUCKET}/${key}`,
        payloadHash: sha256(data.subarray(1)),
        headers: { 'content-length': String(data.length) },
      })
      assertS3Error(await exchange({ port: proxy.httpPort, path: signed.path, headers: signed.headers, body: data }), 400, 'XAmzContentSHA256Mismatch')
      await assertNotStored(key)
    })

    for (const [algorithm, payloadHash] of [
      ['CRC32', (data) => sha256(data)],
      ['CRC32C', () => 'UNSIGNED-PAYLOAD'],
      ['CRC64NVME', () => 'UNSIGNED-PAYLOAD'],
      ['SHA1', (data) => sha256(data)],
      ['SHA256', () => 'UNSIGNED-PAYLOAD'],
    ]) {
      test(`wrong x-amz-checksum-${algorithm.toLowerCase()} header`, async () => {
        const key = `bad/checksum-header-${algorithm}.bin`
        const data = payload()
        const signed = signRequest({
          method: 'PUT',
          host,
          path: `/${BUCKET}/${key}`,
          payloadHash: payloadHash(data),
          headers: {
            'content-length': String(data.length),
            [`x-amz-checksum-${algorithm.toLowerCase()}`]: checksumBase64(algorithm, data.subarray(1)),
          },
        })
        assertS3Error(await exchange({ port: proxy.httpPort, path: signed.path, headers: signed.headers, body: data }), 400, 'BadDigest')
        await assertNotStored(key)
      })
    }

    for (const [label, build] of [
      ['hex payload hash', (key, data) => ({ ...signRequest({ method: 'PUT', host, path: `/${BUCKET}/${key}`, body: data, headers: { 'content-length': String(data.length) } }), body: data })],
      ['UNSIGNED-PAYLOAD', (key, data) => ({ ...signRequest({ method: 'PUT', host, path: `/${BUCKET}/${key}`, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(data.length) } }), body: data })],
      ['aws-chunked', (key, data) => chunkedUpload({ host, path: `/${BUCKET}/${key}`, data, mode: STREAMING_UNSIGNED_TRAILER })],
    ]) {
      test(`client disconnects mid-body, ${label}`, async () => {
        const key = `cut/${label.replace(/\W+/g, '-')}.bin`
        const request = build(key, randomBytes(2 * MiB))
        await new Promise((resolve) => {
          const socket = net.connect({ host: HOST, port: proxy.httpPort }, () => {
            const head = [`PUT ${request.path} HTTP/1.1`, ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`), '', ''].join('\r\n')
            socket.write(head)
            socket.write(request.body.subarray(0, request.body.length - 1000), () => {
              socket.destroy()
              resolve()
            })
          })
          socket.on('error', resolve)
        })
        // The proxy notices the closed connection and aborts the backend request.
        await sleep(300)
        await assertNotStored(key)
      })
    }

    test('aws-chunked in small TCP segments', async () => {
      // Segments of 1 to 700 bytes split chunk headers, chunk signatures and
      // the trailer between reads at the proxy.
      const key = 'framing/small-segments.bin'
      const data = randomBytes(40 * KiB)
      const request = chunkedUpload({ host, path: `/${BUCKET}/${key}`, data, mode: STREAMING_SIGNED_TRAILER, algorithm: 'CRC64NVME', chunkSize: 8 * KiB })
      const head = [`PUT ${request.path} HTTP/1.1`, ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`), 'connection: close', '', ''].join('\r\n')
      const response = await new Promise((resolve, reject) => {
        const chunks = []
        const socket = net.connect({ host: HOST, port: proxy.httpPort }, async () => {
          socket.setNoDelay(true)
          socket.write(head)
          for (let offset = 0, step = 1; offset < request.body.length; offset += step, step = (step * 7 + 13) % 700 + 1) {
            socket.write(request.body.subarray(offset, offset + step))
            await sleep(0)
          }
        })
        socket.on('data', (chunk) => chunks.push(chunk))
        socket.on('error', reject)
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')))
      })
      assert.match(response, /^HTTP\/1\.1 200 /, response)
      assert.equal(sha256(await getBytes(key)), sha256(data))
    })

    test('Expect: 100-continue, aws-chunked', async () => {
      const key = 'expect/streamed.bin'
      const data = payload()
      const request = chunkedUpload({
        host,
        path: `/${BUCKET}/${key}`,
        data,
        mode: STREAMING_UNSIGNED_TRAILER,
        algorithm: 'CRC64NVME',
        extraHeaders: { expect: '100-continue' },
      })
      const events = []
      const res = await new Promise((resolve, reject) => {
        const req = http.request({ host: HOST, port: proxy.httpPort, method: 'PUT', path: request.path, headers: request.headers, agent: false })
        req.on('continue', () => {
          events.push('continue')
          req.end(request.body)
        })
        req.on('response', async (response) => {
          events.push('response')
          resolve({ status: response.statusCode, body: await readAll(response) })
        })
        req.on('error', reject)
        req.flushHeaders()
      })
      assert.deepEqual(events, ['continue', 'response'])
      assert.equal(res.status, 200, res.body.toString())
      assert.equal(sha256(await getBytes(key)), sha256(data))
    })

    test('aws-chunked in HTTP chunked framing', async () => {
      // No Content-Length: the proxy sends the decoded length to the backend.
      const key = 'framing/aws-chunked-te.bin'
      const data = payload()
      const request = chunkedUpload({ host, path: `/${BUCKET}/${key}`, data, mode: STREAMING_SIGNED_TRAILER, contentLength: false })
      const pieces = [request.body.subarray(0, 5000), request.body.subarray(5000, 100_000), request.body.subarray(100_000)]
      const res = await exchange({ port: proxy.httpPort, path: request.path, headers: request.headers, pieces })
      assert.equal(res.status, 200, res.body.toString())
      assert.equal(sha256(await getBytes(key)), sha256(data))
    })

    for (const [label, hashOf] of [
      ['a hex payload hash', (data) => sha256(data)],
      ['UNSIGNED-PAYLOAD', () => 'UNSIGNED-PAYLOAD'],
    ]) {
      test(`HTTP chunked framing, ${label}`, async () => {
        // Without a length the proxy forwards the body in chunked framing, as
        // it came. s3s-fs requires a Content-Length on PutObject and returns
        // 411 MissingContentLength, which must reach the client unchanged.
        const key = `framing/te-${label.replace(/\W+/g, '-')}.bin`
        const data = payload()
        const signed = signRequest({ method: 'PUT', host, path: `/${BUCKET}/${key}`, payloadHash: hashOf(data) })
        const pieces = [data.subarray(0, 1), data.subarray(1, 70_000), data.subarray(70_000)]
        const res = await exchange({ port: proxy.httpPort, path: signed.path, headers: signed.headers, pieces })
        assertS3Error(res, 411, 'MissingContentLength')
        await assertNotStored(key)
      })
    }

    test('zero-byte bodies', async () => {
      // With Content-Length: 0, with no length at all, in chunked framing, and aws-chunked.
      const empty = Buffer.alloc(0)
      const path = (name) => `/${BUCKET}/zero/${name}`

      let signed = signRequest({ method: 'PUT', host, path: path('content-length'), body: empty, headers: { 'content-length': '0' } })
      let res = await exchange({ port: proxy.httpPort, path: signed.path, headers: signed.headers, body: empty })
      assert.equal(res.status, 200, res.body.toString())

      // Neither Content-Length nor Transfer-Encoding: an HTTP/1.1 request
      // without a body. Node would add chunked framing, so the bytes are raw.
      signed = signRequest({ method: 'PUT', host, path: path('no-length'), body: empty })
      const head = [`PUT ${signed.path} HTTP/1.1`, ...Object.entries(signed.headers).map(([name, value]) => `${name}: ${value}`), 'connection: close', '', ''].join('\r\n')
      const raw = await rawResponse(proxy.httpPort, head)
      assert.match(raw, /^HTTP\/1\.1 200 /, raw)

      signed = signRequest({ method: 'PUT', host, path: path('chunked-framing'), body: empty })
      res = await exchange({ port: proxy.httpPort, path: signed.path, headers: signed.headers, pieces: [] })
      assert.equal(res.status, 200, res.body.toString())

      res = await send(chunkedUpload({ host, path: path('aws-chunked'), data: empty, mode: STREAMING_SIGNED_TRAILER, algorithm: 'CRC32C' }))
      assert.equal(res.status, 200, res.body.toString())

      for (const name of ['content-length', 'no-length', 'chunked-framing', 'aws-chunked']) {
        const out = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `zero/${name}` }))
        assert.equal(out.ContentLength, 0, name)
      }
    })

    for (const [label, build] of [
      [
        'Content-Length',
        () => signRequest({ method: 'PUT', host, path: `/${BUCKET}/huge/plain.bin`, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(6 * 1024 * MiB) } }),
      ],
      [
        'x-amz-decoded-content-length',
        () =>
          signRequest({
            method: 'PUT',
            host,
            path: `/${BUCKET}/huge/chunked.bin`,
            payloadHash: STREAMING_UNSIGNED_TRAILER,
            headers: {
              'content-encoding': 'aws-chunked',
              'content-length': String(6 * 1024 * MiB + 100),
              'x-amz-decoded-content-length': String(6 * 1024 * MiB),
              'x-amz-trailer': 'x-amz-checksum-crc32',
            },
          }),
      ],
    ]) {
      for (const expect of [false, true]) {
        test(`over 5 GiB in ${label}${expect ? ', Expect: 100-continue' : ''}`, async () => {
          // Only the headers are sent: the 400 EntityTooLarge must come without
          // the body, and in place of 100 Continue when the client waits for it.
          const signed = build()
          let continued = false
          const res = await new Promise((resolve, reject) => {
            const headers = expect ? { ...signed.headers, expect: '100-continue' } : signed.headers
            const req = http.request({ host: HOST, port: proxy.httpPort, method: 'PUT', path: signed.path, headers, agent: false })
            req.on('continue', () => {
              continued = true
            })
            const timer = setTimeout(() => req.destroy(new Error('no response within 5 s while the body was held back')), 5000)
            req.on('response', async (response) => {
              const body = await readAll(response)
              clearTimeout(timer)
              req.destroy()
              resolve({ status: response.statusCode, body })
            })
            req.on('error', (err) => {
              clearTimeout(timer)
              reject(err)
            })
            req.flushHeaders()
          })
          assertS3Error(res, 400, 'EntityTooLarge')
          assert.equal(continued, false, '100 Continue was sent for a request that fails')
        })
      }
    }
  })
}

/** Writes `request` to a new connection and resolves with everything read until the server closes it. */
function rawResponse(port, request, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const chunks = []
    const socket = net.connect({ host: HOST, port }, () => socket.write(request))
    const timer = setTimeout(() => socket.destroy(new Error(`no complete response in ${timeoutMs} ms`)), timeoutMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('end', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
  })
}
