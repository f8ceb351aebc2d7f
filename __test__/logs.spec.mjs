// What the proxy writes to its log: lifecycle lines and, when enabled, one
// access event per request, but never a secret, a signature or an
// Authorization header, even with every log level turned on.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'

import { BACKEND_SK, CLIENT_SK, startBackend } from './helpers.mjs'

const BUCKET = 'log-bucket'
const helpersUrl = new URL('./helpers.mjs', import.meta.url).href

/** Runs a child Node process that proxies a few requests, and returns its stderr. */
function runProxyChild(backendPort) {
  const script = `
    import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
    import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
    import { bucketConfig, makeClient, startProxy } from ${JSON.stringify(helpersUrl)}
    const proxy = await startProxy({ cosMap: { ${JSON.stringify(BUCKET)}: bucketConfig(${backendPort}) } })
    const client = makeClient(proxy.httpPort)
    await client.send(new PutObjectCommand({ Bucket: ${JSON.stringify(BUCKET)}, Key: 'a.txt', Body: 'logged' }))
    await client.send(new GetObjectCommand({ Bucket: ${JSON.stringify(BUCKET)}, Key: 'a.txt' }))
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: ${JSON.stringify(BUCKET)}, Key: 'a.txt' }))
    await fetch(url)
    const wrong = makeClient(proxy.httpPort, { secretKey: 'wrong-secret-value' })
    await wrong.send(new GetObjectCommand({ Bucket: ${JSON.stringify(BUCKET)}, Key: 'a.txt' })).catch(() => {})
    await proxy.close()
  `
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, RUST_LOG: 'trace', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(stderr)
      else reject(new Error(`child exited with ${code}: ${stderr.slice(-2000)}`))
    })
  })
}

describe('logs', () => {
  let backend
  let stderr

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET] })
    stderr = await runProxyChild(backend.port)
  })

  after(async () => {
    await backend?.stop()
  })

  test('trace logs hold no secrets or signatures', () => {
    assert.ok(stderr.length > 0)
    for (const secret of [CLIENT_SK, BACKEND_SK, 'wrong-secret-value']) {
      assert.ok(!stderr.includes(secret), `a secret appears in the log`)
    }
    assert.ok(!/Signature=[0-9a-f]{64}/.test(stderr), 'a header signature appears in the log')
    assert.ok(!/X-Amz-Signature=[0-9a-f]{64}/i.test(stderr), 'a presigned signature appears in the log')
    assert.ok(!/AWS4-HMAC-SHA256 Credential=/.test(stderr), 'an Authorization header appears in the log')
  })

  test('access events carry request id and status', () => {
    const access = stderr.split('\n').filter((line) => line.includes('object_storage_proxy::access'))
    assert.ok(access.length >= 4, `expected an access event per request, got ${access.length}`)
    assert.ok(access.some((line) => /request_id=\S+/.test(line) && /status=200/.test(line)))
    assert.ok(access.some((line) => /status=403/.test(line)), 'the rejected request is logged too')
  })

  test('start and stop are logged', () => {
    assert.match(stderr, /proxy server started/)
    assert.match(stderr, /proxy server stopped/)
  })
})
