// What `npm test` runs: installs the test backend (s3s-fs), runs the Rust
// tests, builds the addon when it is missing or older than its sources, then
// runs the end-to-end specs in __test__/ one file at a time.
// The specs run even when the Rust tests failed. The exit code is non-zero
// when any step failed.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ensureCmake, ensureS3sFs, root } from './tools.mjs'

const SOURCES = ['src', 'core/src', 'Cargo.toml', 'core/Cargo.toml', 'Cargo.lock', 'build.rs']

function step(name, command, args, options = {}) {
  console.error(`\n[test] ${name}: ${command} ${args.join(' ')}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options })
  const ok = result.status === 0
  if (!ok) console.error(`[test] ${name} failed (exit ${result.status ?? result.signal ?? result.error})`)
  return ok
}

/** Latest modification time of the files under the given paths. */
function newestMtime(paths) {
  let newest = 0
  const visit = (path) => {
    if (!existsSync(path)) return
    const stat = statSync(path)
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry))
    else newest = Math.max(newest, stat.mtimeMs)
  }
  for (const path of paths) visit(join(root, path))
  return newest
}

/** True when index.js and a built .node file exist and are newer than the Rust sources. */
function addonIsCurrent() {
  const binaries = readdirSync(root).filter((name) => /^object-storage-proxy\..+\.node$/.test(name))
  if (!existsSync(join(root, 'index.js')) || binaries.length === 0) return false
  const files = ['index.js', ...binaries].map((name) => join(root, name))
  const built = Math.min(...files.map((file) => statSync(file).mtimeMs))
  return built >= newestMtime(SOURCES)
}

const failed = []

const s3sFs = ensureS3sFs()

// pingora-core's zlib-ng build script needs cmake for the Rust tests too.
const cmakeDir = ensureCmake()
const cargoEnv = cmakeDir ? { ...process.env, PATH: `${cmakeDir}:${process.env.PATH}` } : process.env
if (!step('Rust tests', 'cargo', ['test', '--workspace'], { env: cargoEnv })) failed.push('cargo test')

let addonReady = addonIsCurrent()
if (!addonReady) {
  console.error('[test] the addon is missing or older than its sources; building it')
  addonReady = step('build', process.execPath, [join(root, 'scripts', 'build.mjs')])
  if (!addonReady) failed.push('build')
}

if (addonReady) {
  const specs = readdirSync(join(root, '__test__'))
    .filter((name) => name.endsWith('.spec.mjs'))
    .sort()
    .map((name) => relative(root, join(root, '__test__', name)))
  const ok = step('end-to-end specs', process.execPath, ['--test', '--test-concurrency=1', ...specs], {
    // The SDK warns on every spec file that its 2027 releases need Node 22.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env, S3S_FS_BIN: s3sFs },
  })
  if (!ok) failed.push('node --test')
} else {
  console.error('[test] skipping the end-to-end specs: no addon')
}

if (failed.length > 0) {
  console.error(`\n[test] failed: ${failed.join(', ')}`)
  process.exit(1)
}
console.error('\n[test] all steps passed')
