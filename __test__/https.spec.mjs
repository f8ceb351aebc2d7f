// HTTPS in front of the proxy (HTTP/2 and HTTP/1.1 through ALPN) and
// verified TLS behind it. A CA made at test time signs the proxy's
// certificate and the backend's, and nginx terminates TLS in front of s3s-fs.
// The proxy trusts that CA only through `caCert`: SSL_CERT_FILE is left as
// the machine has it, so a bucket without `caCert` cannot reach the backend.
// Clients: curl (--http2 and --http1.1), node's http2 module, @aws-sdk/client-s3,
// boto3 and the aws CLI v1 from the project venv.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import https from 'node:https'
import tls from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'

import {
  CLIENT_AK,
  CLIENT_SK,
  HOST,
  bucketConfig,
  canListen,
  errorOf,
  freePort,
  httpRequest,
  makeClient,
  parseS3Error,
  presignUrl,
  randomBody,
  readAll,
  sha256,
  signRequest,
  startBackend,
  startProxy,
  statusOf,
} from './helpers.mjs'
import { makeCertificates, startTlsTerminator } from './tls.mjs'

const run = promisify(execFile)

const BUCKET = 'https-bucket'
const SECOND_BUCKET = 'https-second'
const EMPTY_SHA256 = sha256(Buffer.alloc(0))

// boto3 client round trip over HTTPS; prints one JSON line of results.
const BOTO3_ROUND_TRIP = `
import hashlib, json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
endpoint, ca, bucket, source = sys.argv[1:5]
client = boto3.session.Session(region_name="us-east-1").client(
    "s3", endpoint_url=endpoint, verify=ca,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
body = open(source, "rb").read()
client.put_object(Bucket=bucket, Key="boto3/object.bin", Body=body)
client.upload_file(source, bucket, "boto3/uploaded.bin")
got = client.get_object(Bucket=bucket, Key="boto3/object.bin")["Body"].read()
uploaded = client.get_object(Bucket=bucket, Key="boto3/uploaded.bin")["Body"].read()
keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket, Prefix="boto3/").get("Contents", [])]
try:
    client.head_object(Bucket=bucket, Key="boto3/missing.bin")
    missing = 200
except ClientError as error:
    missing = error.response["ResponseMetadata"]["HTTPStatusCode"]
client.delete_object(Bucket=bucket, Key="boto3/object.bin")
client.delete_object(Bucket=bucket, Key="boto3/uploaded.bin")
after = client.list_objects_v2(Bucket=bucket, Prefix="boto3/").get("KeyCount", 0)
print(json.dumps({
    "put_sha256": hashlib.sha256(body).hexdigest(),
    "get_sha256": hashlib.sha256(got).hexdigest(),
    "uploaded_sha256": hashlib.sha256(uploaded).hexdigest(),
    "keys": keys, "missing_status": missing, "keys_after_delete": after,
}))
`

/**
 * Builds the environment of the Python clients: the client keys, us-east-1,
 * and no AWS or CA bundle settings from the machine, so that trust comes
 * from the command line alone.
 */
function clientEnv(home) {
  const dropped = new Set(['PYTHONPATH', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'SSL_CERT_FILE', 'SSL_CERT_DIR'])
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_') && !dropped.has(name)),
  )
  return {
    ...env,
    HOME: home,
    AWS_ACCESS_KEY_ID: CLIENT_AK,
    AWS_SECRET_ACCESS_KEY: CLIENT_SK,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(home, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'aws-credentials'),
    PYTHONNOUSERSITE: '1',
  }
}

/** Asserts that `promise` rejects with an Error of `code` whose message matches `pattern`. */
async function assertRejects(promise, code, pattern) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, err.message)
    assert.match(err.message, pattern)
    return true
  })
}

describe('HTTPS listener and backend TLS', { timeout: 900_000 }, () => {
  let certificates
  let caPem
  let proxyCert
  let proxyKey
  let backend
  let terminator
  let venvBin
  let home
  let env

  before(async () => {
    const tools = await import('../scripts/tools.mjs')
    venvBin = tools.ensureVenv(['boto3', 'awscli'])
    home = await mkdtemp(join(tmpdir(), 'osp-https-'))
    env = clientEnv(home)
    certificates = await makeCertificates({ servers: ['proxy', 'backend'], selfSigned: ['untrusted'] })
    caPem = readFileSync(certificates.caPath, 'utf8')
    proxyCert = readFileSync(certificates.certPath('proxy'))
    proxyKey = readFileSync(certificates.keyPath('proxy'), 'utf8')
    backend = await startBackend({ buckets: [BUCKET, SECOND_BUCKET] })
    terminator = await startTlsTerminator({ certificates, names: ['backend'], upstreamPort: backend.port })
  })

  after(async () => {
    await terminator?.stop()
    await backend?.stop()
    await certificates?.remove()
    if (home) await rm(home, { recursive: true, force: true })
  })

  /** A cosMap entry for a bucket behind the nginx TLS terminator. */
  const tlsBucket = (extra = {}) => bucketConfig(terminator.ports.backend, { tls: true, ...extra })

  /**
   * Starts a proxy with only an HTTPS listener: the proxy's certificate (a
   * Buffer) and key (a string) in memory, the test CA as `caCert`, and both
   * buckets behind TLS.
   */
  function startHttps(extra = {}) {
    return startProxy({
      httpPort: undefined,
      httpsPort: 0,
      tls: { cert: proxyCert, key: proxyKey },
      caCert: caPem,
      cosMap: { [BUCKET]: tlsBucket(), [SECOND_BUCKET]: tlsBucket() },
      ...extra,
    })
  }

  /**
   * Runs curl against the proxy, signing with its --aws-sigv4. curl 7.88 does
   * not send x-amz-content-sha256, so the payload hash goes in as a header,
   * which curl signs. Resolves with { status, version, body, stderr, ms }.
   */
  async function curl(port, { protocol, method = 'GET', path, body, headers = [], extra = [] }) {
    const bodyFile = join(home, `curl-${Date.now()}-${Math.random().toString(16).slice(2)}.out`)
    const args = [
      '-sS', protocol, '--cacert', certificates.caPath,
      '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${CLIENT_AK}:${CLIENT_SK}`,
      '-H', `x-amz-content-sha256: ${body ? sha256(body) : EMPTY_SHA256}`,
      '-o', bodyFile, '-w', '%{http_code} %{http_version}',
      ...headers.flatMap((header) => ['-H', header]),
      ...extra,
    ]
    if (method === 'HEAD') args.push('-I')
    else args.push('-X', method)
    if (body) {
      const source = `${bodyFile}.in`
      await writeFile(source, body)
      args.push('--data-binary', `@${source}`, '-H', 'content-type: application/octet-stream')
    }
    args.push(`https://${HOST}:${port}${path}`)
    const started = Date.now()
    const { stdout, stderr } = await run('curl', args)
    const ms = Date.now() - started
    const [status, version] = stdout.trim().split(' ')
    const received = await readFile(bodyFile).catch(() => Buffer.alloc(0))
    await rm(bodyFile, { force: true })
    await rm(`${bodyFile}.in`, { force: true })
    return { status: Number(status), version, body: received, stderr, ms }
  }

  /**
   * Sends one request over HTTP/2 with node's http2 client, trusting the test
   * CA. `headers.host` becomes `:authority`, as HTTP/2 has no Host header.
   * `sendBody` is 'now', 'after-continue' (wait up to `continueWaitMs` for a
   * 100 Continue first) or 'never' (the request stays open until the
   * response). Resolves with { status, headers, body, continued }.
   */
  function h2Request(port, { method = 'GET', path, headers, body, sendBody = 'now', continueWaitMs = 500 }) {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`https://${HOST}:${port}`, { ca: caPem })
      session.on('error', reject)
      const { host, ...rest } = headers
      const hasBody = body !== undefined
      // HTTP/2 does not need a length, but S3 backends reject a PutObject
      // without one (411 MissingContentLength), so clients send it.
      if (hasBody && rest['content-length'] === undefined) rest['content-length'] = String(body.length)
      const stream = session.request(
        { ':method': method, ':path': path, ':authority': host, ...rest },
        { endStream: !hasBody },
      )
      let status
      let responseHeaders
      let continued = false
      const chunks = []
      stream.setTimeout(20_000, () => stream.close(http2.constants.NGHTTP2_CANCEL))
      stream.on('continue', () => {
        continued = true
      })
      stream.on('response', (received) => {
        status = received[':status']
        responseHeaders = received
      })
      stream.on('data', (chunk) => chunks.push(chunk))
      stream.on('end', () => {
        session.destroy()
        resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), continued })
      })
      stream.on('error', (err) => {
        session.destroy()
        reject(err)
      })
      if (!hasBody || sendBody === 'never') return
      if (sendBody === 'now') {
        stream.end(body)
        return
      }
      const timer = setTimeout(() => stream.end(body), continueWaitMs)
      stream.once('continue', () => {
        clearTimeout(timer)
        stream.end(body)
      })
    })
  }

  /** Signs a request for HTTP/2 at 127.0.0.1:port and sends it. */
  function signedH2(port, { method = 'GET', path, query, body, headers = {}, authority, ...options }) {
    const host = authority ?? `${HOST}:${port}`
    const signed = signRequest({ method, host, path, query, body, headers })
    return h2Request(port, { method, path: signed.path, headers: signed.headers, body, ...options })
  }

  /** Creates an @aws-sdk/client-s3 client for the HTTPS listener that trusts the test CA. */
  function httpsClient(port) {
    return makeClient(port, {
      endpoint: `https://${HOST}:${port}`,
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: caPem, keepAlive: true }) }),
    })
  }

  describe('listener', () => {
    test('httpsPort 0 reports the bound port', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      assert.equal(proxy.httpPort, null)
      assert.equal(typeof proxy.httpsPort, 'number')
      assert.ok(proxy.httpsPort > 0)
      assert.equal(await canListen(proxy.httpsPort), false, 'the port is bound')
    })

    test('HTTP and HTTPS listeners together', async (t) => {
      const proxy = await startHttps({ httpPort: 0 })
      t.after(() => proxy.close())
      assert.notEqual(proxy.httpPort, proxy.httpsPort)

      const overHttps = await curl(proxy.httpsPort, { protocol: '--http1.1', path: '/' })
      assert.equal(overHttps.status, 200, overHttps.body.toString())
      assert.match(overHttps.body.toString(), new RegExp(`<Name>${BUCKET}</Name>`))

      const signed = signRequest({ host: `${HOST}:${proxy.httpPort}`, path: '/' })
      const overHttp = await httpRequest({ port: proxy.httpPort, path: signed.path, headers: signed.headers })
      assert.equal(overHttp.status, 200, overHttp.body.toString())

      const { httpPort, httpsPort } = proxy
      await proxy.close()
      assert.equal(await canListen(httpPort), true, 'HTTP port freed')
      assert.equal(await canListen(httpsPort), true, 'HTTPS port freed')
    })

    test('ALPN offers h2 and http/1.1', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const h2 = await curl(proxy.httpsPort, { protocol: '--http2', path: '/' })
      assert.equal(h2.status, 200, h2.body.toString())
      assert.equal(h2.version, '2')
      const h1 = await curl(proxy.httpsPort, { protocol: '--http1.1', path: '/' })
      assert.equal(h1.status, 200, h1.body.toString())
      assert.equal(h1.version, '1.1')
    })

    test('certificate and key from TLS_CERT_PATH and TLS_KEY_PATH', async (t) => {
      process.env.TLS_CERT_PATH = certificates.certPath('proxy')
      process.env.TLS_KEY_PATH = certificates.keyPath('proxy')
      t.after(() => {
        delete process.env.TLS_CERT_PATH
        delete process.env.TLS_KEY_PATH
      })
      const proxy = await startHttps({ tls: undefined })
      t.after(() => proxy.close())
      const response = await curl(proxy.httpsPort, { protocol: '--http2', path: '/' })
      assert.equal(response.status, 200, response.body.toString())
    })
  })

  describe('clients', () => {
    for (const protocol of ['--http2', '--http1.1']) {
      test(`curl ${protocol} puts, gets, lists and deletes`, async (t) => {
        const proxy = await startHttps()
        t.after(() => proxy.close())
        const port = proxy.httpsPort
        const key = `curl/${protocol.slice(2)}.bin`
        const body = randomBody(2 * 1024 * 1024 + 7)
        const version = protocol === '--http2' ? '2' : '1.1'

        const put = await curl(port, { protocol, method: 'PUT', path: `/${BUCKET}/${key}`, body })
        assert.equal(put.status, 200, put.body.toString())
        assert.equal(put.version, version)

        const get = await curl(port, { protocol, path: `/${BUCKET}/${key}` })
        assert.equal(get.status, 200)
        assert.equal(sha256(get.body), sha256(body))

        const list = await curl(port, { protocol, path: `/${BUCKET}?list-type=2&prefix=curl%2F` })
        assert.equal(list.status, 200, list.body.toString())
        assert.match(list.body.toString(), new RegExp(`<Key>${key}</Key>`))

        const head = await curl(port, { protocol, method: 'HEAD', path: `/${BUCKET}/${key}` })
        assert.equal(head.status, 200)

        const removed = await curl(port, { protocol, method: 'DELETE', path: `/${BUCKET}/${key}` })
        assert.equal(removed.status, 204, removed.body.toString())
        assert.equal(backend.hasObject(BUCKET, key), false)
      })
    }

    test('curl --http1.1 with Expect gets 100 Continue at once', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const body = randomBody(4096)
      const put = await curl(proxy.httpsPort, {
        protocol: '--http1.1',
        method: 'PUT',
        path: `/${BUCKET}/expect/h1.bin`,
        body,
        headers: ['Expect: 100-continue'],
        extra: ['--expect100-timeout', '5'],
      })
      assert.equal(put.status, 200, put.body.toString())
      assert.ok(put.ms < 4000, `curl waited ${put.ms} ms, so no 100 Continue arrived`)
    })

    test('curl --http2 with Expect still uploads', async (t) => {
      // pingora 0.9.1 drops 1xx responses on HTTP/2, so curl sends the body
      // once its own wait (1 s here) is over.
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const body = randomBody(4096)
      const put = await curl(proxy.httpsPort, {
        protocol: '--http2',
        method: 'PUT',
        path: `/${BUCKET}/expect/h2.bin`,
        body,
        headers: ['Expect: 100-continue'],
        extra: ['--expect100-timeout', '1'],
      })
      assert.equal(put.status, 200, put.body.toString())
      assert.equal(put.version, '2')
      assert.equal(sha256(await readFile(backend.objectPath(BUCKET, 'expect/h2.bin'))), sha256(body))
    })

    test('node http2 signs :authority as the host', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const port = proxy.httpsPort
      const body = randomBody(1024 * 1024 + 3)

      const put = await signedH2(port, { method: 'PUT', path: `/${BUCKET}/h2/object.bin`, body })
      assert.equal(put.status, 200, put.body.toString())

      const get = await signedH2(port, { path: `/${BUCKET}/h2/object.bin` })
      assert.equal(get.status, 200)
      assert.equal(sha256(get.body), sha256(body))

      const list = await signedH2(port, { path: `/${BUCKET}`, query: { 'list-type': '2', prefix: 'h2/' } })
      assert.equal(list.status, 200, list.body.toString())
      assert.match(list.body.toString(), /<Key>h2\/object\.bin<\/Key>/)

      const removed = await signedH2(port, { method: 'DELETE', path: `/${BUCKET}/h2/object.bin` })
      assert.equal(removed.status, 204, removed.body.toString())
    })

    test('node http2 signed for another authority is rejected', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const signed = signRequest({ host: 'elsewhere.example:443', path: `/${BUCKET}/h2/any.bin` })
      const response = await h2Request(proxy.httpsPort, {
        path: signed.path,
        headers: { ...signed.headers, host: `${HOST}:${proxy.httpsPort}` },
      })
      assert.equal(response.status, 403, response.body.toString())
      assert.equal(parseS3Error(response.body).code, 'SignatureDoesNotMatch')
    })

    test('node http2 virtual-host request from :authority', async (t) => {
      const proxy = await startHttps({ virtualHostDomains: ['localhost'] })
      t.after(() => proxy.close())
      const port = proxy.httpsPort
      const authority = `${BUCKET}.localhost:${port}`
      const body = Buffer.from('bucket named by :authority')

      const put = await signedH2(port, { method: 'PUT', path: '/vhost.txt', body, authority })
      assert.equal(put.status, 200, put.body.toString())
      const get = await signedH2(port, { path: '/vhost.txt', authority })
      assert.equal(get.status, 200, get.body.toString())
      assert.deepEqual(get.body, body)
    })

    test('node http2 presigned GET', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const port = proxy.httpsPort
      const body = Buffer.from('presigned over HTTP/2')
      const put = await signedH2(port, { method: 'PUT', path: `/${BUCKET}/h2/presigned.txt`, body })
      assert.equal(put.status, 200, put.body.toString())

      const { path } = presignUrl({ host: `${HOST}:${port}`, path: `/${BUCKET}/h2/presigned.txt` })
      const get = await h2Request(port, { path, headers: { host: `${HOST}:${port}` } })
      assert.equal(get.status, 200, get.body.toString())
      assert.deepEqual(get.body, body)
    })

    test('HEAD over h2 has no body', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const port = proxy.httpsPort

      const missing = await signedH2(port, { method: 'HEAD', path: `/${BUCKET}/h2/missing.bin` })
      assert.equal(missing.status, 404)
      assert.equal(missing.body.length, 0)

      const body = randomBody(5000)
      await signedH2(port, { method: 'PUT', path: `/${BUCKET}/h2/head.bin`, body })
      const found = await signedH2(port, { method: 'HEAD', path: `/${BUCKET}/h2/head.bin` })
      assert.equal(found.status, 200)
      assert.equal(found.headers['content-length'], String(body.length))
      assert.equal(found.body.length, 0)

      const unsigned = await h2Request(port, {
        method: 'HEAD',
        path: `/${BUCKET}/h2/head.bin`,
        headers: { host: `${HOST}:${port}` },
      })
      assert.equal(unsigned.status, 403, 'an unsigned request is rejected')
      assert.equal(unsigned.body.length, 0, 'the error has no body either')
    })

    test('HEAD over HTTP/1.1 on TLS has no body', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const host = `${HOST}:${proxy.httpsPort}`
      const signed = signRequest({ method: 'HEAD', host, path: `/${BUCKET}/missing.bin` })
      const lines = Object.entries(signed.headers).map(([name, value]) => `${name}: ${value}`)
      const request = [`HEAD ${signed.path} HTTP/1.1`, ...lines, 'connection: close', '', ''].join('\r\n')
      // Everything the proxy sends until it closes, read from the TLS socket.
      const received = await new Promise((resolve, reject) => {
        const chunks = []
        const socket = tls.connect({ host: HOST, port: proxy.httpsPort, ca: caPem, ALPNProtocols: ['http/1.1'] }, () =>
          socket.write(request),
        )
        socket.setTimeout(10_000, () => socket.destroy(new Error('no response within 10 s')))
        socket.on('data', (chunk) => chunks.push(chunk))
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')))
        socket.on('error', reject)
      })
      const [head, rest] = received.split('\r\n\r\n')
      assert.match(head, /^HTTP\/1\.1 404 /)
      assert.equal(rest, '', 'no bytes after the header')
    })

    test('Expect over h2: rejected before the body is sent', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const signed = signRequest({
        method: 'PUT',
        host: `${HOST}:${proxy.httpsPort}`,
        path: `/${BUCKET}/h2/expect-rejected.bin`,
        body: Buffer.from('never sent'),
        secretKey: 'not-the-client-secret',
      })
      const response = await h2Request(proxy.httpsPort, {
        method: 'PUT',
        path: signed.path,
        headers: { ...signed.headers, expect: '100-continue', 'content-length': '10' },
        body: Buffer.from('never sent'),
        sendBody: 'never',
      })
      assert.equal(response.status, 403, response.body.toString())
      assert.equal(parseS3Error(response.body).code, 'SignatureDoesNotMatch')
      assert.equal(backend.hasObject(BUCKET, 'h2/expect-rejected.bin'), false)
    })

    test('Expect over h2: accepted upload is stored', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const body = randomBody(300_000)
      const response = await signedH2(proxy.httpsPort, {
        method: 'PUT',
        path: `/${BUCKET}/h2/expect.bin`,
        body,
        headers: { expect: '100-continue' },
        sendBody: 'after-continue',
        continueWaitMs: 300,
      })
      assert.equal(response.status, 200, response.body.toString())
      assert.equal(sha256(await readFile(backend.objectPath(BUCKET, 'h2/expect.bin'))), sha256(body))
    })

    test('@aws-sdk/client-s3 over HTTPS', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const client = httpsClient(proxy.httpsPort)
      t.after(() => client.destroy())
      const body = randomBody(3 * 1024 * 1024 + 11)

      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/buffer.bin', Body: body }))
      // A stream body goes out in the aws-chunked trailer form.
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin', Body: Readable.from([body]), ContentLength: body.length }),
      )
      for (const key of ['sdk/buffer.bin', 'sdk/stream.bin']) {
        const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
        assert.equal(sha256(await readAll(response.Body)), sha256(body), key)
      }
      const listing = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'sdk/' }))
      assert.deepEqual(listing.Contents.map((item) => item.Key).sort(), ['sdk/buffer.bin', 'sdk/stream.bin'])

      const missing = await errorOf(() => client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/missing.bin' })))
      assert.equal(statusOf(missing), 404)

      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'sdk/buffer.bin' }))
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin' }))
      const after = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'sdk/' }))
      assert.equal(after.KeyCount, 0)
    })

    test('boto3 over HTTPS', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const source = join(home, 'boto3-upload.bin')
      // Over the multipart threshold of upload_file (8 MiB), so it uploads parts.
      await writeFile(source, randomBody(9 * 1024 * 1024 + 5))
      const { stdout } = await run(
        join(venvBin, 'python'),
        ['-c', BOTO3_ROUND_TRIP, `https://${HOST}:${proxy.httpsPort}`, certificates.caPath, BUCKET, source],
        { env },
      )
      const result = JSON.parse(stdout)
      assert.equal(result.get_sha256, result.put_sha256)
      assert.equal(result.uploaded_sha256, result.put_sha256)
      assert.deepEqual(result.keys.sort(), ['boto3/object.bin', 'boto3/uploaded.bin'])
      assert.equal(result.missing_status, 404)
      assert.equal(result.keys_after_delete, 0)
    })

    test('aws CLI v1 over HTTPS', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const aws = (...args) =>
        run(join(venvBin, 'aws'), ['--endpoint-url', `https://${HOST}:${proxy.httpsPort}`, '--ca-bundle', certificates.caPath, ...args], {
          env,
          maxBuffer: 16 << 20,
        })
      const source = join(home, 'cli-upload.bin')
      const target = join(home, 'cli-download.bin')
      const body = randomBody(1024 * 1024 + 9)
      await writeFile(source, body)

      await aws('s3', 'cp', source, `s3://${BUCKET}/cli/object.bin`)
      const { stdout: listing } = await aws('s3', 'ls', `s3://${BUCKET}/cli/`)
      assert.match(listing, /object\.bin/)
      await aws('s3', 'cp', `s3://${BUCKET}/cli/object.bin`, target)
      assert.equal(sha256(await readFile(target)), sha256(body))

      const missing = await errorOf(() => aws('s3api', 'head-object', '--bucket', BUCKET, '--key', 'cli/missing.bin'))
      assert.match(missing.stderr, /404/)

      await aws('s3', 'rm', `s3://${BUCKET}/cli/object.bin`)
      assert.equal(backend.hasObject(BUCKET, 'cli/object.bin'), false)
    })
  })

  describe('backend trust', () => {
    /** Sends a signed ListObjectsV2 over h2. The backend returns 200 only when the proxy's TLS connection to it succeeded. */
    const listOver = (proxy, bucket) => signedH2(proxy.httpsPort, { path: `/${bucket}`, query: { 'list-type': '2' } })

    test('caCert makes the backend certificate trusted', async (t) => {
      const proxy = await startHttps()
      t.after(() => proxy.close())
      const response = await listOver(proxy, BUCKET)
      assert.equal(response.status, 200, response.body.toString())
      assert.match(response.body.toString(), /<ListBucketResult/)
    })

    test('without caCert the platform store rejects it', async (t) => {
      const proxy = await startHttps({ caCert: undefined })
      t.after(() => proxy.close())
      const response = await listOver(proxy, BUCKET)
      assert.equal(response.status, 502, response.body.toString())
      assert.equal(parseS3Error(response.body).code, 'BadGateway')
    })

    test('wrong caCert returns 502 BadGateway', async (t) => {
      const proxy = await startHttps({ caCert: readFileSync(certificates.certPath('untrusted')) })
      t.after(() => proxy.close())
      const response = await listOver(proxy, BUCKET)
      assert.equal(response.status, 502, response.body.toString())
      const error = parseS3Error(response.body)
      assert.equal(error.code, 'BadGateway')
      assert.equal(error.requestId, response.headers['x-amz-request-id'])
    })

    test('bucket caCert replaces the server caCert', async (t) => {
      const untrusted = readFileSync(certificates.certPath('untrusted'), 'utf8')
      const proxy = await startHttps({
        caCert: untrusted,
        cosMap: { [BUCKET]: tlsBucket({ caCert: Buffer.from(caPem) }), [SECOND_BUCKET]: tlsBucket() },
      })
      t.after(() => proxy.close())
      assert.equal((await listOver(proxy, BUCKET)).status, 200, 'own caCert trusts the backend')
      assert.equal((await listOver(proxy, SECOND_BUCKET)).status, 502, 'server caCert does not')
    })

    test('pooled connections stay apart by caCert', async (t) => {
      // Both buckets are on the same nginx address. A connection verified
      // for the first bucket must not be reused for the second, which trusts
      // another CA.
      const untrusted = readFileSync(certificates.certPath('untrusted'), 'utf8')
      const proxy = await startHttps({
        cosMap: { [BUCKET]: tlsBucket(), [SECOND_BUCKET]: tlsBucket({ caCert: untrusted }) },
      })
      t.after(() => proxy.close())
      assert.equal((await listOver(proxy, BUCKET)).status, 200)
      assert.equal((await listOver(proxy, SECOND_BUCKET)).status, 502)
      assert.equal((await listOver(proxy, BUCKET)).status, 200)
      assert.equal((await listOver(proxy, SECOND_BUCKET)).status, 502)
    })

    test('verify false accepts a backend the caCert does not sign', async (t) => {
      const proxy = await startHttps({ caCert: readFileSync(certificates.certPath('untrusted')), verify: false })
      t.after(() => proxy.close())
      const response = await listOver(proxy, BUCKET)
      assert.equal(response.status, 200, response.body.toString())
    })

    test('invalid caCert rejects startServer', async () => {
      const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
      await assertRejects(startHttps({ caCert: garbage }), 'ERR_INVALID_TLS', /caCert/)
      await assertRejects(
        startHttps({ cosMap: { [BUCKET]: tlsBucket({ caCert: 'no PEM here' }) } }),
        'ERR_INVALID_TLS',
        new RegExp(`cosMap\\.${BUCKET}\\.caCert contains no certificate`),
      )
      await assertRejects(startHttps({ caCert: 42 }), 'ERR_INVALID_CONFIG', /caCert: expected PEM as a string or a Buffer/)
    })
  })

  describe('invalid TLS configuration', () => {
    test('unusable certificate or key rejects with ERR_INVALID_TLS', async () => {
      const otherKey = readFileSync(certificates.keyPath('untrusted'), 'utf8')
      const cases = [
        [{ cert: 'not a certificate', key: proxyKey }, /tls\.cert contains no certificate/],
        [{ cert: proxyCert, key: 'not a key' }, /tls\.key contains no private key/],
        [{ cert: proxyCert, key: otherKey }, /does not belong to the certificate/],
        [{ cert: proxyCert }, /tls\.key is missing/],
        [{ key: proxyKey }, /tls\.cert is missing/],
      ]
      for (const [tls, pattern] of cases) {
        await assertRejects(startHttps({ tls }), 'ERR_INVALID_TLS', pattern)
      }
    })

    test('nothing listens after a TLS failure', async () => {
      const httpPort = await freePort()
      const httpsPort = await freePort()
      await assertRejects(
        startHttps({ httpPort, httpsPort, tls: { cert: proxyCert, key: 'not a key' } }),
        'ERR_INVALID_TLS',
        /tls\.key/,
      )
      assert.equal(await canListen(httpPort), true)
      assert.equal(await canListen(httpsPort), true)
    })

    test('unreadable files from the environment reject', async (t) => {
      process.env.TLS_CERT_PATH = join(home, 'missing-cert.pem')
      process.env.TLS_KEY_PATH = certificates.keyPath('proxy')
      t.after(() => {
        delete process.env.TLS_CERT_PATH
        delete process.env.TLS_KEY_PATH
      })
      await assertRejects(startHttps({ tls: undefined }), 'ERR_INVALID_TLS', /missing-cert\.pem.*TLS_CERT_PATH/)
      delete process.env.TLS_KEY_PATH
      process.env.TLS_CERT_PATH = certificates.certPath('proxy')
      await assertRejects(startHttps({ tls: undefined }), 'ERR_INVALID_TLS', /TLS_KEY_PATH is not/)
    })

    test('listener options are checked', async () => {
      await assertRejects(startHttps({ httpsPort: undefined, httpPort: 0 }), 'ERR_INVALID_CONFIG', /tls: given without httpsPort/)
      await assertRejects(startHttps({ tls: undefined }), 'ERR_INVALID_CONFIG', /httpsPort: .*TLS_CERT_PATH/)
      await assertRejects(startHttps({ httpsPort: undefined, tls: undefined }), 'ERR_INVALID_CONFIG', /no listener configured/)
      await assertRejects(startHttps({ tls: { cert: proxyCert, key: proxyKey, ca: caPem } }), 'ERR_INVALID_CONFIG', /tls\.ca: unknown option/)
      await assertRejects(startHttps({ tls: { cert: 1, key: proxyKey } }), 'ERR_INVALID_CONFIG', /tls\.cert: expected PEM/)
    })

    test('busy HTTPS port rejects with ERR_ADDRESS_IN_USE', async (t) => {
      const first = await startHttps()
      t.after(() => first.close())
      const httpPort = await freePort()
      await assertRejects(startHttps({ httpPort, httpsPort: first.httpsPort }), 'ERR_ADDRESS_IN_USE', new RegExp(String(first.httpsPort)))
      await sleep(50)
      assert.equal(await canListen(httpPort), true, 'the HTTP port bound first was released')
    })
  })
})
