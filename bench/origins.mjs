// The two backends of the benchmark, both on 127.0.0.1 with their files in
// temporary folders:
// - nginx, the fast origin: serves /<bucket>/<key> from a folder (path
//   style) and takes any PUT into a Lua handler that reads the whole body
//   from the socket, discards it, and responds 200 with the byte count in
//   X-Received-Bytes. It ignores signatures.
// - s3s-fs, an S3 server on a folder that checks SigV4 with its own keys.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'

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

/** Returns the nginx config: one worker, every file under `prefix`, none outside it. */
export function nginxConfig({ prefix, port, dataDir }) {
  const modules = ['ndk_http_module.so', 'ngx_http_lua_module.so']
    .map((name) => `load_module ${join(MODULES, name)};`)
    .join('\n')
  return `${modules}
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
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
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
  }
}
`
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

/** Starts nginx on a free port, with an empty folder per bucket under its data folder. */
export async function startNginx(nginxBinary, { buckets }) {
  for (const module of ['ndk_http_module.so', 'ngx_http_lua_module.so']) {
    if (!existsSync(join(MODULES, module))) throw new Error(`nginx module ${module} is missing from ${MODULES}`)
  }
  const prefix = tempFolder('osp-bench-nginx-')
  // Started as root, nginx serves files as an unprivileged worker user, which
  // needs to enter the folders (mkdtemp makes them 0700).
  chmodSync(prefix, 0o755)
  const dataDir = join(prefix, 'data')
  for (const bucket of buckets) mkdirSync(join(dataDir, bucket), { recursive: true, mode: 0o755 })
  let lastOutput = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const configFile = join(prefix, 'nginx.conf')
    writeFileSync(configFile, nginxConfig({ prefix, port, dataDir }))
    const proc = startChild('nginx', nginxBinary, ['-c', configFile, '-p', prefix, '-e', join(prefix, 'error.log')])
    if (await waitForPort(port, proc)) {
      return { ...proc, port, dataDir, prefix, configFile }
    }
    lastOutput = proc.output()
    await proc.stop()
  }
  throw new Error(`nginx did not start: ${lastOutput}`)
}

/** Starts s3s-fs on a free port with the given keys and bucket folders. */
export async function startS3sFs(binary, { accessKey, secretKey, buckets }) {
  const dataDir = tempFolder('osp-bench-s3s-')
  for (const bucket of buckets) mkdirSync(join(dataDir, bucket), { recursive: true })
  let lastOutput = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const args = ['--host', HOST, '--port', String(port), '--access-key', accessKey, '--secret-key', secretKey, dataDir]
    const proc = startChild('s3s-fs', binary, args)
    if (await waitForPort(port, proc)) return { ...proc, port, dataDir }
    lastOutput = proc.output()
    await proc.stop()
  }
  throw new Error(`s3s-fs did not start: ${lastOutput}`)
}
