// Runs the proxy alone in this process, so that its memory can be read from
// /proc/<pid>/status. The config is JSON, from the first argument or from the
// BENCH_PROXY_CONFIG environment variable. Prints one JSON line to stdout
// ({"port":N,"pid":N,"binary":{...}}) once the proxy listens. Closes the proxy and exits on
// SIGTERM or SIGINT, or when standard input ends (the parent went away).
import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

const text = process.argv[2] ?? process.env.BENCH_PROXY_CONFIG
if (!text) {
  console.error('proxy-server: pass the config as JSON in the first argument or in BENCH_PROXY_CONFIG')
  process.exit(2)
}

// The binary that this process loads, identified just before loading it, so
// that a rebuild during a benchmark run shows in the results.
const binaryPath = require.resolve('../object-storage-proxy.linux-x64-gnu.node')
const binary = { sha256: sha256Prefix(binaryPath), modified: statSync(binaryPath).mtime.toISOString() }
const addon = require('../index.js')

/**
 * Hashes a file through one 64 KiB buffer, so that the proxy's starting RSS
 * does not include a copy of the file, and returns the first 16 hex digits.
 */
function sha256Prefix(path) {
  const hash = createHash('sha256')
  const buffer = Buffer.alloc(64 * 1024)
  const fd = openSync(path, 'r')
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex').slice(0, 16)
}
if (typeof addon.startServer !== 'function') {
  console.error(`proxy-server: the addon exports no startServer (exports: ${Object.keys(addon).join(', ')})`)
  process.exit(3)
}

let server
try {
  server = await addon.startServer(JSON.parse(text))
} catch (error) {
  console.error(`proxy-server: startServer failed: ${error.code ?? ''} ${error.message}`)
  process.exit(1)
}

let closing = false
async function shutDown(reason) {
  if (closing) return
  closing = true
  console.error(`proxy-server: closing (${reason})`)
  try {
    await server.close()
  } catch (error) {
    console.error(`proxy-server: close failed: ${error.message}`)
    process.exit(1)
  }
  process.exit(0)
}

process.on('SIGTERM', () => shutDown('SIGTERM'))
process.on('SIGINT', () => shutDown('SIGINT'))
process.stdin.on('end', () => shutDown('standard input ended'))
process.stdin.on('error', () => shutDown('standard input failed'))
process.stdin.resume()

process.stdout.write(`${JSON.stringify({ port: server.httpPort, pid: process.pid, binary })}\n`)
