// Builds the native addon from source with `napi build`, which also writes
// index.js and index.d.ts. pingora-core's zlib-ng build script needs cmake;
// when none is on PATH, cmake is installed from PyPI into .tools/venv.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureCmake } from './tools.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const debug = process.argv.includes('--debug')

const env = { ...process.env }
const cmakeDir = ensureCmake()
if (cmakeDir) env.PATH = `${cmakeDir}:${env.PATH}`

const args = ['napi', 'build', '--platform', '--js', 'index.js', '--dts', 'index.d.ts']
if (!debug) args.push('--release')
const result = spawnSync('npx', args, { cwd: root, env, stdio: 'inherit' })
if (result.status !== 0) {
  console.error(`napi build failed with exit code ${result.status}`)
  process.exit(result.status ?? 1)
}
