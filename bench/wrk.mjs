// Runs wrk with one fixed request (method, path, headers) given through a Lua
// script, and reads its results from the script's done() hook as JSON.
// A run with any response outside 2xx/3xx, or any socket error, throws.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { trackChild } from './procs.mjs'

const luaString = (text) => JSON.stringify(String(text))

/** Returns the Lua script: the request, then a done() hook that prints one JSON line. */
export function wrkScript({ method = 'GET', path, headers }) {
  const lines = [`wrk.method = ${luaString(method)}`, `wrk.path = ${luaString(path)}`]
  for (const [name, value] of Object.entries(headers)) {
    // wrk adds its own Host unless the table has the key "Host" exactly.
    const key = name.toLowerCase() === 'host' ? 'Host' : name
    lines.push(`wrk.headers[${luaString(key)}] = ${luaString(value)}`)
  }
  lines.push(`
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`)
  return lines.join('\n')
}

/**
 * Runs `wrk -t1 -c<connections> -d<seconds>s --latency` against
 * http://host:port with the given request. `minBytesPerRequest` checks that
 * every response carried at least the object's bytes on average.
 * `allowNoneCompleted` accepts a run that only read part of one response
 * (a large object from a slow server); its bytes still count.
 * Resolves with requests/s, MiB/s, latency percentiles (ms) and the raw output.
 */
export function runWrk(wrkBinary, {
  port,
  host = '127.0.0.1',
  scheme = 'http',
  request,
  connections,
  seconds,
  timeoutSeconds = 10,
  folder,
  label,
  minBytesPerRequest = 0,
  allowReadErrors = false,
  allowNoneCompleted = false,
}) {
  const scriptFile = join(folder, `${label.replace(/[^a-z0-9]+/gi, '-')}.lua`)
  writeFileSync(scriptFile, wrkScript(request))
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    `--timeout`,
    `${timeoutSeconds}s`,
    '--latency',
    '-s',
    scriptFile,
    `${scheme}://${host}:${port}`,
  ]
  return new Promise((resolve, reject) => {
    const child = spawn(wrkBinary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    trackChild(child)
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    child.stderr.on('data', (chunk) => (out += chunk))
    // wrk stops itself after -d, so this only guards against a hung client.
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + timeoutSeconds + 30) * 1000)
    child.once('error', (error) => {
      clearTimeout(guard)
      reject(error)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(guard)
      const fail = (reason) => reject(new Error(`wrk ${label}: ${reason}\n$ wrk ${args.join(' ')}\n${out}`))
      if (code !== 0) return fail(`exited with ${code ?? signal}`)
      const match = out.match(/^WRK_RESULT (\{.*\})$/m)
      if (!match) return fail('printed no result line')
      const result = JSON.parse(match[1])
      if (/Non-2xx or 3xx responses/.test(out) || result.errors.status > 0) {
        return fail(`${result.errors.status} responses were not 2xx/3xx`)
      }
      const { connect, write, timeout, read } = result.errors
      if (connect + write + timeout > 0 || (read > 0 && !allowReadErrors)) {
        return fail(`socket errors ${JSON.stringify(result.errors)}`)
      }
      if (result.requests === 0 && !(allowNoneCompleted && result.bytes > 0)) return fail('completed no request')
      const bytesPerRequest = result.bytes / Math.max(result.requests, 1)
      if (bytesPerRequest < minBytesPerRequest) {
        return fail(`responses averaged ${bytesPerRequest.toFixed(0)} bytes, expected at least ${minBytesPerRequest}`)
      }
      const secondsRun = result.durationUs / 1e6
      const ms = (us) => us / 1000
      resolve({
        requests: result.requests,
        seconds: secondsRun,
        requestsPerSec: result.requests / secondsRun,
        mibPerSec: result.bytes / secondsRun / 2 ** 20,
        bytes: result.bytes,
        latencyMs: {
          p50: ms(result.latencyUs.p50),
          p90: ms(result.latencyUs.p90),
          p99: ms(result.latencyUs.p99),
          max: ms(result.latencyUs.max),
          mean: ms(result.latencyUs.mean),
        },
        readErrors: read,
        command: `wrk ${args.slice(0, -3).join(' ')} -s <script> http://${host}:${port}`,
      })
    })
  })
}
