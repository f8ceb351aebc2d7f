// Two more rows for the benchmark, against the nginx origin of run.mjs:
// - what a JavaScript validator costs: small-object GET requests/s with no
//   validator, a cached validator, and `ttl: 0` (one JS call per request);
// - HTTPS in front: small-GET requests/s and large-GET MiB/s over HTTPS next
//   to plain HTTP, with a certificate from a CA made here.
// The proxy runs in this process, as in a Node service, so the validator
// runs on this event loop. Writes bench/results-callbacks-https.json.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startNginx, writeObject } from './origins.mjs'
import { tempFolder } from './procs.mjs'
import { signRequest } from './sigv4.mjs'
import { runWrk } from './wrk.mjs'
import { ensureBenchTools } from '../scripts/tools.mjs'

const benchDir = dirname(fileURLToPath(import.meta.url))
const { startServer } = createRequire(import.meta.url)('../index.js')
const CLIENT = { accessKey: 'bench-client', secretKey: 'bench-client-secret-0123456789' }
const BUCKET = 'fast-origin'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const LARGE_MIB = Number(process.env.BENCH_LARGE_MIB ?? 256)
const log = (...args) => console.error('[bench]', ...args)

function makeCertificate(folder) {
  const run = (args) => execFileSync('openssl', args, { cwd: folder, stdio: ['ignore', 'ignore', 'pipe'] })
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=bench CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'])
  writeFileSync(join(folder, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=127.0.0.1'])
  run(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem',
    '-days', '2', '-extfile', 'ext'])
  return { ca: join(folder, 'ca.pem'), cert: readFileSync(join(folder, 'cert.pem')), key: readFileSync(join(folder, 'key.pem')) }
}

function signedGet(port, key) {
  const signed = signRequest({ method: 'GET', host: `127.0.0.1:${port}`, path: `/${BUCKET}/${key}`, ...CLIENT })
  return { method: 'GET', path: `/${BUCKET}/${key}`, headers: signed.headers ?? signed }
}

/** Downloads a large object with curl and returns MiB/s. */
function curlMiBPerSec({ scheme, port, key, ca }) {
  const request = signedGet(port, key)
  const args = ['-s', '-o', '/dev/null', '-w', '%{speed_download} %{http_code}', '--http1.1']
  if (ca) args.push('--cacert', ca)
  for (const [name, value] of Object.entries(request.headers)) args.push('-H', `${name}: ${value}`)
  args.push(`${scheme}://127.0.0.1:${port}${request.path}`)
  const [speed, status] = execFileSync('curl', args, { encoding: 'utf8', timeout: 120_000 }).trim().split(' ')
  if (status !== '200') throw new Error(`curl ${scheme} large GET answered ${status}`)
  return Number(speed) / 2 ** 20
}

async function main() {
  const tools = ensureBenchTools()
  const folder = tempFolder('osp-bench-extra-')
  const nginx = await startNginx(tools.nginx, { buckets: [BUCKET] })
  writeObject(join(nginx.dataDir, BUCKET, 'small.bin'), 4096, Buffer.alloc(4096, 7))
  writeObject(join(nginx.dataDir, BUCKET, 'large.bin'), LARGE_MIB * 2 ** 20, Buffer.alloc(2 ** 20, 9))
  const certificate = makeCertificate(folder)
  const bucket = { host: '127.0.0.1', port: nginx.port, tls: false, addressingStyle: 'path', accessKey: 'x', secretKey: 'y' }
  const results = { seconds: SECONDS, largeMiB: LARGE_MIB, validator: {}, https: {} }

  const smallGet = async (label, proxyPort, scheme = 'http') => {
    const result = await runWrk(tools.wrk, {
      port: proxyPort,
      scheme,
      request: signedGet(proxyPort, 'small.bin'),
      connections: 32,
      seconds: SECONDS,
      folder,
      label,
      minBytesPerRequest: 4096,
    })
    log(`${label}: ${result.requestsPerSec.toFixed(0)} req/s, p99 ${result.latencyMs.p99} ms`)
    return { requestsPerSec: result.requestsPerSec, p99Ms: result.latencyMs.p99 }
  }

  try {
    let calls = 0
    const variants = {
      'no validator': {},
      'cached validator': { validator: () => (calls++, true) },
      'validator, ttl 0': { validator: () => (calls++, true), ttl: 0 },
    }
    for (const [label, { validator, ttl }] of Object.entries(variants)) {
      calls = 0
      const proxy = await startServer({
        listenAddress: '127.0.0.1',
        httpPort: 0,
        cosMap: { [BUCKET]: { ...bucket, ...(ttl === undefined ? {} : { ttl }) } },
        hmacKeystore: [CLIENT],
        ...(validator ? { validator } : {}),
      })
      try {
        results.validator[label] = { ...(await smallGet(label, proxy.httpPort)), validatorCalls: calls }
      } finally {
        await proxy.close()
      }
    }

    const proxy = await startServer({
      listenAddress: '127.0.0.1',
      httpPort: 0,
      httpsPort: 0,
      tls: { cert: certificate.cert, key: certificate.key },
      cosMap: { [BUCKET]: bucket },
      hmacKeystore: [CLIENT],
    })
    try {
      results.https.smallGetHttp = await smallGet('small GET over http', proxy.httpPort)
      results.https.smallGetHttps = await smallGet('small GET over https', proxy.httpsPort, 'https')
      results.https.largeGetHttpMiBPerSec = curlMiBPerSec({ scheme: 'http', port: proxy.httpPort, key: 'large.bin' })
      results.https.largeGetHttpsMiBPerSec = curlMiBPerSec({ scheme: 'https', port: proxy.httpsPort, key: 'large.bin', ca: certificate.ca })
      log(`large GET: http ${results.https.largeGetHttpMiBPerSec.toFixed(0)} MiB/s, https ${results.https.largeGetHttpsMiBPerSec.toFixed(0)} MiB/s`)
    } finally {
      await proxy.close()
    }
  } finally {
    await nginx.stop()
  }

  const base = results.validator['no validator'].requestsPerSec
  results.validator.cachedRatio = results.validator['cached validator'].requestsPerSec / base
  results.validator.ttl0Ratio = results.validator['validator, ttl 0'].requestsPerSec / base
  results.https.smallGetRatio = results.https.smallGetHttps.requestsPerSec / results.https.smallGetHttp.requestsPerSec
  results.https.largeGetRatio = results.https.largeGetHttpsMiBPerSec / results.https.largeGetHttpMiBPerSec
  writeFileSync(join(benchDir, 'results-callbacks-https.json'), `${JSON.stringify(results, null, 2)}\n`)
  console.log(JSON.stringify(results, null, 2))
  console.log(`cached validator: ${results.validator.cachedRatio.toFixed(3)}x of no validator (target >= 0.95)`)
}

await main()
process.exit(0)
