// Child processes and temporary folders of one benchmark run, and their
// cleanup. Every child starts in its own process group, so that stopping it
// by its PID also ends the workers it forked (nginx). Cleanup runs on normal
// exit, on SIGINT/SIGTERM and on uncaught errors.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const HOST = '127.0.0.1'

const children = new Set()
const folders = new Set()

/** Sends a signal to the child's process group, and ignores a group that has exited. */
function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal)
  } catch {
    // The group has exited already.
  }
}

function cleanUpNow() {
  for (const child of children) signalGroup(child, 'SIGKILL')
  children.clear()
  for (const folder of folders) rmSync(folder, { recursive: true, force: true })
  folders.clear()
}

process.on('exit', cleanUpNow)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.error(`\n[bench] ${signal}: stopping the servers`)
    cleanUpNow()
    process.exit(130)
  })
}

/** Creates a temporary folder that is removed when the run ends. */
export function tempFolder(prefix) {
  const folder = mkdtempSync(join(tmpdir(), prefix))
  folders.add(folder)
  return folder
}

/** Removes a temporary folder now. */
export function removeFolder(folder) {
  rmSync(folder, { recursive: true, force: true })
  folders.delete(folder)
}

/**
 * Adds a child spawned elsewhere with `detached: true` (so that it leads its
 * own process group) to the children that cleanup ends.
 */
export function trackChild(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/**
 * Spawns a tracked child in its own process group. Its stderr (and stdout,
 * unless `stdout: 'pipe'`) is kept in a bounded tail for error messages.
 */
export function startChild(name, command, args, { stdout = 'tail', env, stdin = 'ignore' } = {}) {
  const child = spawn(command, args, {
    detached: true,
    env: env ?? process.env,
    stdio: [stdin, 'pipe', 'pipe'],
  })
  children.add(child)
  let tail = ''
  const keep = (chunk) => {
    tail = (tail + chunk).slice(-8000)
  }
  child.stderr.on('data', keep)
  if (stdout === 'tail') child.stdout.on('data', keep)
  child.once('exit', () => children.delete(child))
  return {
    name,
    child,
    pid: child.pid,
    output: () => tail,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    stop: () => stopChild(child),
  }
}

/** Stops a child: SIGTERM to its group, SIGKILL after `graceMs`. */
export function stopChild(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    signalGroup(child, 'SIGKILL')
    children.delete(child)
    return Promise.resolve()
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      // Workers of the group that outlived their parent.
      signalGroup(child, 'SIGKILL')
      children.delete(child)
      resolve()
    })
    signalGroup(child, 'SIGTERM')
  })
}

/** Resolves with a port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, HOST, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * Waits until 127.0.0.1:port accepts connections. Resolves false when the
 * child exits or the timeout passes.
 */
export async function waitForPort(port, proc, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (proc.exited()) return false
    if (await canConnect(port)) return true
    await sleep(50)
  }
  return false
}

/** Reads VmRSS and VmHWM (peak RSS) of a process, in KiB. */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1])
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') }
}

/**
 * Resets the peak RSS (VmHWM) of a process to its current RSS, so that a
 * later VmHWM is the peak of what ran in between. Returns false where the
 * kernel refuses.
 */
export function resetPeakRss(pid) {
  try {
    // Writing 5 to clear_refs resets the peak RSS (Linux 4.0 and later).
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}
