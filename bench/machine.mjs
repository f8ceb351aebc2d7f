// Machine facts for the benchmark report (CPU, memory, kernel, tool versions)
// and CPU accounting read from /proc.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import os from 'node:os'

function firstLine(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  // Some tools (wrk -v) print their version and exit non-zero.
  const text = result.error ? '' : `${result.stdout}${result.stderr}`.trim()
  return text ? text.split('\n')[0] : 'unknown'
}

/** Clock ticks per second, the unit of CPU times in /proc/<pid>/stat. */
export const CLOCK_TICKS = Number(firstLine('getconf', ['CLK_TCK'])) || 100

export function describeMachine({ nginx, wrk, s3sFs, addonFile }) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const meminfo = readFileSync('/proc/meminfo', 'utf8')
  const memKiB = Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1])
  const addon = existsSync(addonFile) ? statSync(addonFile) : null
  return {
    cpus: Number(firstLine('nproc', [])),
    cpuModel: cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? 'unknown',
    memoryGiB: Math.round((memKiB / 2 ** 20) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    rustc: firstLine('rustc', ['--version']),
    nginx: firstLine(nginx, ['-v']),
    wrk: firstLine(wrk, ['-v']),
    s3sFs: firstLine(s3sFs, ['--version']),
    addon: addon ? { file: addonFile, bytes: addon.size, modified: addon.mtime.toISOString() } : null,
  }
}

/** Returns the CPU seconds (user + system) that a process and its threads have used so far. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return NaN
  }
}

/** Returns the PIDs of a process's direct children, such as the nginx worker of its master. */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * Returns the CPU seconds that all CPUs have spent since boot in processes
 * (user, nice, system), in interrupt handling (irq, softirq), and stolen by
 * the hypervisor. The kernel also charges much of the interrupt time to the
 * process it interrupted (loopback TCP work shows in the sender's system
 * time), so busy time is processes plus interrupts.
 */
export function machineCpuSeconds() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  const [user, nice, system, , , irq, softirq, steal] = fields
  return {
    processes: (user + nice + system) / CLOCK_TICKS,
    interrupts: (irq + softirq) / CLOCK_TICKS,
    steal: steal / CLOCK_TICKS,
  }
}

/**
 * Returns the CPU seconds of this process plus its children that have exited
 * and been waited for (each wrk run counts here once it ends).
 */
export function selfAndReapedChildrenSeconds() {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS
}

/** Returns the CPU seconds of this process, its reaped children and the processes in `ownPids`. */
export function ownCpuSeconds(ownPids) {
  return selfAndReapedChildrenSeconds() + ownPids.reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0)
}

/**
 * Watches the machine for `ms` and returns the CPU share (100 = one core)
 * that processes other than this one and `ownPids` used meanwhile.
 */
export async function otherCpuPct(ownPids, ms) {
  const machine0 = machineCpuSeconds()
  const own0 = ownCpuSeconds(ownPids)
  await new Promise((resolve) => setTimeout(resolve, ms))
  const machine1 = machineCpuSeconds()
  const busy = machine1.processes + machine1.interrupts - machine0.processes - machine0.interrupts
  return Math.round(((busy - (ownCpuSeconds(ownPids) - own0)) / (ms / 1000)) * 100)
}
