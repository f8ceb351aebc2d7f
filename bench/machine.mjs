// What the benchmark ran on: CPU, memory, kernel and tool versions.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import os from 'node:os'

function firstLine(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  if (result.error || result.status !== 0) return 'unknown'
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0]
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

/** CPU seconds (user + system) that a process and its threads have used so far. */
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

/** The PIDs of a process's direct children (the nginx worker of its master). */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}
