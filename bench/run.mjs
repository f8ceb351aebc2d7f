// The benchmark: `npm run bench`. In one run it measures the same requests
// straight to an origin and through the proxy, and reports proxy / direct
// ratios against the targets:
// - small GETs: requests/s with 32 connections, p50/p99 latency with 1 and 32
// - large GET and PUT throughput in MiB/s, one stream
// - the proxy's RSS before, during and after concurrent large transfers, and
//   during one 5 GiB PUT and one 5 GiB GET
// Origins: nginx (fast, ignores signatures, and the targets use it) and
// s3s-fs (checks signatures, slow on its own, reported for reference). nginx
// as a plain reverse proxy is measured in the nginx scenarios for reference.
// Everything listens on 127.0.0.1, and every load has a time or count bound.
// Settings come from the BENCH_* environment variables read into SETTINGS,
// and BENCH_ONLY selects phases from PHASES.
import { randomBytes } from 'node:crypto'
import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { ensureBenchTools } from '../scripts/tools.mjs'
import {
  cpuSeconds,
  describeMachine,
  machineCpuSeconds,
  otherCpuPct,
  selfAndReapedChildrenSeconds,
} from './machine.mjs'
import { startNginx, startPassthrough, startPingoraFloor, startS3sFs, writeObject, writeSparseObject } from './origins.mjs'
import { memoryOf, resetPeakRss, startChild, tempFolder } from './procs.mjs'
import { signRequest, UNSIGNED_PAYLOAD } from './sigv4.mjs'
import { getObject, putObject, repeatedSha256, timedLoop } from './transfer.mjs'
import { runWrk } from './wrk.mjs'

const benchDir = dirname(fileURLToPath(import.meta.url))
const root = join(benchDir, '..')
const require = createRequire(import.meta.url)

const MiB = 2 ** 20
const GiB = 2 ** 30
const REGION = 'us-east-1'
const CLIENT = { accessKey: 'bench-client', secretKey: 'bench-client-secret-0123456789' }
const S3S = { accessKey: 'bench-s3s-fs', secretKey: 'bench-s3s-fs-secret-0123456789' }
const FAST_BUCKET = 'fast-origin'
const S3S_BUCKET = 's3s-origin'
const SMALL_KEY = 'small.bin'
const LARGE_KEY = 'large.bin'
const CONCURRENT_KEY = 'concurrent.bin'
const PUT_KEY = 'upload.bin'
// The largest object that one S3 PUT may upload, 5 GiB, moved in one stream.
const SINGLE_SIZE = 5 * GiB
const SINGLE_KEY = 'single-5gib.bin'
const PASSTHROUGH = 'nginx passthrough'
const BARE_PINGORA = 'bare pingora t1'

// Parts of the run that BENCH_ONLY can select (comma-separated); all by default.
const PHASES = {
  throughput: 'nginx scenarios through the proxy (the targets)',
  passthrough: 'nginx scenarios through nginx as a plain reverse proxy (reference)',
  pingora: 'nginx scenarios through a bare pingora proxy with one thread (reference)',
  s3s: 's3s-fs scenarios (reference)',
  concurrent: 'proxy RSS during concurrent large GETs and PUTs',
  '5gib': 'proxy RSS during one 5 GiB PUT and one 5 GiB GET',
}

// ---------------------------------------------------------------------------
// Settings

const env = process.env
const full = env.BENCH_FULL === '1'
const number = (name, fallback) => {
  if (env[name] === undefined || env[name] === '') return fallback
  const value = Number(env[name])
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${env[name]}`)
  return value
}

/** Returns the phases that BENCH_ONLY lists, or all of them when it is unset or empty. */
function selectedPhases(text) {
  const all = Object.keys(PHASES)
  const names = (text ?? '').split(',').map((name) => name.trim()).filter(Boolean)
  if (names.length === 0) return all
  const unknown = names.filter((name) => !all.includes(name))
  if (unknown.length > 0) {
    throw new Error(`BENCH_ONLY contains unknown phases ${unknown.join(', ')}. Use a comma-separated list of: ${all.join(', ')}`)
  }
  return all.filter((name) => names.includes(name))
}

const SETTINGS = {
  phases: selectedPhases(env.BENCH_ONLY),
  seconds: number('BENCH_SECONDS', 10), // each wrk run
  connections: number('BENCH_CONNECTIONS', 32), // wrk connections for small-GET throughput
  smallBytes: number('BENCH_SMALL_BYTES', 4096),
  largeMiB: number('BENCH_LARGE_MIB', 256), // large GET/PUT object size
  putSeconds: number('BENCH_PUT_SECONDS', 6), // sequential PUTs for at least this long (and at least 2)
  s3sSeconds: number('BENCH_S3S_SECONDS', 5), // each s3s-fs GET run
  rounds: number('BENCH_ROUNDS', 2), // rounds of the nginx scenarios
  concurrency: number('BENCH_CONCURRENCY', full ? 64 : 16), // concurrent transfers in the RSS phase
  concurrentMiB: number('BENCH_CONCURRENT_MIB', full ? 1024 : 256), // size of each of them
  passthroughBufferKiB: number('BENCH_PASSTHROUGH_BUFFER_KIB', 64), // size of nginx passthrough's body buffers
  threads: (env.BENCH_THREADS ?? '1,2').split(',').filter(Boolean).map(Number),
  s3sFs: env.BENCH_S3S !== '0',
  directOnly: env.BENCH_DIRECT_ONLY === '1',
  timeoutSeconds: number('BENCH_TIMEOUT_S', full ? 7200 : 1800),
  quietBudgetSeconds: number('BENCH_QUIET_BUDGET_S', 300), // total wait for other processes to go idle
  mode: full ? 'full (BENCH_FULL=1)' : 'default',
}
if (!Number.isInteger(SETTINGS.passthroughBufferKiB)) {
  throw new Error(`BENCH_PASSTHROUGH_BUFFER_KIB must be a positive integer, got ${env.BENCH_PASSTHROUGH_BUFFER_KIB}`)
}
if (!Number.isInteger(SETTINGS.rounds)) throw new Error(`BENCH_ROUNDS must be a positive integer, got ${env.BENCH_ROUNDS}`)
for (const t of SETTINGS.threads) {
  if (!Number.isInteger(t) || t < 1) throw new Error(`BENCH_THREADS must list positive integers, got ${env.BENCH_THREADS}`)
}

const TARGETS = {
  smallRps: 0.6, // proxy/direct requests/s
  addedP99Ms: 1, // proxy p99 - direct p99
  largeGet: 0.65,
  largePut: 0.65,
  rssGrowthMiB: 64, // for 64 concurrent 1 GiB transfers, and for one 5 GiB PUT and GET
}

const runsPhase = (name) => SETTINGS.phases.includes(name)

const log = (...args) => console.error('[bench]', ...args)

const watchdog = setTimeout(() => {
  console.error(`[bench] still running after ${SETTINGS.timeoutSeconds} s (BENCH_TIMEOUT_S); stopping`)
  process.exit(1)
}, SETTINGS.timeoutSeconds * 1000)
watchdog.unref()

// ---------------------------------------------------------------------------
// Targets: where a request goes and how it is signed

/** Returns a place to send requests: straight to an origin or through one proxy. */
function makeTarget({ name, kind, port, keys, bucket, pid, originPids }) {
  return { name, kind, port, keys, bucket, pid, originPids }
}

/** Returns the signed headers and path for one request to `target`. */
function signFor(target, { method, key, payloadHash, extraHeaders = {} }) {
  const signed = signRequest({
    method,
    host: `127.0.0.1:${target.port}`,
    path: `/${target.bucket}/${key}`,
    headers: extraHeaders,
    payloadHash,
    accessKey: target.keys.accessKey,
    secretKey: target.keys.secretKey,
    region: REGION,
  })
  return { path: signed.path, headers: signed.headers }
}

// Every long-running process this run started (nginx master and worker,
// s3s-fs, each proxy), so that CPU used by other processes can be separated out.
const ownPids = []

/**
 * Runs `fn` and adds the CPU shares used meanwhile (100 = one core): the
 * proxy under test, the origin, the client (this process and the wrk runs
 * that ended), everything else on the machine (other processes and
 * interrupt work not charged to ours), and time stolen by the hypervisor.
 */
async function withCpu(target, fn) {
  const quiet = await awaitQuiet()
  const measured = [...(target.pid ? [target.pid] : []), ...target.originPids]
  const before = measured.map(cpuSeconds)
  const ownBefore = ownPids.map(cpuSeconds)
  const machineBefore = machineCpuSeconds()
  const clientBefore = selfAndReapedChildrenSeconds()
  const started = performance.now()
  const result = await fn()
  const wall = (performance.now() - started) / 1000
  const machine = machineCpuSeconds()
  const pct = (seconds) => Math.round((seconds / wall) * 100)
  const delta = (pids, base) => pids.reduce((sum, pid, i) => sum + (cpuSeconds(pid) - base[i] || 0), 0)
  const client = selfAndReapedChildrenSeconds() - clientBefore
  const cpu = {}
  let first = 0
  if (target.pid) cpu.proxyPct = pct(cpuSeconds(target.pid) - before[first++])
  cpu.originPct = pct(delta(measured.slice(first), before.slice(first)))
  cpu.clientPct = pct(client)
  const busy = machine.processes + machine.interrupts - machineBefore.processes - machineBefore.interrupts
  cpu.otherPct = pct(busy - client - delta(ownPids, ownBefore))
  cpu.stealPct = pct(machine.steal - machineBefore.steal)
  return { ...result, cpu, quiet }
}

let quietBudgetSeconds = SETTINGS.quietBudgetSeconds

/**
 * Waits until other processes use at most 10% of a core over one second,
 * so that a load does not share the CPUs with a build or a test run. Gives
 * up when the run's budget for waiting (BENCH_QUIET_BUDGET_S) is spent, and
 * returns the seconds waited and the last share seen.
 */
async function awaitQuiet() {
  const started = performance.now()
  let otherPct = await otherCpuPct(ownPids, 1000)
  let logged = false
  while (otherPct > 10 && quietBudgetSeconds - (performance.now() - started) / 1000 > 0) {
    if (!logged) log(`waiting for other processes to go idle (they use ${otherPct}% of a core)`)
    logged = true
    otherPct = await otherCpuPct(ownPids, 1000)
  }
  const waited = (performance.now() - started) / 1000 - 1
  quietBudgetSeconds -= Math.max(0, waited)
  if (otherPct > 10) log(`measuring anyway: other processes use ${otherPct}% of a core and the waiting budget is spent`)
  return { waitedSeconds: Math.round(waited), otherPctBefore: otherPct }
}

// ---------------------------------------------------------------------------
// Checks that run before each load, so that a load never measures errors

async function checkSmallGet(target, expected) {
  const { path, headers } = signFor(target, { method: 'GET', key: SMALL_KEY })
  const got = await getObject({ port: target.port, path, headers, keepBody: true, deadlineMs: 10_000 })
  if (got.status !== 200 || !got.body?.equals(expected)) {
    throw new Error(
      `${target.name}: GET ${path} returned status ${got.status} with ${got.bytes} bytes` +
        ` (expected 200 and the ${expected.length}-byte object): ${got.body?.toString('utf8', 0, 600) ?? ''}`,
    )
  }
}

/** GETs one object and checks the status, the length and, when `sha256` is given, the SHA-256. */
async function getChecked(target, { key, size, sha256, deadlineMs }) {
  const { path, headers } = signFor(target, { method: 'GET', key })
  const got = await getObject({ port: target.port, path, headers, hash: Boolean(sha256), deadlineMs })
  if (got.status !== 200 || got.bytes !== size || (sha256 && got.sha256 !== sha256)) {
    const hashes = sha256 ? [`, SHA-256 ${got.sha256}`, `, ${sha256}`] : ['', '']
    throw new Error(
      `${target.name}: GET ${path} returned status ${got.status} with ${got.bytes} bytes${hashes[0]}` +
        ` (expected 200, ${size} bytes${hashes[1]}): ${got.body?.toString('utf8', 0, 600) ?? ''}`,
    )
  }
  return got
}

/** PUTs one object and checks that the origin received every byte. */
async function putChecked(target, { size, block, payloadHash, key = PUT_KEY, deadlineMs }) {
  const { path, headers } = signFor(target, { method: 'PUT', key, payloadHash })
  const got = await putObject({ port: target.port, path, headers, size, block, deadlineMs })
  if (got.status !== 200) {
    throw new Error(`${target.name}: PUT ${path} of ${size} bytes returned status ${got.status}: ${got.body.slice(0, 600)}`)
  }
  if (target.kind === 'nginx') {
    const received = Number(got.headers['x-received-bytes'])
    if (received !== size) {
      throw new Error(
        `${target.name}: PUT ${path}: the origin reports ${got.headers['x-received-bytes']} bytes received, sent ${size}`,
      )
    }
  } else {
    const stored = statSync(join(target.dataDir, target.backendBucket, key)).size
    if (stored !== size) throw new Error(`${target.name}: PUT ${path}: s3s-fs stored ${stored} bytes, sent ${size}`)
  }
  return got
}

/**
 * PUTs a body whose x-amz-content-sha256 does not match it and returns the
 * status. A proxy that checks the hash while streaming rejects it, so the
 * SHA-256 rows measure that check and not a pass-through.
 */
async function shaMismatchStatus(target, block) {
  const size = 4 * MiB
  const wrongHash = repeatedSha256(block, size - 1)
  const { path, headers } = signFor(target, { method: 'PUT', key: 'mismatch.bin', payloadHash: wrongHash })
  let got
  try {
    got = await putObject({ port: target.port, path, headers, size, block, deadlineMs: 30_000 })
  } catch (error) {
    return { status: null, code: null, error: error.message }
  }
  const code = got.body.match(/<Code>([^<]*)<\/Code>/)?.[1]
  return { status: got.status, code: code ?? null }
}

// ---------------------------------------------------------------------------
// Loads

async function smallGetLoad(target, { connections, seconds, folder, closeEach = false, objectBytes }) {
  const { path, headers } = signFor(target, { method: 'GET', key: SMALL_KEY })
  const request = { method: 'GET', path, headers: closeEach ? { ...headers, Connection: 'close' } : headers }
  const common = { port: target.port, request, folder, minBytesPerRequest: objectBytes }
  // A short run first opens the connections and fills the proxy's upstream pool.
  await runWrk(WRK, { ...common, connections, seconds: 1, label: `warm-${target.name}` })
  return withCpu(target, () =>
    runWrk(WRK, { ...common, connections, seconds, label: `small-${connections}-${target.name}` }),
  )
}

async function largeGetLoad(target, { seconds, folder }) {
  const { path, headers } = signFor(target, { method: 'GET', key: LARGE_KEY })
  return withCpu(target, () =>
    runWrk(WRK, {
      port: target.port,
      request: { method: 'GET', path, headers },
      connections: 1,
      seconds,
      timeoutSeconds: 120,
      folder,
      label: `large-get-${target.name}`,
      allowNoneCompleted: true,
    }),
  )
}

async function largePutLoad(target, { size, block, payloadHash, seconds }) {
  return withCpu(target, () =>
    timedLoop({
      seconds,
      minCount: 2,
      maxCount: 40,
      once: async () => {
        await putChecked(target, { size, block, payloadHash })
        return size
      },
    }),
  )
}

/**
 * Runs `fn` and reads the RSS of process `pid`: VmRSS before, the peak during
 * (VmHWM after resetting it, and VmRSS every 50 ms) and VmRSS after. Returns
 * them in MiB with the seconds `fn` took.
 */
async function measureRss(pid, fn) {
  const before = memoryOf(pid)
  const resetWorked = resetPeakRss(pid)
  let sampledMaxKiB = before.rssKiB
  const sampler = setInterval(() => {
    try {
      sampledMaxKiB = Math.max(sampledMaxKiB, memoryOf(pid).rssKiB)
    } catch {
      // The process has exited, so the transfers fail and report it.
    }
  }, 50)
  const started = performance.now()
  try {
    await fn()
  } finally {
    clearInterval(sampler)
  }
  const seconds = (performance.now() - started) / 1000
  const after = memoryOf(pid)
  const peakKiB = Math.max(sampledMaxKiB, resetWorked ? after.hwmKiB : 0)
  return {
    seconds,
    rssBeforeMiB: before.rssKiB / 1024,
    rssPeakMiB: peakKiB / 1024,
    rssAfterMiB: after.rssKiB / 1024,
    growthMiB: (peakKiB - before.rssKiB) / 1024,
    peakFrom: resetWorked ? 'VmHWM after reset, and VmRSS every 50 ms' : 'VmRSS every 50 ms',
    hwmBeforeMiB: before.hwmKiB / 1024,
  }
}

/** Runs `count` transfers of `size` bytes at once through the proxy `target` and measures its RSS. */
async function concurrentPhase(target, { kind, count, size, block, deadlineMs }) {
  const memory = await measureRss(target.pid, () =>
    Promise.all(
      Array.from({ length: count }, (_, i) =>
        kind === 'GET'
          ? getChecked(target, { key: CONCURRENT_KEY, size, deadlineMs })
          : putChecked(target, { size, block, payloadHash: UNSIGNED_PAYLOAD, key: `concurrent-${i}.bin`, deadlineMs }),
      ),
    ),
  )
  return {
    label: `${count} x ${size / MiB} MiB ${kind}`,
    kind,
    count,
    sizeMiB: size / MiB,
    aggregateMiBPerSec: (count * size) / MiB / memory.seconds,
    ...memory,
  }
}

/**
 * PUTs `size` bytes (UNSIGNED-PAYLOAD) through the proxy `target`, then GETs
 * the object `SINGLE_KEY` of that size and checks its SHA-256, one stream at
 * a time. Growth is the higher of the two peaks minus the RSS before the PUT.
 */
async function singleStreamPhase(target, { size, block, sha256, deadlineMs }) {
  const put = await measureRss(target.pid, () =>
    putChecked(target, { size, block, payloadHash: UNSIGNED_PAYLOAD, key: 'single-upload.bin', deadlineMs }),
  )
  const get = await measureRss(target.pid, () => getChecked(target, { key: SINGLE_KEY, size, sha256, deadlineMs }))
  const rssPeakMiB = Math.max(put.rssPeakMiB, get.rssPeakMiB)
  const steps = [
    { kind: 'PUT', ...put },
    { kind: 'GET', ...get },
  ].map((step) => ({ ...step, mibPerSec: size / MiB / step.seconds }))
  return {
    label: `${size / GiB} GiB PUT / GET, one stream`,
    kind: 'PUT then GET',
    count: 1,
    sizeMiB: size / MiB,
    seconds: put.seconds + get.seconds,
    rssBeforeMiB: put.rssBeforeMiB,
    rssPeakMiB,
    rssAfterMiB: get.rssAfterMiB,
    growthMiB: rssPeakMiB - put.rssBeforeMiB,
    peakFrom: put.peakFrom,
    steps,
  }
}

// ---------------------------------------------------------------------------
// The proxy in its own process

async function startProxy({ threads, nginxPort, s3sPort }) {
  const cosMap = {
    [FAST_BUCKET]: {
      host: '127.0.0.1',
      port: nginxPort,
      tls: false,
      addressingStyle: 'path',
      accessKey: 'x',
      secretKey: 'y',
    },
  }
  if (s3sPort) {
    cosMap[S3S_BUCKET] = {
      host: '127.0.0.1',
      port: s3sPort,
      tls: false,
      addressingStyle: 'path',
      accessKey: S3S.accessKey,
      secretKey: S3S.secretKey,
    }
  }
  const config = {
    cosMap,
    hmacKeystore: [CLIENT],
    httpPort: 0,
    listenAddress: '127.0.0.1',
    threads,
  }
  const proc = startChild('proxy', process.execPath, [join(benchDir, 'proxy-server.mjs')], {
    stdout: 'pipe',
    stdin: 'pipe',
    env: { ...process.env, BENCH_PROXY_CONFIG: JSON.stringify(config), RUST_LOG: env.RUST_LOG ?? 'warn' },
  })
  const line = await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`the proxy printed no port within 20 s: ${proc.output()}`)), 20_000)
    proc.child.stdout.on('data', (chunk) => {
      out += chunk
      const newline = out.indexOf('\n')
      if (newline >= 0) {
        clearTimeout(timer)
        resolve(out.slice(0, newline))
      }
    })
    proc.child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the proxy process exited (${code ?? signal}) before listening: ${proc.output()}`))
    })
  })
  const { port, binary } = JSON.parse(line)
  const startMemory = memoryOf(proc.pid)
  return { ...proc, port, threads, binary, startMemory }
}

/** Stops the proxy with SIGTERM (its close()) and reports how it ended. */
async function stopProxy(proxy) {
  if (proxy.exited()) return `had already exited (${proxy.child.exitCode ?? proxy.child.signalCode})`
  const started = performance.now()
  await proxy.stop()
  const ms = Math.round(performance.now() - started)
  const { exitCode, signalCode } = proxy.child
  return exitCode === 0 ? `closed cleanly in ${ms} ms` : `ended with ${exitCode ?? signalCode} after ${ms} ms`
}

// ---------------------------------------------------------------------------
// Reporting

const fmt = (value, digits = 0) =>
  value === undefined || value === null || Number.isNaN(value) ? 'n/a' : value.toFixed(digits)
const ratio = (a, b) => (a && b ? a / b : NaN)

function table(headers, rows) {
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

/**
 * Starts a fresh proxy process with `threads`, sends it one small GET so that
 * the phase does not count first-use setup, runs `measure(target)` and adds
 * the phase it returns to results.memory, then stops the process. `label`
 * names the process in results.proxyBinary and results.proxyExit.
 */
async function withFreshProxy({ threads, origins, small, results, label, description }, measure) {
  const proxy = await startProxy({ threads, nginxPort: origins.nginxPort, s3sPort: origins.s3sPort })
  startedProxies.push(proxy)
  ownPids.push(proxy.pid)
  const name = `proxy t${threads}`
  results.proxyBinary[`${name}, ${label}`] = proxy.binary
  const target = makeTarget({
    name,
    kind: 'nginx',
    port: proxy.port,
    keys: CLIENT,
    bucket: FAST_BUCKET,
    pid: proxy.pid,
    originPids: origins.nginxWorkers,
  })
  await checkSmallGet(target, small)
  log(`${name} (fresh process ${proxy.pid}): ${description}`)
  const phase = await measure(target)
  phase.startRssMiB = proxy.startMemory.rssKiB / 1024
  results.memory[name] ??= { threads, phases: [] }
  results.memory[name].phases.push(phase)
  results.proxyExit[`${name}, ${label}`] = await stopProxy(proxy)
}

// ---------------------------------------------------------------------------

let WRK
// Every proxy and origin process started, for the diagnostics printed on failure.
const startedProxies = []
const startedOrigins = []

async function main() {
  const tools = ensureBenchTools()
  WRK = tools.wrk
  const addonFile = join(root, 'object-storage-proxy.linux-x64-gnu.node')
  const machine = describeMachine({ ...tools, addonFile })
  log('machine', JSON.stringify(machine))
  log('settings', JSON.stringify(SETTINGS))

  const runsFast = runsPhase('throughput') || runsPhase('passthrough') || runsPhase('pingora')
  const runsS3s = runsPhase('s3s') && SETTINGS.s3sFs
  // Proxies that run the throughput loads; the memory phases start their own.
  const loadThreads = !SETTINGS.directOnly && (runsPhase('throughput') || runsS3s) ? SETTINGS.threads : []
  const freshThreads = SETTINGS.directOnly ? [] : SETTINGS.threads
  const needsProxy = loadThreads.length > 0 || (freshThreads.length > 0 && (runsPhase('concurrent') || runsPhase('5gib')))
  if (needsProxy) {
    const addon = require(join(root, 'index.js'))
    if (typeof addon.startServer !== 'function') {
      throw new Error(
        `the addon exports no startServer (exports: ${Object.keys(addon).join(', ')}); ` +
          'build it first, or run with BENCH_DIRECT_ONLY=1 to measure the origins alone',
      )
    }
  }

  const otherCpuAtStartPct = await otherCpuPct([], 2000)
  if (otherCpuAtStartPct > 15) {
    log(`WARNING: other processes used ${otherCpuAtStartPct}% of a core in the 2 s before the run; results will be low and noisy`)
  }

  const work = tempFolder('osp-bench-')
  const largeSize = SETTINGS.largeMiB * MiB
  const concurrentSize = SETTINGS.concurrentMiB * MiB
  const block = randomBytes(MiB)
  const small = randomBytes(SETTINGS.smallBytes)
  let largeSha256 = null
  if (runsFast || runsS3s) {
    log(`hashing the ${SETTINGS.largeMiB} MiB object`)
    largeSha256 = repeatedSha256(block, largeSize)
  }

  const nginx = await startNginx(tools.nginx, { buckets: [FAST_BUCKET] })
  startedOrigins.push(nginx)
  const nginxWorkers = nginx.workerPids
  ownPids.push(nginx.pid, ...nginxWorkers)
  log(`nginx on port ${nginx.port} (master ${nginx.pid}, workers ${nginxWorkers.join(' ')})`)
  writeFileSync(join(nginx.dataDir, FAST_BUCKET, SMALL_KEY), small)
  if (runsFast) writeObject(join(nginx.dataDir, FAST_BUCKET, LARGE_KEY), largeSize, block)
  if (runsPhase('concurrent')) writeObject(join(nginx.dataDir, FAST_BUCKET, CONCURRENT_KEY), concurrentSize, block)

  let passthrough = null
  if (runsPhase('passthrough')) {
    passthrough = await startPassthrough(tools.nginx, { originPort: nginx.port, bufferKiB: SETTINGS.passthroughBufferKiB })
    startedOrigins.push(passthrough)
    ownPids.push(passthrough.pid, ...passthrough.workerPids)
    log(`${PASSTHROUGH} on port ${passthrough.port} (master ${passthrough.pid}, workers ${passthrough.workerPids.join(' ')})`)
  }

  let barePingora = null
  if (runsPhase('pingora')) {
    barePingora = await startPingoraFloor(tools.pingoraFloor, { originPort: nginx.port, threads: 1 })
    startedOrigins.push(barePingora)
    ownPids.push(barePingora.pid)
    log(`${BARE_PINGORA} on port ${barePingora.port} (pid ${barePingora.pid})`)
  }

  let s3s = null
  if (runsS3s) {
    s3s = await startS3sFs(tools.s3sFs, { ...S3S, buckets: [S3S_BUCKET] })
    startedOrigins.push(s3s)
    log(`s3s-fs on port ${s3s.port} (pid ${s3s.pid})`)
    ownPids.push(s3s.pid)
    writeFileSync(join(s3s.dataDir, S3S_BUCKET, SMALL_KEY), small)
    writeObject(join(s3s.dataDir, S3S_BUCKET, LARGE_KEY), largeSize, block)
  }

  const results = { fast: {}, s3s: {}, memory: {}, proxyExit: {}, shaMismatch: {}, proxyBinary: {} }
  const proxies = []
  for (const threads of loadThreads) {
    const proxy = await startProxy({ threads, nginxPort: nginx.port, s3sPort: s3s?.port })
    startedProxies.push(proxy)
    ownPids.push(proxy.pid)
    log(
      `proxy threads=${threads} on port ${proxy.port} (pid ${proxy.pid}), RSS ${fmt(proxy.startMemory.rssKiB / 1024, 1)} MiB,` +
        ` addon sha256 ${proxy.binary.sha256}... modified ${proxy.binary.modified}`,
    )
    results.proxyBinary[`proxy t${threads}`] = proxy.binary
    proxies.push(proxy)
  }

  const direct = makeTarget({ name: 'direct', kind: 'nginx', port: nginx.port, keys: CLIENT, bucket: FAST_BUCKET, originPids: nginxWorkers })
  const passthroughTargets = !passthrough
    ? []
    : [
        makeTarget({
          name: PASSTHROUGH,
          kind: 'nginx',
          port: passthrough.port,
          keys: CLIENT,
          bucket: FAST_BUCKET,
          pid: passthrough.workerPids[0],
          originPids: nginxWorkers,
        }),
      ]
  const fastProxyTargets = !runsPhase('throughput')
    ? []
    : proxies.map((p) =>
        makeTarget({
          name: `proxy t${p.threads}`,
          kind: 'nginx',
          port: p.port,
          keys: CLIENT,
          bucket: FAST_BUCKET,
          pid: p.pid,
          originPids: nginxWorkers,
        }),
      )
  const barePingoraTargets = !barePingora
    ? []
    : [
        makeTarget({
          name: BARE_PINGORA,
          kind: 'nginx',
          port: barePingora.port,
          keys: CLIENT,
          bucket: FAST_BUCKET,
          pid: barePingora.pid,
          originPids: nginxWorkers,
        }),
      ]
  const fastTargets = runsFast ? [direct, ...passthroughTargets, ...barePingoraTargets, ...fastProxyTargets] : []
  // nginx passes the body through unchecked, so it has no column in the SHA-256 scenario.
  const shaTargets = runsPhase('throughput') ? [direct, ...fastProxyTargets] : []
  const s3sTargets = !s3s
    ? []
    : [
        { ...makeTarget({ name: 'direct', kind: 's3s', port: s3s.port, keys: S3S, bucket: S3S_BUCKET, originPids: [s3s.pid] }) },
        ...proxies.map((p) =>
          makeTarget({ name: `proxy t${p.threads}`, kind: 's3s', port: p.port, keys: CLIENT, bucket: S3S_BUCKET, pid: p.pid, originPids: [s3s.pid] }),
        ),
      ].map((t) => ({ ...t, dataDir: s3s.dataDir, backendBucket: S3S_BUCKET }))

  const record = (group, scenario, target, value) => {
    results[group][scenario] ??= {}
    results[group][scenario][target.name] = value
  }
  const putHash = { unsigned: UNSIGNED_PAYLOAD, sha256: largeSha256 }
  const { seconds, s3sSeconds, putSeconds, connections } = SETTINGS
  const rps = (r) => r.requestsPerSec
  const mibs = (r) => r.mibPerSec
  const smallOptions = { folder: work, objectBytes: small.length }
  const scenarios = [
    {
      group: 'fast',
      id: 'smallGetLoaded',
      title: `nginx small GET, ${connections} connections`,
      targets: fastTargets,
      score: rps,
      run: (t) => smallGetLoad(t, { ...smallOptions, connections, seconds }),
    },
    {
      group: 'fast',
      id: 'smallGetSingle',
      title: 'nginx small GET, 1 connection',
      targets: fastTargets,
      score: rps,
      run: (t) => smallGetLoad(t, { ...smallOptions, connections: 1, seconds }),
    },
    {
      group: 'fast',
      id: 'largeGet',
      title: 'nginx large GET',
      targets: fastTargets,
      score: mibs,
      run: (t) => largeGetLoad(t, { seconds, folder: work }),
    },
    ...[
      ['unsigned', fastTargets],
      ['sha256', shaTargets],
    ].map(([variant, targets]) => ({
      group: 'fast',
      id: `largePut_${variant}`,
      title: `nginx large PUT (${variant})`,
      targets,
      score: mibs,
      run: (t) => largePutLoad(t, { size: largeSize, block, payloadHash: putHash[variant], seconds: putSeconds }),
    })),
    {
      group: 's3s',
      id: 'smallGetClose',
      title: `s3s-fs small GET, ${connections} connections, one request per connection`,
      targets: s3sTargets,
      score: rps,
      run: (t) => smallGetLoad(t, { ...smallOptions, connections, seconds: s3sSeconds, closeEach: true }),
    },
    {
      group: 's3s',
      id: 'largeGet',
      title: 's3s-fs large GET',
      targets: s3sTargets,
      score: mibs,
      run: (t) => largeGetLoad(t, { seconds: s3sSeconds, folder: work }),
    },
    ...['unsigned', 'sha256'].map((variant) => ({
      group: 's3s',
      id: `largePut_${variant}`,
      title: `s3s-fs large PUT (${variant})`,
      targets: s3sTargets,
      score: mibs,
      run: (t) => largePutLoad(t, { size: largeSize, block, payloadHash: putHash[variant], seconds: 1 }),
    })),
  ].filter((scenario) => scenario.targets.length > 0)

  try {
    const checkedTargets = [...fastTargets, ...s3sTargets]
    if (checkedTargets.length > 0) log('checking that every target returns the right objects and takes uploads')
    for (const t of checkedTargets) {
      await checkSmallGet(t, small)
      await getChecked(t, { key: LARGE_KEY, size: largeSize, sha256: largeSha256 })
      await putChecked(t, { size: 4 * MiB, block, payloadHash: UNSIGNED_PAYLOAD })
      await putChecked(t, { size: 4 * MiB, block, payloadHash: repeatedSha256(block, 4 * MiB) })
    }

    for (const t of fastProxyTargets) {
      const mismatch = await shaMismatchStatus(t, block)
      results.shaMismatch[t.name] = mismatch
      log(`${t.name}: PUT with a wrong x-amz-content-sha256 returned ${mismatch.status} ${mismatch.code ?? ''}`)
    }

    // Each scenario runs against every target back to back, in reverse order
    // every other round, so that drifts of the machine touch direct and
    // proxied runs alike. The nginx scenarios run BENCH_ROUNDS times and
    // keep each target's best round. The s3s-fs ones (reference) run once.
    const runs = {}
    for (let round = 1; round <= SETTINGS.rounds; round++) {
      for (const scenario of scenarios) {
        if (scenario.group === 's3s' && round > 1) continue
        const order = round % 2 === 1 ? scenario.targets : [...scenario.targets].reverse()
        for (const t of order) {
          log(`round ${round}: ${scenario.title}: ${t.name}`)
          const result = await scenario.run(t)
          const key = `${scenario.group}/${scenario.id}/${t.name}`
          runs[key] ??= []
          runs[key].push({ ...result, round, score: scenario.score(result) })
        }
      }
    }
    for (const scenario of scenarios) {
      for (const t of scenario.targets) {
        const all = runs[`${scenario.group}/${scenario.id}/${t.name}`]
        const best = all.reduce((a, b) => (b.score > a.score ? b : a))
        record(scenario.group, scenario.id, t, { ...best, rounds: all.map((r) => r.score) })
      }
    }

    // Memory of the proxies that ran the loads above: RSS at start, peak
    // (VmHWM) and now.
    for (const proxy of proxies) {
      const now = memoryOf(proxy.pid)
      results.memory[`proxy t${proxy.threads}`] = {
        threads: proxy.threads,
        startRssMiB: proxy.startMemory.rssKiB / 1024,
        peakRssMiB: now.hwmKiB / 1024,
        endRssMiB: now.rssKiB / 1024,
        phases: [],
      }
    }

    // The memory phases run each on a fresh proxy process, so that memory
    // kept from one phase does not hide the next one's growth.
    const origins = { nginxPort: nginx.port, s3sPort: s3s?.port, nginxWorkers }
    const deadlineMsFor = (mib) => (60 + mib / 20) * 1000
    if (runsPhase('concurrent')) {
      const deadlineMs = deadlineMsFor(SETTINGS.concurrency * SETTINGS.concurrentMiB)
      for (const threads of freshThreads) {
        for (const kind of ['GET', 'PUT']) {
          const description = `${SETTINGS.concurrency} concurrent ${kind}s of ${SETTINGS.concurrentMiB} MiB`
          await withFreshProxy({ threads, origins, small, results, label: `${kind} memory phase`, description }, (target) =>
            concurrentPhase(target, { kind, count: SETTINGS.concurrency, size: concurrentSize, block, deadlineMs }),
          )
        }
      }
    }

    if (runsPhase('5gib') && freshThreads.length > 0) {
      // A sparse file, so that the object takes a few MiB of disk.
      const singlePath = join(nginx.dataDir, FAST_BUCKET, SINGLE_KEY)
      log(`creating the sparse ${SINGLE_SIZE / GiB} GiB object and hashing it`)
      const singleSha256 = writeSparseObject(singlePath, SINGLE_SIZE, block, GiB)
      try {
        for (const threads of freshThreads) {
          const description = `one PUT, then one GET, of ${SINGLE_SIZE} bytes`
          await withFreshProxy({ threads, origins, small, results, label: '5 GiB phase', description }, (target) =>
            singleStreamPhase(target, { size: SINGLE_SIZE, block, sha256: singleSha256, deadlineMs: deadlineMsFor(SINGLE_SIZE / MiB) }),
          )
        }
      } finally {
        unlinkSync(singlePath)
      }
    }
  } finally {
    for (const origin of startedOrigins) {
      origin.endedEarly = origin.exited() ? String(origin.child.exitCode ?? origin.child.signalCode) : null
    }
    for (const proxy of proxies) results.proxyExit[`proxy t${proxy.threads}`] = await stopProxy(proxy)
    if (passthrough) await passthrough.stop()
    if (barePingora) await barePingora.stop()
    await nginx.stop()
    if (s3s) await s3s.stop()
  }

  const nginxErrors = [nginx, passthrough]
    .filter(Boolean)
    .flatMap((server) => readNginxErrors(server.prefix).map((line) => `${server.name}: ${line}`))
  const addonNow = describeMachine({ ...tools, addonFile }).addon
  if (addonNow?.modified !== machine.addon?.modified) {
    log(`WARNING: ${addonFile} changed during the run (${machine.addon?.modified} -> ${addonNow?.modified})`)
    machine.addonChangedDuringRun = addonNow
  }
  report({ machine, results, proxies, nginxErrors, otherCpuAtStartPct })
}

function readNginxErrors(prefix) {
  try {
    return readFileSync(join(prefix, 'error.log'), 'utf8').split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l)).slice(-20)
  } catch {
    return []
  }
}

function report({ machine, results, proxies, nginxErrors, otherCpuAtStartPct }) {
  const proxyNames = proxies.map((p) => `proxy t${p.threads}`)
  const pass = (ok) => {
    if (ok === undefined || Number.isNaN(ok)) return 'n/a'
    return ok ? 'PASS' : 'FAIL'
  }
  const verdicts = []
  // nginx passthrough's value for each target, shown next to the verdicts as context.
  const references = []
  const rows = []
  const referencesOf = {
    fast: [PASSTHROUGH, BARE_PINGORA].filter((name) => Object.values(results.fast).some((byTarget) => byTarget[name])),
    s3s: [],
  }
  const cpuText = (r) =>
    r?.cpu
      ? `${r.cpu.proxyPct ?? '-'}/${r.cpu.originPct}/${r.cpu.clientPct}/${r.cpu.otherPct}/${r.cpu.stealPct}`
      : ''

  /**
   * Adds one row: direct, then nginx passthrough with its ratio, then each
   * proxy with its ratio and verdict. A target without a result gets empty cells.
   */
  const addRow = (label, group, scenario, metric, unit, digits, check) => {
    const byTarget = results[group][scenario]
    if (!byTarget) return
    const direct = metric(byTarget.direct)
    const cells = [label, `${fmt(direct, digits)} ${unit}`]
    for (const name of referencesOf[group]) {
      if (!byTarget[name]) {
        cells.push('', '')
        continue
      }
      const value = metric(byTarget[name])
      const r = ratio(value, direct)
      cells.push(`${fmt(value, digits)} ${unit}`, fmt(r, 2))
      if (check) references.push({ target: check.name, reference: name, value: check.show(value, direct, r) })
    }
    for (const name of proxyNames) {
      if (!byTarget[name]) {
        cells.push('', '', '')
        continue
      }
      const value = metric(byTarget[name])
      const r = ratio(value, direct)
      cells.push(`${fmt(value, digits)} ${unit}`, fmt(r, 2))
      if (check) {
        const ok = check.test(value, direct, r)
        cells.push(pass(ok))
        verdicts.push({ target: check.name, proxy: name, value: check.show(value, direct, r), pass: ok })
      } else {
        cells.push('')
      }
    }
    cells.push(check?.name ?? '(reference)')
    rows.push(cells)
  }

  const rps = (r) => r?.requestsPerSec
  const mibs = (r) => r?.mibPerSec
  const p = (q) => (r) => r?.latencyMs?.[q]
  const ratioCheck = (name, min) => ({ name, test: (_v, _d, r) => r >= min, show: (_v, _d, r) => `${fmt(r, 2)}x` })
  const addedCheck = (name) => ({
    name,
    test: (v, d) => v - d < TARGETS.addedP99Ms,
    show: (v, d) => `${v - d < 0 ? '' : '+'}${fmt(v - d, 3)} ms`,
  })

  addRow(`small GET ${SETTINGS.smallBytes} B, ${SETTINGS.connections} conn, req/s`, 'fast', 'smallGetLoaded', rps, 'req/s', 0, ratioCheck('small GET req/s >= 0.6x', TARGETS.smallRps))
  addRow(`small GET, ${SETTINGS.connections} conn, p50`, 'fast', 'smallGetLoaded', p('p50'), 'ms', 3)
  addRow(`small GET, ${SETTINGS.connections} conn, p99`, 'fast', 'smallGetLoaded', p('p99'), 'ms', 3, addedCheck('added p99 < 1 ms (32 conn, under saturation)'))
  addRow('small GET, 1 conn, req/s', 'fast', 'smallGetSingle', rps, 'req/s', 0)
  addRow('small GET, 1 conn, p50', 'fast', 'smallGetSingle', p('p50'), 'ms', 3)
  addRow('small GET, 1 conn, p99', 'fast', 'smallGetSingle', p('p99'), 'ms', 3, addedCheck('added p99 < 1 ms (1 conn)'))
  addRow(`large GET ${SETTINGS.largeMiB} MiB, 1 stream`, 'fast', 'largeGet', mibs, 'MiB/s', 0, ratioCheck('large GET >= 0.65x', TARGETS.largeGet))
  addRow(`large PUT ${SETTINGS.largeMiB} MiB, UNSIGNED-PAYLOAD`, 'fast', 'largePut_unsigned', mibs, 'MiB/s', 0, ratioCheck('large PUT >= 0.65x', TARGETS.largePut))
  addRow(`large PUT ${SETTINGS.largeMiB} MiB, hex SHA-256`, 'fast', 'largePut_sha256', mibs, 'MiB/s', 0, ratioCheck('large PUT (SHA-256 checked) >= 0.65x', TARGETS.largePut))

  const s3sRows = []
  const before = rows.length
  addRow(`s3s-fs small GET, ${SETTINGS.connections} conn, new connection per request, req/s`, 's3s', 'smallGetClose', rps, 'req/s', 0)
  addRow('s3s-fs small GET, new connection per request, p50', 's3s', 'smallGetClose', p('p50'), 'ms', 3)
  addRow('s3s-fs small GET, new connection per request, p99', 's3s', 'smallGetClose', p('p99'), 'ms', 3)
  addRow(`s3s-fs large GET ${SETTINGS.largeMiB} MiB`, 's3s', 'largeGet', mibs, 'MiB/s', 0)
  addRow(`s3s-fs large PUT ${SETTINGS.largeMiB} MiB, UNSIGNED-PAYLOAD`, 's3s', 'largePut_unsigned', mibs, 'MiB/s', 0)
  addRow(`s3s-fs large PUT ${SETTINGS.largeMiB} MiB, hex SHA-256`, 's3s', 'largePut_sha256', mibs, 'MiB/s', 0)
  s3sRows.push(...rows.splice(before))

  const headerOf = (group) => [
    'scenario',
    'direct',
    ...referencesOf[group].flatMap((n) => [n, 'ratio']),
    ...proxyNames.flatMap((n) => [n, 'ratio', 'verdict']),
    'target',
  ]
  const cpuNames = ['direct', ...referencesOf.fast, ...proxyNames]
  const cpuRows = []
  for (const [group, scenarios] of Object.entries({ fast: results.fast, s3s: results.s3s })) {
    for (const [scenario, byTarget] of Object.entries(scenarios)) {
      cpuRows.push([`${group === 'fast' ? 'nginx' : 's3s-fs'} ${scenario}`, ...cpuNames.map((n) => cpuText(byTarget[n]))])
    }
  }

  const warnings = []
  if (otherCpuAtStartPct > 15) warnings.push(`other processes used ${otherCpuAtStartPct}% of a core just before the run`)
  for (const [group, scenarios] of Object.entries({ nginx: results.fast, 's3s-fs': results.s3s })) {
    for (const [scenario, byTarget] of Object.entries(scenarios)) {
      for (const [name, r] of Object.entries(byTarget)) {
        // Per-process and machine-wide CPU times are counted differently, so
        // this share is an estimate within about 25% of a core.
        if (r?.cpu?.otherPct > 30) {
          warnings.push(`${group} ${scenario} ${name}: other processes used ${r.cpu.otherPct}% of a core`)
        }
      }
    }
  }

  const memRows = []
  for (const [name, memory] of Object.entries(results.memory)) {
    if (memory.startRssMiB !== undefined) {
      memRows.push([name, 'all loads above, one process', '', fmt(memory.startRssMiB, 1), '', fmt(memory.peakRssMiB, 1), '', fmt(memory.endRssMiB, 1), ''])
    }
    for (const phase of memory.phases) {
      const ok = phase.growthMiB < TARGETS.rssGrowthMiB
      verdicts.push({
        target: `RSS growth < 64 MiB (${phase.label})`,
        proxy: name,
        value: `+${fmt(phase.growthMiB, 1)} MiB`,
        pass: ok,
      })
      const throughput = phase.steps
        ? phase.steps.map((step) => `${step.kind} ${fmt(step.mibPerSec, 0)}`).join(' / ')
        : fmt(phase.aggregateMiBPerSec, 0)
      memRows.push([
        name,
        `${phase.label}, fresh process`,
        throughput,
        fmt(phase.startRssMiB, 1),
        fmt(phase.rssBeforeMiB, 1),
        fmt(phase.rssPeakMiB, 1),
        `+${fmt(phase.growthMiB, 1)}`,
        fmt(phase.rssAfterMiB, 1),
        pass(ok),
      ])
    }
  }

  // A run with BENCH_ONLY has only some of these sections.
  const section = (title, note, headers, tableRows) =>
    tableRows.length === 0 ? [] : [title, '', ...(note ? [note, ''] : []), table(headers, tableRows), '']
  const verdictRows = [
    ...verdicts.map((v) => [v.target, v.proxy, v.value, pass(v.pass)]),
    ...references.map((r) => [r.target, r.reference, r.value, '(reference, not a target)']),
  ]
  const text = [
    `Phases: ${SETTINGS.phases.join(', ')}`,
    '',
    ...section(
      '## Fast origin (nginx); the targets apply here',
      `Best of ${SETTINGS.rounds} round(s) per target; every round is in results.json.`,
      headerOf('fast'),
      rows,
    ),
    ...section('## s3s-fs (checks signatures; capped by s3s-fs itself, reference only)', '', headerOf('s3s'), s3sRows),
    ...section(
      `## Proxy memory (MiB; RSS of the proxy's own node process; mode: ${SETTINGS.mode})`,
      '',
      ['proxy', 'phase', 'aggregate MiB/s', 'RSS at start', 'RSS before', 'RSS peak', 'growth', 'RSS after', 'verdict (< 64 MiB)'],
      memRows,
    ),
    ...section(
      '## CPU during each load (% of one core: proxy/origin/client/other (estimate)/steal)',
      referencesOf.fast.length ? `For ${PASSTHROUGH}, "proxy" is its nginx worker; for ${BARE_PINGORA}, its process.` : '',
      ['scenario', ...cpuNames],
      cpuRows,
    ),
    ...section('## Verdicts', '', ['target', 'proxy', 'measured', 'verdict'], verdictRows),
    `PUT with a wrong x-amz-content-sha256 (expected 400 XAmzContentSHA256Mismatch): ${Object.entries(results.shaMismatch).map(([n, r]) => `${n} ${r.status ?? r.error} ${r.code ?? ''}`).join('; ') || 'n/a'}`,
    `Proxy binaries loaded: ${Object.entries(results.proxyBinary).map(([n, b]) => `${n} sha256 ${b.sha256}... (modified ${b.modified})`).join('; ') || 'n/a'}`,
    `Proxy shutdown: ${Object.entries(results.proxyExit).map(([n, s]) => `${n} ${s}`).join('; ') || 'n/a'}`,
    nginxErrors.length ? `nginx error log:\n${nginxErrors.join('\n')}` : '',
    warnings.length ? `WARNING, the machine was not quiet:\n${warnings.map((w) => `- ${w}`).join('\n')}` : '',
  ].join('\n')
  console.log(text)

  const out = {
    finishedAt: new Date().toISOString(),
    machine,
    settings: SETTINGS,
    targets: TARGETS,
    results,
    verdicts,
    references,
    otherCpuAtStartPct,
    warnings,
    nginxErrors,
  }
  writeFileSync(join(benchDir, 'results.json'), `${JSON.stringify(out, null, 2)}\n`)
  log(`wrote ${join(benchDir, 'results.json')}`)
}

main().catch((error) => {
  console.error(`[bench] FAILED: ${error.stack ?? error}`)
  for (const origin of startedOrigins) {
    if (origin.endedEarly) {
      console.error(`[bench] ${origin.name} (pid ${origin.pid}) had ended with ${origin.endedEarly} before the cleanup`)
    }
  }
  for (const proxy of startedProxies) {
    const { exitCode, signalCode } = proxy.child
    const state = exitCode === null && signalCode === null ? 'was running' : `had ended with ${exitCode ?? signalCode}`
    console.error(`[bench] proxy threads=${proxy.threads} (pid ${proxy.pid}) ${state}; its last output:\n${proxy.output()}`)
  }
  // Exiting runs the cleanup in procs.mjs. Servers that a failure left
  // running would otherwise keep the event loop, and this process, alive.
  process.exit(1)
})
