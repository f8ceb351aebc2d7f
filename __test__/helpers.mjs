// Shared harness for the end-to-end specs: a real S3 backend (s3s-fs) on a
// temporary folder, a TCP server that counts connections, the proxy itself,
// S3 clients, and a small SigV4 signer for hand-made requests.
// Every server here listens on 127.0.0.1 and every request goes there.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { createRequire } from 'node:module'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'

const require = createRequire(import.meta.url)

export const HOST = '127.0.0.1'
export const REGION = 'us-east-1'

// Keys that the backend checks. Clients never use these.
export const BACKEND_AK = 'backend-access'
export const BACKEND_SK = 'backend-secret-key-0123456789'

// Keys that clients sign with and the proxy checks.
export const CLIENT_AK = 'client-access'
export const CLIENT_SK = 'client-secret-key-abcdefghij'

let addon
/** Loads the native addon on first use, so that the harness itself works without it. */
export function loadAddon() {
  addon ??= require('../index.js')
  return addon
}

/** Calls the addon's startServer as a user would. */
export function startServer(config) {
  return loadAddon().startServer(config)
}

// ---------------------------------------------------------------------------
// Small utilities

export const sha256 = (data) => createHash('sha256').update(data).digest('hex')

export const randomBody = (size) => randomBytes(size)

/** Resolves with a port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, HOST, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Resolves true when a TCP connection to 127.0.0.1:port succeeds. */
export function canConnect(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** Resolves true when a new server can listen on 127.0.0.1:port. */
export function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

/** Reads a stream (or an SDK body) to one Buffer. */
export async function readAll(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

/** Parses an S3 XML error body into { code, message, requestId }. */
export function parseS3Error(body) {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : String(body)
  const field = (name) => {
    const match = text.match(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`))
    return match ? match[1] : undefined
  }
  return {
    isError: /<Error>[\s\S]*<\/Error>/.test(text),
    code: field('Code'),
    message: field('Message'),
    requestId: field('RequestId'),
    text,
  }
}

/**
 * Asserts that `res` ({ status, body }) is an S3 XML error with the given
 * status and, when given, code. Returns the parsed error.
 */
export function assertS3Error(res, status, code) {
  const text = res.body.toString()
  assert.equal(res.status, status, text)
  const err = parseS3Error(res.body)
  assert.ok(err.isError, `not an S3 error: ${text}`)
  if (code !== undefined) assert.equal(err.code, code, text)
  return err
}

// ---------------------------------------------------------------------------
// The backend: s3s-fs on a temporary folder

async function s3sFsBinary() {
  if (process.env.S3S_FS_BIN) return process.env.S3S_FS_BIN
  const { ensureS3sFs } = await import('../scripts/tools.mjs')
  return ensureS3sFs()
}

export async function waitForPort(port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false
    if (await canConnect(port, 500)) return true
    await sleep(50)
  }
  return false
}

export function stopChild(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/**
 * Starts s3s-fs on 127.0.0.1 with the backend keys on a free port and a fresh
 * data folder. `buckets` are created before it starts; `domain` turns on
 * virtual-host requests at the backend.
 */
export async function startBackend({ buckets = [], domain } = {}) {
  const binary = await s3sFsBinary()
  const dataDir = await mkdtemp(join(tmpdir(), 'osp-backend-'))
  for (const bucket of buckets) await mkdir(join(dataDir, bucket))
  let lastError = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const args = ['--host', HOST, '--port', String(port), '--access-key', BACKEND_AK, '--secret-key', BACKEND_SK]
    if (domain) args.push('--domain', domain)
    args.push(dataDir)
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-4000)
    })
    if (await waitForPort(port, child, 10_000)) {
      const endpoint = `http://${HOST}:${port}`
      return {
        port,
        endpoint,
        dataDir,
        pid: child.pid,
        /** Creates a bucket: a folder under the data folder. */
        createBucket: (name) => mkdir(join(dataDir, name), { recursive: true }),
        /** Returns the path of the file that stores an object. */
        objectPath: (bucket, key) => join(dataDir, bucket, key),
        hasObject: (bucket, key) => existsSync(join(dataDir, bucket, key)),
        stderr: () => stderr,
        async stop() {
          await stopChild(child)
          await rm(dataDir, { recursive: true, force: true })
        },
      }
    }
    lastError = stderr
    await stopChild(child)
  }
  await rm(dataDir, { recursive: true, force: true })
  throw new Error(`s3s-fs did not start after 5 attempts: ${lastError}`)
}

/**
 * Starts a TCP server on 127.0.0.1 that counts and drops every connection.
 * As a bucket's backend, it proves that the proxy never contacted it.
 */
export function startCountingServer() {
  let connections = 0
  const server = net.createServer((socket) => {
    connections++
    socket.destroy()
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () => {
      resolve({
        port: server.address().port,
        get connections() {
          return connections
        },
        close: () => new Promise((done) => server.close(() => done())),
      })
    })
  })
}

// ---------------------------------------------------------------------------
// The proxy and its clients

/** Returns the cosMap entry for a bucket on the given backend port. */
export function bucketConfig(port, extra = {}) {
  return {
    host: HOST,
    port,
    tls: false,
    addressingStyle: 'path',
    accessKey: BACKEND_AK,
    secretKey: BACKEND_SK,
    region: REGION,
    ...extra,
  }
}

/** Returns a cosMap with every named bucket on one backend port. */
export function cosMapFor(port, buckets) {
  return Object.fromEntries(buckets.map((bucket) => [bucket, bucketConfig(port)]))
}

/** Starts the proxy on 127.0.0.1 and an ephemeral port, with the client keys. */
export function startProxy(config) {
  return startServer({
    listenAddress: HOST,
    httpPort: 0,
    hmacKeystore: [{ accessKey: CLIENT_AK, secretKey: CLIENT_SK }],
    ...config,
  })
}

/**
 * Creates an S3 client that talks path style to 127.0.0.1:port with the client
 * keys. Checksum settings stay at the SDK's defaults. Retries are off, so
 * errors reach the test unchanged.
 */
export function makeClient(port, { accessKey = CLIENT_AK, secretKey = CLIENT_SK, ...options } = {}) {
  return new S3Client({
    endpoint: `http://${HOST}:${port}`,
    forcePathStyle: true,
    region: REGION,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    maxAttempts: 1,
    ...options,
  })
}

/** Downloads an object with `client` and returns its bytes. */
export async function getObjectBytes(client, bucket, key) {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return readAll(out.Body)
}

/**
 * Asserts that HEAD of the object returns 404 through `client` and that
 * s3s-fs (`backend`, from startBackend) has no file for it.
 */
export async function assertNotStored(client, backend, bucket, key) {
  const err = await errorOf(() => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))
  assert.equal(statusOf(err), 404, `HEAD ${key}: ${statusOf(err)} ${err?.name}`)
  assert.equal(backend.hasObject(bucket, key), false)
}

/**
 * Records every request the client sends, after signing. Returns the array
 * that receives { hostname, path, headers } per request.
 */
export function captureRequests(client) {
  const seen = []
  client.middlewareStack.add(
    (next) => async (args) => {
      seen.push({ hostname: args.request.hostname, path: args.request.path, headers: { ...args.request.headers } })
      return next(args)
    },
    { step: 'finalizeRequest', priority: 'low', name: 'captureSignedRequest' },
  )
  return seen
}

/** Runs `fn` and returns the error it throws; fails when it does not throw. */
export async function errorOf(fn) {
  try {
    await fn()
  } catch (err) {
    return err
  }
  throw new Error('expected the call to fail, but it succeeded')
}

/** Returns the HTTP status of an SDK error. */
export const statusOf = (err) => err?.$metadata?.httpStatusCode

// ---------------------------------------------------------------------------
// Plain HTTP

/**
 * Sends one request on a fresh connection to 127.0.0.1:port and resolves with
 * { status, headers, body }. `headers.host` may name any host; the connection
 * still goes to 127.0.0.1.
 */
export function httpRequest({ port, method = 'GET', path = '/', headers = {}, body, timeoutMs = 15_000 }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path, headers, agent: false }, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Sends raw bytes on a TCP connection to 127.0.0.1:port and resolves with all
 * bytes received until the server closes it (or the time runs out).
 */
export function rawExchange(port, request, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const chunks = []
    const socket = net.connect({ host: HOST, port }, () => socket.write(request))
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ data: Buffer.concat(chunks), timedOut: true })
    }, timeoutMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ data: Buffer.concat(chunks), timedOut: false })
    })
  })
}

// ---------------------------------------------------------------------------
// SigV4, written from the AWS specification for hand-made requests

const UNRESERVED = /[A-Za-z0-9\-._~]/

/** Percent-encodes UTF-8 bytes as S3 does; `/` is kept when keepSlash is set. */
export function uriEncode(value, keepSlash = false) {
  let out = ''
  for (const byte of Buffer.from(String(value), 'utf8')) {
    const char = String.fromCharCode(byte)
    if (UNRESERVED.test(char) || (keepSlash && char === '/')) out += char
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Formats a `Date` as the SigV4 timestamp YYYYMMDDTHHMMSSZ. */
export const amzDate = (date) => date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')

/** Compares strings by code unit, as SigV4 sorts encoded names and values. */
function compareCodeUnits(a, b) {
  if (a < b) return -1
  if (a > b) return 1
  return 0
}

function canonicalQuery(query) {
  const pairs = Array.isArray(query) ? query : Object.entries(query ?? {})
  return pairs
    .map(([key, value]) => [uriEncode(key), uriEncode(value ?? '')])
    .sort(([keyA, valueA], [keyB, valueB]) => compareCodeUnits(keyA, keyB) || compareCodeUnits(valueA, valueB))
    .map(([key, value]) => `${key}=${value}`)
    .join('&')
}

function signingKey(secretKey, day, region, service) {
  const hmac = (key, data) => createHmac('sha256', key).update(data).digest()
  return hmac(hmac(hmac(hmac(`AWS4${secretKey}`, day), region), service), 'aws4_request')
}

function sign({ method, path, query, headers, payloadHash, secretKey, region, service, date }) {
  const names = Object.keys(headers).map((name) => name.toLowerCase()).sort()
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]))
  const canonicalHeaders = names.map((name) => `${name}:${String(lower[name]).trim().replace(/\s+/g, ' ')}\n`).join('')
  const signedHeaders = names.join(';')
  const canonicalRequest = [
    method,
    uriEncode(path, true),
    canonicalQuery(query),
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n')
  const day = amzDate(date).slice(0, 8)
  const scope = `${day}/${region}/${service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate(date), scope, sha256(canonicalRequest)].join('\n')
  const signature = createHmac('sha256', signingKey(secretKey, day, region, service)).update(stringToSign).digest('hex')
  return { signature, scope, signedHeaders, canonicalRequest, stringToSign }
}

function pathWithQuery(path, query) {
  const qs = canonicalQuery(query)
  return uriEncode(path, true) + (qs ? `?${qs}` : '')
}

/**
 * Signs a request with an Authorization header.
 * `path` is the decoded path ("/bucket/a b"); it is encoded here with S3's
 * rules. `query` is an object or a list of [name, value] pairs, decoded.
 * Every header given is signed, plus host, x-amz-date and x-amz-content-sha256.
 * The payload hash is `payloadHash` when given, else the SHA-256 of `body`.
 * Returns { path, headers } ready for httpRequest, and the signing strings.
 */
export function signRequest({
  method = 'GET',
  host,
  path = '/',
  query,
  headers = {},
  body,
  payloadHash,
  accessKey = CLIENT_AK,
  secretKey = CLIENT_SK,
  region = REGION,
  service = 's3',
  date = new Date(),
}) {
  const hash = payloadHash ?? sha256(body ?? Buffer.alloc(0))
  const all = { ...headers, host, 'x-amz-date': amzDate(date), 'x-amz-content-sha256': hash }
  const signed = sign({ method, path, query, headers: all, payloadHash: hash, secretKey, region, service, date })
  all.authorization =
    `AWS4-HMAC-SHA256 Credential=${accessKey}/${signed.scope}, ` +
    `SignedHeaders=${signed.signedHeaders}, Signature=${signed.signature}`
  return { path: pathWithQuery(path, query), headers: all, ...signed }
}

/**
 * Presigns a URL (query-string authentication, UNSIGNED-PAYLOAD).
 * Returns { url, path } where path is the part after the host.
 */
export function presignUrl({
  method = 'GET',
  host,
  path = '/',
  query = {},
  headers = {},
  accessKey = CLIENT_AK,
  secretKey = CLIENT_SK,
  region = REGION,
  service = 's3',
  date = new Date(),
  expires = 900,
}) {
  const day = amzDate(date).slice(0, 8)
  const all = { ...headers, host }
  const names = Object.keys(all).map((name) => name.toLowerCase()).sort()
  const authQuery = {
    ...query,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${accessKey}/${day}/${region}/${service}/aws4_request`,
    'X-Amz-Date': amzDate(date),
    'X-Amz-Expires': String(expires),
    'X-Amz-SignedHeaders': names.join(';'),
  }
  const signed = sign({
    method,
    path,
    query: authQuery,
    headers: all,
    payloadHash: 'UNSIGNED-PAYLOAD',
    secretKey,
    region,
    service,
    date,
  })
  const fullPath = pathWithQuery(path, { ...authQuery, 'X-Amz-Signature': signed.signature })
  return { url: `http://${host}${fullPath}`, path: fullPath, ...signed }
}
