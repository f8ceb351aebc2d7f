// startServer / close: ports, config validation, draining on close, process
// lifetime, and the Node event loop while the proxy serves.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'

import {
  CLIENT_AK,
  CLIENT_SK,
  HOST,
  bucketConfig,
  canConnect,
  canListen,
  cosMapFor,
  makeClient,
  presignUrl,
  randomBody,
  readAll,
  sha256,
  signRequest,
  startBackend,
  startProxy,
  startServer,
} from './helpers.mjs'

const BUCKET = 'lifecycle-bucket'
const MiB = 1024 * 1024
const ADDON = fileURLToPath(new URL('../index.js', import.meta.url))

/** Returns a complete, valid config; each invalid case changes one thing in it. */
function validConfig() {
  return {
    listenAddress: HOST,
    httpPort: 0,
    cosMap: { [BUCKET]: bucketConfig(1) },
    hmacKeystore: [{ accessKey: CLIENT_AK, secretKey: CLIENT_SK }],
  }
}

/**
 * Calls startServer and returns how its promise settled. A synchronous throw
 * fails the test: the contract returns a promise that rejects.
 */
async function settle(config) {
  let promise
  try {
    promise = startServer(config)
  } catch (err) {
    assert.fail(`startServer threw synchronously (${err.code}: ${err.message}) instead of returning a rejected promise`)
  }
  assert.equal(typeof promise?.then, 'function', 'startServer did not return a promise')
  try {
    const server = await promise
    await server.close()
    return { server }
  } catch (error) {
    return { error }
  }
}

async function assertInvalidConfig(config, field) {
  const { error } = await settle(config)
  assert.ok(error, `startServer accepted the config; expected ERR_INVALID_CONFIG naming ${field}`)
  assert.equal(error.code, 'ERR_INVALID_CONFIG', `code of: ${error.message}`)
  assert.ok(error.message.includes(field), `message does not name ${field}: ${error.message}`)
}

/** Runs a node script that uses the addon; resolves { code, stdout, stderr, timedOut }. */
function runNode(script, timeoutMs, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, ADDON_PATH: ADDON, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      process.kill(child.pid, 'SIGKILL')
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, timedOut })
    })
  })
}

const START_IN_CHILD = `
const { startServer } = require(process.env.ADDON_PATH)
startServer({
  listenAddress: '127.0.0.1',
  httpPort: 0,
  cosMap: { b: { host: '127.0.0.1', port: 1, tls: false, addressingStyle: 'path', accessKey: 'k', secretKey: 's' } },
  hmacKeystore: [{ accessKey: 'a', secretKey: 's' }],
}).then(async (server) => {
  console.log('listening ' + server.httpPort)
  if (process.env.CLOSE !== 'no') {
    await server.close()
    console.log('closed')
  }
}, (err) => { console.error(err); process.exit(2) })
`

describe('server lifecycle', { timeout: 120_000 }, () => {
  let backend

  before(async () => {
    backend = await startBackend({ buckets: [BUCKET] })
  })

  after(async () => {
    await backend?.stop()
  })

  test('httpPort 0 resolves with the real port', async (t) => {
    const server = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    t.after(() => server.close())
    assert.equal(typeof server.httpPort, 'number')
    assert.ok(server.httpPort > 0, `httpPort ${server.httpPort}`)
    assert.equal(server.httpsPort, null)
    assert.equal(await canConnect(server.httpPort), true)
  })

  test('two servers in one process both serve', async (t) => {
    const first = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    t.after(() => first.close())
    const second = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    t.after(() => second.close())
    assert.notEqual(first.httpPort, second.httpPort)
    const body = Buffer.from('seen through both servers')
    const a = makeClient(first.httpPort)
    const b = makeClient(second.httpPort)
    try {
      await a.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'two-servers.txt', Body: body }))
      const out = await b.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'two-servers.txt' }))
      assert.deepEqual(await readAll(out.Body), body)
    } finally {
      a.destroy()
      b.destroy()
    }
  })

  test('close() frees the port', async () => {
    const server = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    const port = server.httpPort
    await server.close()
    assert.equal(await canConnect(port), false, 'the port still accepts connections after close()')
    assert.equal(await canListen(port), true, 'a new server cannot listen on the port after close()')
  })

  test('busy port rejects at once with ERR_ADDRESS_IN_USE', async (t) => {
    const blocker = net.createServer()
    await new Promise((resolve) => blocker.listen(0, HOST, resolve))
    t.after(() => new Promise((resolve) => blocker.close(resolve)))
    const port = blocker.address().port
    const started = Date.now()
    const { error } = await settle({ ...validConfig(), httpPort: port })
    const elapsed = Date.now() - started
    assert.ok(error, 'startServer succeeded on a busy port')
    assert.equal(error.code, 'ERR_ADDRESS_IN_USE', error.message)
    assert.ok(error.message.includes(String(port)), `message does not name port ${port}: ${error.message}`)
    assert.ok(error.message.includes(HOST), `message does not name ${HOST}: ${error.message}`)
    assert.ok(elapsed < 5000, `took ${elapsed} ms to reject`)
  })

  describe('invalid config rejects with ERR_INVALID_CONFIG naming the field', () => {
    test('missing cosMap', async () => {
      const config = validConfig()
      delete config.cosMap
      await assertInvalidConfig(config, 'cosMap')
    })

    test('a bucket without host', async () => {
      const { host, ...noHost } = bucketConfig(1)
      assert.ok(host)
      await assertInvalidConfig({ ...validConfig(), cosMap: { [BUCKET]: noHost } }, 'host')
    })

    test('an unknown top-level key', async () => {
      await assertInvalidConfig({ ...validConfig(), cosMapp: {} }, 'cosMapp')
    })

    test('an unknown bucket key', async () => {
      await assertInvalidConfig({ ...validConfig(), cosMap: { [BUCKET]: { ...bucketConfig(1), hots: 'x' } } }, 'hots')
    })

    test('neither httpPort nor httpsPort', async () => {
      const config = validConfig()
      delete config.httpPort
      await assertInvalidConfig(config, 'httpPort')
    })

    test('httpPort out of range', async () => {
      await assertInvalidConfig({ ...validConfig(), httpPort: 70000 }, 'httpPort')
      await assertInvalidConfig({ ...validConfig(), httpPort: -1 }, 'httpPort')
    })

    test('a bucket port out of range', async () => {
      await assertInvalidConfig({ ...validConfig(), cosMap: { [BUCKET]: bucketConfig(70000) } }, 'port')
    })

    test('httpPort of the wrong type', async () => {
      await assertInvalidConfig({ ...validConfig(), httpPort: 'x' }, 'httpPort')
    })

    for (const name of ['validator', 'bucketCredsFetcher', 'hmacFetcher']) {
      test(`${name} that is not a function`, async () => {
        await assertInvalidConfig({ ...validConfig(), [name]: 'yes' }, name)
      })
    }

    test('caCert that is not PEM', async () => {
      const error = await startServer({ ...validConfig(), caCert: 'not a certificate' }).then(
        (server) => server.close().then(() => assert.fail('caCert was accepted')),
        (rejection) => rejection,
      )
      assert.equal(error.code, 'ERR_INVALID_TLS')
      assert.match(error.message, /caCert/)
    })

    test('iamEndpoint that is not a URL', async () => {
      await assertInvalidConfig({ ...validConfig(), iamEndpoint: 'iam.cloud.ibm.com' }, 'iamEndpoint')
    })

    test('bucket with apiKey and accessKey', async () => {
      await assertInvalidConfig({ ...validConfig(), cosMap: { [BUCKET]: { ...bucketConfig(1), apiKey: 'k' } } }, 'apiKey')
    })

    test('streamingUploads that is not a mode', async () => {
      const bucket = { ...bucketConfig(1), streamingUploads: 'raw' }
      await assertInvalidConfig({ ...validConfig(), cosMap: { [BUCKET]: bucket } }, 'streamingUploads')
    })
  })

  test('close() lets a large download finish', async (t) => {
    const body = randomBody(32 * MiB)
    await writeFile(backend.objectPath(BUCKET, 'large.bin'), body)
    const server = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    let closing
    t.after(() => closing ?? server.close())
    const signed = signRequest({ host: `${HOST}:${server.httpPort}`, path: `/${BUCKET}/large.bin` })
    let closeSettledAt
    const received = await new Promise((resolve, reject) => {
      const req = http.request(
        { host: HOST, port: server.httpPort, path: signed.path, headers: signed.headers, agent: false },
        (res) => {
          if (res.statusCode !== 200) {
            readAll(res).then((b) => reject(new Error(`GET returned ${res.statusCode}: ${b}`)), reject)
            return
          }
          const chunks = []
          res.once('data', async (first) => {
            chunks.push(first)
            res.pause()
            closing = server.close().then(() => {
              closeSettledAt = Date.now()
            })
            await sleep(1000)
            res.on('data', (chunk) => chunks.push(chunk))
            res.resume()
          })
          res.on('end', () => resolve({ bytes: Buffer.concat(chunks), endedAt: Date.now() }))
          res.on('error', reject)
        },
      )
      req.setTimeout(30_000, () => req.destroy(new Error('download timed out')))
      req.on('error', reject)
      req.end()
    })
    assert.ok(closing, 'close() was never called')
    await closing
    assert.equal(received.bytes.length, body.length)
    assert.equal(sha256(received.bytes), sha256(body))
    // close() resolving long before the last byte means it did not wait for the download.
    assert.ok(closeSettledAt >= received.endedAt - 500, 'close() resolved before the download ended')
    assert.equal(await canConnect(server.httpPort), false, 'the port still accepts connections after close()')
  })

  test('process exits by itself after close()', async () => {
    const result = await runNode(START_IN_CHILD, 15_000)
    assert.equal(result.timedOut, false, `the process did not exit; stdout: ${result.stdout} stderr: ${result.stderr}`)
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /listening \d+/)
    assert.match(result.stdout, /closed/)
  })

  test('running server keeps the process alive', async () => {
    const result = await runNode(START_IN_CHILD, 3000, { CLOSE: 'no' })
    assert.match(result.stdout, /listening \d+/, result.stderr)
    assert.equal(result.timedOut, true, `the process exited with ${result.code} while its server was open`)
  })

  test('event loop stays responsive under 200 GETs', async (t) => {
    const server = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]) })
    t.after(() => server.close())
    const body = randomBody(64 * 1024)
    await writeFile(backend.objectPath(BUCKET, 'small.bin'), body)
    const { path } = presignUrl({ host: `${HOST}:${server.httpPort}`, path: `/${BUCKET}/small.bin` })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
    t.after(() => agent.destroy())

    let last = performance.now()
    let longestGap = 0
    const ticker = setInterval(() => {
      const now = performance.now()
      longestGap = Math.max(longestGap, now - last)
      last = now
    }, 10)
    const get = () =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: HOST, port: server.httpPort, path, agent }, (res) => {
          readAll(res).then((bytes) => resolve({ status: res.statusCode, bytes }), reject)
        })
        req.setTimeout(15_000, () => req.destroy(new Error('GET timed out')))
        req.on('error', reject)
      })
    let results
    try {
      results = await Promise.all(Array.from({ length: 200 }, get))
    } finally {
      clearInterval(ticker)
    }
    const failed = results.filter((r) => r.status !== 200 || !r.bytes.equals(body))
    assert.equal(failed.length, 0, `first failure: ${failed[0]?.status} ${failed[0]?.bytes.subarray(0, 200)}`)
    assert.ok(longestGap < 200, `the longest gap between 10 ms ticks was ${longestGap.toFixed(1)} ms`)
  })
})
