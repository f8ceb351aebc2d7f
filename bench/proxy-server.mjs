// Runs the proxy alone in this process, so that its memory can be read from
// /proc/<pid>/status. The config is JSON, from the first argument or from the
// BENCH_PROXY_CONFIG environment variable. Prints one JSON line to stdout
// ({"port":N,"pid":N}) once the proxy listens. Closes the proxy and exits on
// SIGTERM or SIGINT, or when standard input ends (the parent went away).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

const text = process.argv[2] ?? process.env.BENCH_PROXY_CONFIG
if (!text) {
  console.error('proxy-server: pass the config as JSON in the first argument or in BENCH_PROXY_CONFIG')
  process.exit(2)
}

const addon = require('../index.js')
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

process.stdout.write(`${JSON.stringify({ port: server.httpPort, pid: process.pid })}\n`)
