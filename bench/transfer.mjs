// Node HTTP clients for the benchmark: a GET that hashes or counts the body,
// a PUT that streams N bytes from one reused buffer, and helpers that run
// them in a bounded loop or all at once. Each request has a deadline and
// fails when it passes. Nothing retries.
import { createHash } from 'node:crypto'
import http from 'node:http'

// No pooling: each request gets its own connection, so that concurrent
// transfers are concurrent on the wire too.
const agent = new http.Agent({ keepAlive: false })

/** Computes the hex SHA-256 of `block` repeated to `size` bytes. */
export function repeatedSha256(block, size) {
  const hash = createHash('sha256')
  let left = size
  while (left > 0) {
    const n = Math.min(left, block.length)
    hash.update(n === block.length ? block : block.subarray(0, n))
    left -= n
  }
  return hash.digest('hex')
}

function withDeadline(request, deadlineMs, label) {
  const timer = setTimeout(
    () => request.destroy(new Error(`${label}: no response within ${Math.round(deadlineMs / 1000)} s`)),
    deadlineMs,
  )
  request.once('close', () => clearTimeout(timer))
}

/**
 * GETs a path and reads the whole body. Resolves with the status, the byte
 * count, the elapsed ms and, with `hash: true`, the body's SHA-256; with
 * `keepBody: true` (small objects only), the body itself.
 */
export function getObject({ port, path, headers, deadlineMs = 120_000, hash = false, keepBody = false }) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const request = http.request({ host: '127.0.0.1', port, method: 'GET', path, headers, agent }, (response) => {
      const digest = hash ? createHash('sha256') : null
      const chunks = []
      let bytes = 0
      response.on('data', (chunk) => {
        bytes += chunk.length
        digest?.update(chunk)
        if (keepBody || response.statusCode !== 200) chunks.push(chunk)
      })
      response.once('end', () =>
        resolve({
          status: response.statusCode,
          headers: response.headers,
          bytes,
          ms: performance.now() - started,
          sha256: digest?.digest('hex'),
          body: chunks.length ? Buffer.concat(chunks) : null,
        }),
      )
      response.once('error', reject)
    })
    withDeadline(request, deadlineMs, `GET ${path}`)
    request.once('error', reject)
    request.end()
  })
}

/**
 * PUTs `size` bytes made of `block` repeated, written as fast as the socket
 * takes them. Resolves with the status, the elapsed ms (until the whole
 * response arrived), the response headers and body.
 */
export function putObject({ port, path, headers, size, block, deadlineMs = 120_000 }) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const request = http.request(
      { host: '127.0.0.1', port, method: 'PUT', path, headers: { ...headers, 'content-length': size }, agent },
      (response) => {
        const chunks = []
        response.on('data', (chunk) => chunks.push(chunk))
        response.once('end', () =>
          resolve({
            status: response.statusCode,
            headers: response.headers,
            ms: performance.now() - started,
            body: Buffer.concat(chunks).toString('utf8'),
            written,
          }),
        )
        response.once('error', reject)
      },
    )
    withDeadline(request, deadlineMs, `PUT ${path}`)
    request.once('error', reject)
    let written = 0
    const pump = () => {
      while (written < size) {
        const n = Math.min(block.length, size - written)
        written += n
        if (!request.write(n === block.length ? block : block.subarray(0, n))) {
          request.once('drain', pump)
          return
        }
      }
      request.end()
    }
    pump()
  })
}

/**
 * Repeats `once()` one after another until at least `seconds` have passed
 * and at least `minCount` ran, at most `maxCount` times. `once` resolves
 * with the bytes it moved. Resolves with MiB/s over the whole loop.
 */
export async function timedLoop({ once, seconds, minCount = 2, maxCount = 50 }) {
  const started = performance.now()
  let count = 0
  let bytes = 0
  while (count < maxCount && (count < minCount || performance.now() - started < seconds * 1000)) {
    bytes += await once(count)
    count++
  }
  const elapsed = (performance.now() - started) / 1000
  return { count, bytes, seconds: elapsed, mibPerSec: bytes / elapsed / 2 ** 20 }
}
