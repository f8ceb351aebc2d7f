// One process, one set of access rules: an Express API that guards its routes
// with bearer tokens, and the S3 proxy beside it, whose validator calls the
// same authorization function. Each user has an API token for Express and an
// S3 access key pair for the proxy, and both lead to the same grants.
//
//   node examples/express.mjs                           free ports, printed at start
//   PROXY_PORT=9000 API_PORT=3000 node examples/express.mjs
//
// The commands to try it are at the end of this file.
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import express from 'express'
import { startLocalBackend } from './local-backend.mjs'

const { startServer } = createRequire(import.meta.url)('../index.js')

const HOST = '127.0.0.1'
const BUCKET = 'demo-bucket'
const BUCKETS = [BUCKET, 'team-bucket']
// The backend's own keys. Only the proxy signs with them, and no user sees them.
const BACKEND = { accessKey: 'backend-access-key', secretKey: 'backend-secret-key-do-not-share' }

// The application's user table. A grant allows every key in `bucket` (or in
// every bucket for '*') that starts with `prefix`.
const USERS = [
  { name: 'alice', apiToken: 'alice-api-token', accessKey: 'alice-access-key', secretKey: 'alice-secret-key-0123', grants: [{ bucket: BUCKET, prefix: 'alice/' }] },
  { name: 'bob', apiToken: 'bob-api-token', accessKey: 'bob-access-key', secretKey: 'bob-secret-key-4567', grants: [{ bucket: BUCKET, prefix: 'bob/' }] },
  { name: 'admin', apiToken: 'admin-api-token', accessKey: 'admin-access-key', secretKey: 'admin-secret-key-89ab', grants: [{ bucket: '*', prefix: '' }] },
]
const usersByToken = new Map(USERS.map((user) => [user.apiToken, user]))
const usersByAccessKey = new Map(USERS.map((user) => [user.accessKey, user]))

/**
 * Returns true when `user` may access `key` in `bucket`. A listing passes its
 * prefix as `key`. A null key only checks for a grant in the bucket (ListBuckets).
 */
function authorize(user, bucket, key) {
  return user.grants.some((grant) => {
    if (grant.bucket !== '*' && grant.bucket !== bucket) return false
    return key === null || key.startsWith(grant.prefix)
  })
}

// ---------------------------------------------------------------------------
// The proxy's callbacks: S3 access key -> user -> authorize()

/** Looks up the secret of an S3 access key, as a query to a user store would. */
async function findSecret(accessKey) {
  await sleep(10)
  return usersByAccessKey.get(accessKey)?.secretKey ?? null
}

/** Checks every object key an S3 request touches against the caller's grants. */
function validateS3Request(accessKey, bucket, request) {
  const user = usersByAccessKey.get(accessKey)
  if (!user) return false
  if (request.operation === 'ListBuckets') return authorize(user, bucket, null)

  const targets = [[bucket, request.key ?? request.query.prefix ?? '']]
  if (request.copySource) targets.push([request.copySource.bucket, request.copySource.key])
  for (const key of request.deleteKeys ?? []) targets.push([bucket, key])
  const allowed = targets.every(([targetBucket, key]) => authorize(user, targetBucket, key))
  const where = targets.map(([targetBucket, key]) => `${targetBucket}/${key}`).join(', ')
  console.log(`[validator] ${user.name} ${request.operation} ${where}: ${allowed ? 'allowed' : 'denied'}`)
  return allowed
}

// ---------------------------------------------------------------------------
// The Express API: bearer token -> user -> authorize()

/** Sets `req.user` from the bearer token, or responds with 401. */
function authenticate(req, res, next) {
  const match = /^Bearer (\S+)$/i.exec(req.get('authorization') ?? '')
  const user = match ? usersByToken.get(match[1]) : undefined
  if (!user) {
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'missing or unknown bearer token' })
    return
  }
  req.user = user
  next()
}

/**
 * Creates the Express app. `clients` contains one S3 client per user, signing
 * with that user's own keys, so that the proxy checks each read once more.
 */
function createApi(clients) {
  const app = express()
  app.use(authenticate)

  app.get('/whoami', (req, res) => {
    const { name, accessKey, grants } = req.user
    res.json({ user: name, s3AccessKey: accessKey, grants })
  })

  app.get('/files/*key', async (req, res) => {
    const key = req.params.key.join('/')
    if (!authorize(req.user, BUCKET, key)) {
      res.status(403).json({ error: `${req.user.name} may not read ${BUCKET}/${key}` })
      return
    }
    try {
      const object = await clients.get(req.user.name).send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      res.type(object.ContentType ?? 'application/octet-stream')
      await pipeline(object.Body, res)
    } catch (error) {
      if (error.name !== 'NoSuchKey') throw error
      res.status(404).json({ error: `${BUCKET}/${key} not found` })
    }
  })

  app.use((error, req, res, next) => {
    console.error(`[api] ${req.method} ${req.path} failed:`, error)
    res.status(500).json({ error: error.message })
  })
  return app
}

function s3Client(endpoint, user) {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKey, secretAccessKey: user.secretKey },
  })
}

const dataDir = mkdtempSync(join(tmpdir(), 'osp-express-'))
let backend
let proxy
let server
let clients
try {
  backend = await startLocalBackend({ dataDir, buckets: BUCKETS, keys: BACKEND })
  const bucketConfig = {
    host: HOST,
    port: backend.port,
    tls: false,
    addressingStyle: 'path',
    ...BACKEND,
    // Decisions are cached for 60 s per access key, bucket, operation, key,
    // query (so per listing prefix) and source IP.
    ttl: 60,
  }
  proxy = await startServer({
    listenAddress: HOST,
    httpPort: Number(process.env.PROXY_PORT ?? 0),
    cosMap: Object.fromEntries(BUCKETS.map((bucket) => [bucket, bucketConfig])),
    hmacFetcher: findSecret,
    validator: validateS3Request,
  })
  const proxyEndpoint = `http://${HOST}:${proxy.httpPort}`

  clients = new Map(USERS.map((user) => [user.name, s3Client(proxyEndpoint, user)]))
  const app = createApi(clients)
  await new Promise((resolve, reject) => {
    server = app.listen(Number(process.env.API_PORT ?? 0), HOST, (error) => (error ? reject(error) : resolve()))
  })

  // Something to read: one object each for alice and bob, written with the admin's keys.
  for (const name of ['alice', 'bob']) {
    const body = `Hello ${name}, this object is in ${BUCKET}/${name}/\n`
    await clients.get('admin').send(new PutObjectCommand({ Bucket: BUCKET, Key: `${name}/hello.txt`, Body: body }))
  }

  console.log(`
S3 proxy     ${proxyEndpoint}   (backend s3s-fs on port ${backend.port}, keys only the proxy has)
Express API  http://${HOST}:${server.address().port}   (GET /whoami, GET /files/<key> in ${BUCKET})

user    API token          S3 access key       S3 secret key           grants`)
  for (const user of USERS) {
    const grants = user.grants.map((grant) => `${grant.bucket}/${grant.prefix}*`).join(' ')
    console.log(`${user.name.padEnd(8)}${user.apiToken.padEnd(19)}${user.accessKey.padEnd(20)}${user.secretKey.padEnd(24)}${grants}`)
  }
  console.log('\nPress Ctrl-C to stop.')

  await new Promise((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
} finally {
  if (server?.listening) await new Promise((resolve) => server.close(resolve))
  for (const client of clients?.values() ?? []) client.destroy()
  if (proxy) await proxy.close()
  if (backend) await backend.stop()
  rmSync(dataDir, { recursive: true, force: true })
  console.log('stopped the API, the proxy and s3s-fs, and removed', dataDir)
}

// Try it (ports fixed so that the commands below work as written):
//
//   PROXY_PORT=9000 API_PORT=3000 node examples/express.mjs
//
//   # The API, with bearer tokens:
//   curl -s -H 'Authorization: Bearer alice-api-token' http://127.0.0.1:3000/whoami
//   curl -s -H 'Authorization: Bearer alice-api-token' http://127.0.0.1:3000/files/alice/hello.txt
//   curl -s -H 'Authorization: Bearer alice-api-token' http://127.0.0.1:3000/files/bob/hello.txt   # 403
//   curl -s http://127.0.0.1:3000/whoami                                                         # 401
//
//   # S3 through the proxy, with alice's keys and the same rules:
//   export AWS_ACCESS_KEY_ID=alice-access-key AWS_SECRET_ACCESS_KEY=alice-secret-key-0123 AWS_DEFAULT_REGION=us-east-1
//   aws --endpoint-url http://127.0.0.1:9000 s3 ls                                  # demo-bucket only
//   aws --endpoint-url http://127.0.0.1:9000 s3 cp README.md s3://demo-bucket/alice/README.md
//   aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://demo-bucket/alice/
//   aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://demo-bucket/bob/            # AccessDenied
//   aws --endpoint-url http://127.0.0.1:9000 s3 cp s3://demo-bucket/bob/hello.txt - # 403 Forbidden
//   curl -s -H 'Authorization: Bearer alice-api-token' http://127.0.0.1:3000/files/alice/README.md
//
//   # The admin may list every bucket and key:
//   AWS_ACCESS_KEY_ID=admin-access-key AWS_SECRET_ACCESS_KEY=admin-secret-key-89ab \
//     aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://demo-bucket/ --recursive
//
//   # Ctrl-C in the first shell stops the API, the proxy and s3s-fs.
