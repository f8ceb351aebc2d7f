// Installs the tools that the build, the tests, the demo and the benchmark need
// into ignored folders under .tools/, once. Every helper is idempotent: it
// returns at once when the tool is already there.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const toolsDir = join(root, '.tools')
export const venvDir = join(toolsDir, 'venv')
export const cargoRoot = join(toolsDir, 'cargo')

/** Returns true when `command` runs from PATH. */
function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

function run(command, args, options = {}) {
  console.error(`[tools] ${command} ${args.join(' ')}`)
  execFileSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options })
}

/**
 * Creates the virtualenv `dir` (.tools/venv unless given) and, when any of
 * the given PyPI packages is missing, installs all of them in one pip run.
 * Returns its bin folder. The check reads only the name before any extra,
 * but pip resolves the whole list: `['awscli[crt]', 'awscrt']` also repairs
 * a missing awscrt with the version that awscli pins.
 */
export function ensureVenv(packages, dir = venvDir) {
  mkdirSync(toolsDir, { recursive: true })
  const python = join(dir, 'bin', 'python')
  if (!existsSync(python)) run('python3', ['-m', 'venv', dir])
  const missing = packages.filter((spec) => {
    const name = spec.split(/[=<>\[]/)[0]
    return spawnSync(python, ['-m', 'pip', 'show', '-q', name], { stdio: 'ignore' }).status !== 0
  })
  if (missing.length > 0) run(python, ['-m', 'pip', 'install', '-q', ...packages])
  return join(dir, 'bin')
}

/**
 * Returns a folder to prepend to PATH so that `cmake` runs, or null when
 * cmake is already on PATH.
 */
export function ensureCmake() {
  if (onPath('cmake')) return null
  return ensureVenv(['cmake'])
}

/** Returns the path of the s3s-fs binary, installing it with cargo when missing. */
export function ensureS3sFs() {
  const binary = join(cargoRoot, 'bin', 's3s-fs')
  if (!existsSync(binary)) {
    run('cargo', ['install', 's3s-fs', '--version', '0.14.1', '--locked', '--features', 'binary', '--root', cargoRoot])
  }
  return binary
}

/** Installs Debian packages with apt-get when their commands are missing. */
export function ensureApt(commandsToPackages) {
  const missing = Object.entries(commandsToPackages).filter(([command]) => !onPath(command))
  if (missing.length === 0) return
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : []
  const apt = (args) => run(sudo.length ? 'sudo' : 'apt-get', sudo.length ? ['apt-get', ...args] : args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  apt(['update', '-q'])
  apt(['install', '-y', '-q', ...new Set(missing.map(([, pkg]) => pkg))])
}

/** Installs Debian packages that provide no command (such as nginx modules) with apt-get when missing. */
export function ensureDebianPackages(packages) {
  const installed = (pkg) =>
    spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes('install ok installed')
  const missing = packages.filter((pkg) => !installed(pkg))
  if (missing.length === 0) return
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : []
  const apt = (args) => run(sudo.length ? 'sudo' : 'apt-get', sudo.length ? ['apt-get', ...args] : args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  apt(['update', '-q'])
  apt(['install', '-y', '-q', ...missing])
}

/**
 * Builds the bare pingora proxy of bench/pingora-floor.rs (a cargo example of
 * this crate, sharing its target folder) and returns the binary's path.
 * cargo returns at once when it is up to date.
 */
export function buildPingoraFloor() {
  const cmakeBin = ensureCmake()
  const env = cmakeBin ? { ...process.env, PATH: `${cmakeBin}:${process.env.PATH}` } : process.env
  run('cargo', ['build', '--release', '--quiet', '--example', 'pingora-floor'], { cwd: root, env })
  return join(root, 'target', 'release', 'examples', 'pingora-floor')
}

/**
 * Installs what the benchmark runs besides the proxy: nginx (the fast origin)
 * and wrk (the load generator) from Debian, s3s-fs, and the bare pingora
 * proxy. Returns their paths.
 */
export function ensureBenchTools() {
  ensureApt({ nginx: 'nginx', wrk: 'wrk' })
  ensureDebianPackages(['libnginx-mod-http-lua'])
  const locate = (command) => execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim()
  return { nginx: locate('nginx'), wrk: locate('wrk'), s3sFs: ensureS3sFs(), pingoraFloor: buildPingoraFloor() }
}
