// The local S3 backend the examples run against: s3s-fs on 127.0.0.1, an S3
// server on a folder that checks SigV4 with its own keys. It is installed
// into .tools/ on first use.
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { ensureS3sFs } from '../scripts/tools.mjs'

const HOST = '127.0.0.1'

async function freePort() {
  const probe = createServer()
  await new Promise((resolve) => probe.listen(0, HOST, resolve))
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/**
 * Starts s3s-fs on `dataDir` with `keys` and one folder per bucket. Returns
 * { port, stop() }; stop() ends it by PID and also works after Ctrl-C in a
 * terminal has already signalled it.
 */
export async function startLocalBackend({ dataDir, buckets, keys }) {
  for (const bucket of buckets) mkdirSync(join(dataDir, bucket))
  const port = await freePort()
  const args = ['--host', HOST, '--port', String(port), '--access-key', keys.accessKey, '--secret-key', keys.secretKey, dataDir]
  const child = spawn(ensureS3sFs(), args, { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM')
    await exited
  }
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`s3s-fs exited with code ${child.exitCode}`)
    const response = await fetch(`http://${HOST}:${port}/`).catch(() => null)
    if (response) return { port, stop }
    await sleep(50)
  }
  await stop()
  throw new Error(`s3s-fs did not listen on ${HOST}:${port} within 10 s`)
}
