// The main job end to end: a real S3 backend (s3s-fs, which checks SigV4
// with its own keys), the proxy in front of it with different client keys,
// and @aws-sdk/client-s3 uploading, listing, downloading and deleting
// objects through the proxy.
//
//   npm run demo                      round trip, then stop everything
//   npm run demo -- --serve           keep the backend and proxy running for
//                                     other clients (aws CLI, boto3) until Ctrl-C
//   npm run demo -- --serve --port 9000
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { ensureS3sFs } from '../scripts/tools.mjs'

const { startServer } = createRequire(import.meta.url)('../index.js')

const BUCKET = 'demo-bucket'
const BACKEND = { accessKey: 'backend-access-key', secretKey: 'backend-secret-key-do-not-share' }
const CLIENT = { accessKey: 'demo-client', secretKey: 'demo-client-secret' }

const { values: options } = parseArgs({
  options: { serve: { type: 'boolean', default: false }, port: { type: 'string', default: '0' } },
})

function step(message) {
  console.log(`==> ${message}`)
}

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function waitForPort(port, child, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`s3s-fs exited with code ${child.exitCode}`)
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`s3s-fs did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`)
}

async function startBackend(dataDir) {
  const binary = ensureS3sFs()
  mkdirSync(join(dataDir, BUCKET))
  const port = await freePort()
  const args = ['--host', '127.0.0.1', '--port', String(port), '--access-key', BACKEND.accessKey, '--secret-key', BACKEND.secretKey, dataDir]
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  await waitForPort(port, child)
  return { port, child }
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

async function roundTrip(endpoint) {
  const s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: CLIENT.accessKey, secretAccessKey: CLIENT.secretKey },
  })
  const objects = {
    'hello.txt': Buffer.from('Hello from object-storage-proxy\n'),
    'data/random-1mib.bin': randomBytes(1024 * 1024),
  }

  const buckets = await s3.send(new ListBucketsCommand({}))
  step(`ListBuckets: ${buckets.Buckets.map((bucket) => bucket.Name).join(', ')}`)

  for (const [key, body] of Object.entries(objects)) {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))
    step(`PutObject ${key}: ${body.length} bytes, sha256 ${sha256(body).slice(0, 16)}...`)
  }

  const listing = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))
  step(`ListObjectsV2: ${listing.Contents.map((item) => `${item.Key} (${item.Size} B)`).join(', ')}`)

  for (const [key, body] of Object.entries(objects)) {
    const response = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
    const downloaded = Buffer.from(await response.Body.transformToByteArray())
    if (!downloaded.equals(body)) throw new Error(`GetObject ${key}: downloaded bytes differ from the upload`)
    step(`GetObject ${key}: ${downloaded.length} bytes, identical to the upload`)
  }

  for (const key of Object.keys(objects)) {
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }))
    step(`DeleteObject ${key}`)
  }
  const after = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))
  step(`ListObjectsV2 after delete: ${after.KeyCount} objects`)
  s3.destroy()
}

const dataDir = mkdtempSync(join(tmpdir(), 'osp-demo-'))
let backend
let proxy
try {
  step('starting the S3 backend (s3s-fs, checks SigV4 with the backend keys)')
  backend = await startBackend(dataDir)
  step(`backend listening on http://127.0.0.1:${backend.port}`)

  proxy = await startServer({
    listenAddress: '127.0.0.1',
    httpPort: Number(options.port),
    cosMap: {
      [BUCKET]: {
        host: '127.0.0.1',
        port: backend.port,
        tls: false,
        addressingStyle: 'path',
        accessKey: BACKEND.accessKey,
        secretKey: BACKEND.secretKey,
      },
    },
    hmacKeystore: [CLIENT],
  })
  const endpoint = `http://127.0.0.1:${proxy.httpPort}`
  step(`proxy listening on ${endpoint} (clients sign with ${CLIENT.accessKey})`)

  await roundTrip(endpoint)
  step('round trip complete')

  if (options.serve) {
    console.log(`
The proxy keeps running. Try it with other clients:

  export AWS_ACCESS_KEY_ID=${CLIENT.accessKey} AWS_SECRET_ACCESS_KEY=${CLIENT.secretKey} AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url ${endpoint} s3 ls
  aws --endpoint-url ${endpoint} s3 cp ./README.md s3://${BUCKET}/README.md
  aws --endpoint-url ${endpoint} s3 ls s3://${BUCKET}/

Press Ctrl-C to stop.`)
    await new Promise((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
  }
} finally {
  if (proxy) {
    await proxy.close()
    step('proxy stopped')
  }
  if (backend) {
    backend.child.kill()
    step('backend stopped')
  }
  rmSync(dataDir, { recursive: true, force: true })
}
