// The servers of the benchmark besides the proxy, all on 127.0.0.1 with their
// files in temporary folders:
// - nginx, the fast origin: serves /<bucket>/<key> from a folder (path
//   style) and takes any PUT into a Lua handler that reads the whole body
//   from the socket, discards it, and responds 200 with the byte count in
//   X-Received-Bytes. It ignores signatures.
// - nginx as a plain reverse proxy in front of that origin (the passthrough
//   reference): a second nginx process with its own config.
// - a bare pingora proxy in front of that origin (bench/pingora-floor.rs):
//   pingora alone, without the proxy's S3 work.
// - s3s-fs, an S3 server on a folder that checks SigV4 with its own keys.
import { createHash } from 'node:crypto'
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { childPids } from './machine.mjs'
import { HOST, freePort, startChild, tempFolder, waitForPort } from './procs.mjs'

const MODULES = '/usr/lib/nginx/modules'

// Reads exactly Content-Length bytes in pieces of up to 256 KiB and keeps
// only their count. A body without Content-Length gets 411, so that a
// request framed another way fails loudly instead of being measured.
const SINK_LUA = `
        local length = tonumber(ngx.var.http_content_length)
        if not length then
          ngx.status = 411
          ngx.say("the benchmark origin needs Content-Length on PUT")
          return
        end
        local socket, err = ngx.req.socket()
        if not socket then
          ngx.status = 400
          ngx.say("no request body socket: ", err)
          return
        end
        socket:settimeout(60000)
        local received = 0
        while received < length do
          local data, readErr = socket:receiveany(math.min(262144, length - received))
          if not data then
            ngx.status = 400
            ngx.say("body read failed after ", received, " of ", length, " bytes: ", readErr)
            return
          end
          received = received + #data
        end
        ngx.header["X-Received-Bytes"] = received
        ngx.header["Content-Length"] = 0
        ngx.status = 200
        ngx.send_headers()`

/**
 * Returns an nginx config with the settings that both nginx processes share
 * (one worker, no access log, keep-alive connections, every file under
 * `prefix` and none outside it) around the given main and http directives.
 */
function nginxConfigFile({ prefix, main = '', http }) {
  return `${main}
worker_processes 1;
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'client_body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
${http}
}
`
}

/** Returns the origin's nginx config: files from `dataDir`, every PUT to the Lua sink. */
export function nginxConfig({ prefix, port, dataDir }) {
  const modules = ['ndk_http_module.so', 'ngx_http_lua_module.so']
    .map((name) => `load_module ${join(MODULES, name)};`)
    .join('\n')
  return nginxConfigFile({
    prefix,
    main: modules,
    http: `  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  lua_socket_buffer_size 256k;
  server {
    listen ${HOST}:${port};
    root ${dataDir};
    client_max_body_size 0;
    location / {
      if ($request_method = PUT) { rewrite ^ /.sink last; }
    }
    location = /.sink {
      internal;
      content_by_lua_block {${SINK_LUA}
      }
    }
  }`,
  })
}

/**
 * Returns the config of nginx as a plain reverse proxy to the origin on
 * `originPort`: kept-alive upstream connections, and request and response
 * bodies streamed through buffers of `bufferKiB` (64 KiB by default, the
 * size of the pieces the proxy relays) instead of being stored first.
 */
export function passthroughConfig({ prefix, port, originPort, bufferKiB = 64 }) {
  return nginxConfigFile({
    prefix,
    http: `  upstream origin {
    server ${HOST}:${originPort};
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
  }
  server {
    listen ${HOST}:${port};
    client_max_body_size 0;
    client_body_buffer_size ${bufferKiB}k;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_buffer_size ${bufferKiB}k;
      # Unused while proxy_buffering is off, but nginx checks them against proxy_buffer_size.
      proxy_buffers 4 ${bufferKiB}k;
      proxy_busy_buffers_size ${2 * bufferKiB}k;
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
    }
  }`,
  })
}

/**
 * Writes `size` bytes to `path`, repeating `block`. The benchmark objects are
 * made this way, so that they cost no random generation per MiB.
 */
export function writeObject(path, size, block) {
  const fd = openSync(path, 'w')
  try {
    let left = size
    while (left > 0) {
      const n = Math.min(left, block.length)
      writeSync(fd, block, 0, n)
      left -= n
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Returns the PIDs of the nginx master's workers. The master listens before
 * it forks them, so they may appear a moment after the port accepts.
 */
async function workerPidsOf(proc) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = childPids(proc.pid)
    if (pids.length > 0 || proc.exited()) return pids
    await sleep(20)
  }
  return []
}

/**
 * Starts nginx in the folder `prefix` on a free port, with the config that
 * `configFor(port)` returns, and retries with another port when it does not
 * start (another process may have taken the port meanwhile).
 */
async function runNginx(nginxBinary, { name, prefix, configFor }) {
  // Started as root, nginx runs its worker as an unprivileged user, which
  // needs to enter the folders (mkdtemp makes them 0700).
  chmodSync(prefix, 0o755)
  let lastOutput = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const configFile = join(prefix, 'nginx.conf')
    writeFileSync(configFile, configFor(port))
    const proc = startChild(name, nginxBinary, ['-c', configFile, '-p', prefix, '-e', join(prefix, 'error.log')])
    if (await waitForPort(port, proc)) return { ...proc, port, prefix, configFile, workerPids: await workerPidsOf(proc) }
    lastOutput = proc.output()
    await proc.stop()
  }
  throw new Error(`${name} did not start: ${lastOutput}`)
}

/** Starts the origin nginx on a free port, with an empty folder per bucket under its data folder. */
export async function startNginx(nginxBinary, { buckets }) {
  for (const module of ['ndk_http_module.so', 'ngx_http_lua_module.so']) {
    if (!existsSync(join(MODULES, module))) throw new Error(`nginx module ${module} is missing from ${MODULES}`)
  }
  const prefix = tempFolder('osp-bench-nginx-')
  const dataDir = join(prefix, 'data')
  for (const bucket of buckets) mkdirSync(join(dataDir, bucket), { recursive: true, mode: 0o755 })
  const nginx = await runNginx(nginxBinary, {
    name: 'nginx',
    prefix,
    configFor: (port) => nginxConfig({ prefix, port, dataDir }),
  })
  return { ...nginx, dataDir }
}

/** Starts nginx as a plain reverse proxy to the origin on `originPort`, on a free port. */
export function startPassthrough(nginxBinary, { originPort, bufferKiB }) {
  const prefix = tempFolder('osp-bench-passthrough-')
  return runNginx(nginxBinary, {
    name: 'nginx passthrough',
    prefix,
    configFor: (port) => passthroughConfig({ prefix, port, originPort, bufferKiB }),
  })
}

/** Starts `binary` with the arguments `argsFor(port)` on a free port, trying up to five ports. */
async function startOnFreePort(name, binary, argsFor) {
  let lastOutput = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const proc = startChild(name, binary, argsFor(port))
    if (await waitForPort(port, proc)) return { ...proc, port }
    lastOutput = proc.output()
    await proc.stop()
  }
  throw new Error(`${name} did not start: ${lastOutput}`)
}

/**
 * Starts the bare pingora proxy (bench/pingora-floor.rs) with `threads`
 * worker threads on a free port, forwarding to the origin on `originPort`.
 */
export function startPingoraFloor(binary, { originPort, threads }) {
  return startOnFreePort('bare pingora', binary, (port) => [`${HOST}:${originPort}`, `${HOST}:${port}`, String(threads)])
}

/** Starts s3s-fs on a free port with the given keys and bucket folders. */
export async function startS3sFs(binary, { accessKey, secretKey, buckets }) {
  const dataDir = tempFolder('osp-bench-s3s-')
  for (const bucket of buckets) mkdirSync(join(dataDir, bucket), { recursive: true })
  const args = (port) => ['--host', HOST, '--port', String(port), '--access-key', accessKey, '--secret-key', secretKey, dataDir]
  const proc = await startOnFreePort('s3s-fs', binary, args)
  return { ...proc, dataDir }
}

/**
 * Creates a sparse file of `size` bytes with `block` at the start of every
 * `every` bytes and holes (zeros) in between. It takes a few MiB of disk
 * whatever its size, and a GET that moves or drops a block fails the hash.
 * Then reads it once and returns the hex SHA-256 of the content. The read
 * also fills the page cache, so that nginx serves the object from memory
 * like the others. A first read of 5 GiB of holes took 9 s on the 2-core VM
 * of BENCHMARKS.md, and it capped the first GET near 340 MiB/s.
 */
export function writeSparseObject(path, size, block, every) {
  if (every < block.length) throw new Error(`sparse object: blocks every ${every} bytes overlap the ${block.length}-byte block`)
  const fd = openSync(path, 'w+')
  try {
    ftruncateSync(fd, size)
    for (let offset = 0; offset < size; offset += every) {
      writeSync(fd, block, 0, Math.min(block.length, size - offset), offset)
    }
    const hash = createHash('sha256')
    const buffer = Buffer.alloc(block.length)
    let offset = 0
    while (offset < size) {
      const n = readSync(fd, buffer, 0, buffer.length, offset)
      if (n === 0) throw new Error(`sparse object: ${path} ended after ${offset} of ${size} bytes`)
      hash.update(buffer.subarray(0, n))
      offset += n
    }
    return hash.digest('hex')
  } finally {
    closeSync(fd)
  }
}
