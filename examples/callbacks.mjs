// The three callbacks, each backed by an asynchronous lookup like a query
// to a database or a secret store:
//
//   hmacFetcher(accessKey)                 client access key -> its secret
//   bucketCredsFetcher(token, bucket)      bucket -> backend keys (cosMap has none)
//   validator(token, bucket, request)      caller -> role -> allowed S3 operations
//
// A scripted round trip with @aws-sdk/client-s3 prints which requests were
// allowed or denied and which callbacks ran for them, then stops everything.
//
//   node examples/callbacks.mjs                         round trip, then stop
//   node examples/callbacks.mjs --serve --port 9000     round trip, then keep running until Ctrl-C
//
// The commands to try it with the aws CLI are at the end of this file.
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { startLocalBackend } from './local-backend.mjs'

const { startServer } = createRequire(import.meta.url)('../index.js')

const HOST = '127.0.0.1'
const BUCKET = 'reports'
const BACKEND = { accessKey: 'backend-access-key', secretKey: 'backend-secret-key-do-not-share' }
const WRITER = { accessKey: 'writer-access-key', secretKey: 'writer-secret-key-0123' }
const READER = { accessKey: 'reader-access-key', secretKey: 'reader-secret-key-4567' }

const { values: options } = parseArgs({
  options: { serve: { type: 'boolean', default: false }, port: { type: 'string', default: '0' } },
})

/** Creates an in-memory table whose lookups resolve after a delay, as database queries would. */
function slowTable(rows, latencyMs = 20) {
  return {
    async get(id) {
      await sleep(latencyMs)
      return rows[id] ?? null
    },
  }
}

const clientKeys = slowTable({
  [WRITER.accessKey]: { secretKey: WRITER.secretKey, role: 'writer' },
  [READER.accessKey]: { secretKey: READER.secretKey, role: 'reader' },
})
const roles = slowTable({
  writer: { operations: '*' },
  reader: { operations: ['ListBuckets', 'ListObjectsV2', 'ListObjects', 'HeadObject', 'GetObject'] },
})
const vault = slowTable({ [BUCKET]: { accessKey: BACKEND.accessKey, secretKey: BACKEND.secretKey } })

const log = (callback, text) => console.log(`    [${callback}] ${text}`)

// ---------------------------------------------------------------------------
// The callbacks. Each may return a value or a Promise. A callback that throws
// or rejects fails the request with 500, and one that exceeds
// callbackTimeoutMs fails it with 503. The proxy caches secrets for
// secretCacheTtl, and decisions and backend keys for the bucket's ttl, but it
// never caches an unknown access key or a failure.

async function hmacFetcher(accessKey) {
  const row = await clientKeys.get(accessKey)
  log('hmacFetcher', `${accessKey}: ${row ? 'secret found' : 'unknown access key'}`)
  return row?.secretKey ?? null
}

async function bucketCredsFetcher(token, bucket) {
  const credentials = await vault.get(bucket)
  log('bucketCredsFetcher', `${bucket} for ${token}: ${credentials ? `backend key ${credentials.accessKey}` : 'none stored'}`)
  if (!credentials) throw new Error(`no backend credentials stored for bucket ${bucket}`)
  return credentials
}

async function validator(token, bucket, request) {
  const row = await clientKeys.get(token)
  const role = row ? await roles.get(row.role) : null
  const allowed = role !== null && (role.operations === '*' || role.operations.includes(request.operation))
  log('validator', `${row?.role ?? token} ${request.operation} ${bucket}/${request.key ?? ''}: ${allowed ? 'allowed' : 'denied'}`)
  return allowed
}

// ---------------------------------------------------------------------------
// The scripted round trip

function s3Client(endpoint, keys) {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: keys.accessKey, secretAccessKey: keys.secretKey },
    maxAttempts: 1,
  })
}

/** Sends `command` as `who`, prints the outcome and throws when it is not the `expected` one. */
async function attempt(expected, who, client, command, describe = () => '') {
  const name = command.constructor.name.replace(/Command$/, '')
  const target = `${command.input.Bucket}/${command.input.Key ?? ''}`
  console.log(`${who} ${name} ${target}`)
  let outcome
  let detail
  try {
    const output = await client.send(command)
    outcome = 'allowed'
    detail = await describe(output)
  } catch (error) {
    outcome = 'denied'
    detail = `${error.$metadata?.httpStatusCode} ${error.name}`
  }
  console.log(`  -> ${outcome.toUpperCase()}${detail ? `: ${detail}` : ''}`)
  if (outcome !== expected) throw new Error(`${who} ${name} ${target}: expected ${expected}, got ${outcome} (${detail})`)
}

async function roundTrip(endpoint) {
  const writer = s3Client(endpoint, WRITER)
  const reader = s3Client(endpoint, READER)
  const stranger = s3Client(endpoint, { accessKey: 'unknown-access-key', secretKey: 'unknown-secret-key' })
  const key = '2026/q1.csv'
  const text = async (output) => JSON.stringify(await output.Body.transformToString())
  try {
    await attempt('allowed', 'writer', writer, new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'region,revenue\neu,42\n' }))
    await attempt('allowed', 'reader', reader, new GetObjectCommand({ Bucket: BUCKET, Key: key }), text)
    await attempt('allowed', 'reader', reader, new ListObjectsV2Command({ Bucket: BUCKET }), (output) => output.Contents.map((item) => item.Key).join(', '))
    await attempt('denied', 'reader', reader, new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'overwritten' }))
    await attempt('denied', 'reader', reader, new DeleteObjectCommand({ Bucket: BUCKET, Key: key }))
    await attempt('denied', 'stranger', stranger, new GetObjectCommand({ Bucket: BUCKET, Key: key }))
    console.log('(the same read again, served from the proxy\'s caches, so no callback runs)')
    await attempt('allowed', 'reader', reader, new GetObjectCommand({ Bucket: BUCKET, Key: key }), text)
    await attempt('allowed', 'writer', writer, new DeleteObjectCommand({ Bucket: BUCKET, Key: key }))
  } finally {
    for (const client of [writer, reader, stranger]) client.destroy()
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'osp-callbacks-'))
let backend
let proxy
try {
  backend = await startLocalBackend({ dataDir, buckets: [BUCKET], keys: BACKEND })
  proxy = await startServer({
    listenAddress: HOST,
    httpPort: Number(options.port),
    // No accessKey or secretKey here, so the proxy calls bucketCredsFetcher for them.
    cosMap: { [BUCKET]: { host: HOST, port: backend.port, tls: false, addressingStyle: 'path' } },
    hmacFetcher,
    bucketCredsFetcher,
    validator,
    callbackTimeoutMs: 2000,
  })
  const endpoint = `http://${HOST}:${proxy.httpPort}`
  console.log(`proxy on ${endpoint}, s3s-fs on port ${backend.port}\n`)

  await roundTrip(endpoint)
  console.log('\nround trip complete')

  if (options.serve) {
    console.log(`
The proxy keeps running at ${endpoint} (bucket ${BUCKET}).
  writer (every operation): ${WRITER.accessKey} / ${WRITER.secretKey}
  reader (read-only):       ${READER.accessKey} / ${READER.secretKey}
Press Ctrl-C to stop.`)
    await new Promise((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
  }
} finally {
  if (proxy) await proxy.close()
  if (backend) await backend.stop()
  rmSync(dataDir, { recursive: true, force: true })
  console.log('stopped the proxy and s3s-fs, and removed', dataDir)
}

// Try it with the aws CLI:
//
//   node examples/callbacks.mjs --serve --port 9000
//
//   export AWS_DEFAULT_REGION=us-east-1
//   # The writer may do everything:
//   AWS_ACCESS_KEY_ID=writer-access-key AWS_SECRET_ACCESS_KEY=writer-secret-key-0123 \
//     aws --endpoint-url http://127.0.0.1:9000 s3 cp README.md s3://reports/README.md
//   # The reader may list and read:
//   export AWS_ACCESS_KEY_ID=reader-access-key AWS_SECRET_ACCESS_KEY=reader-secret-key-4567
//   aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://reports/
//   aws --endpoint-url http://127.0.0.1:9000 s3 cp s3://reports/README.md - | head -3
//   # but not write or delete (AccessDenied):
//   aws --endpoint-url http://127.0.0.1:9000 s3 cp README.md s3://reports/copy.md
//   aws --endpoint-url http://127.0.0.1:9000 s3 rm s3://reports/README.md
//   # An unknown access key gets 403 InvalidAccessKeyId:
//   AWS_ACCESS_KEY_ID=nobody AWS_SECRET_ACCESS_KEY=nothing aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://reports/
//
//   # Ctrl-C in the first shell stops the proxy and s3s-fs.
