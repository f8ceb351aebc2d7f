// Test fixtures for TLS: a certificate authority and server certificates made
// with the openssl command at test time, and nginx as a TLS terminator in
// front of a plain-HTTP backend. Everything lives in a temporary folder.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { ensureApt } from '../scripts/tools.mjs'
import { HOST, freePort, waitForPort, stopChild } from './helpers.mjs'

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/**
 * Creates a folder with a CA (`ca.pem`) and, per name in `servers`, a server
 * certificate for IP 127.0.0.1 and DNS localhost (`NAME.pem`, `NAME-key.pem`)
 * signed by that CA. `selfSigned` names get a certificate signed by nobody
 * the CA knows.
 */
export async function makeCertificates({ servers = ['server'], selfSigned = [] } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'osp-tls-'))
  const subjectAltName = 'subjectAltName=IP:127.0.0.1,DNS:localhost'
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=object-storage-proxy test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  await writeFile(join(dir, 'server.ext'), `${subjectAltName}\nextendedKeyUsage=serverAuth\n`)
  for (const name of servers) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1'], dir)
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', 'server.ext'], dir)
  }
  for (const name of selfSigned) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.pem`,
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', subjectAltName, '-addext', 'basicConstraints=critical,CA:FALSE'], dir)
  }
  return {
    dir,
    caPath: join(dir, 'ca.pem'),
    certPath: (name) => join(dir, `${name}.pem`),
    keyPath: (name) => join(dir, `${name}-key.pem`),
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}

/**
 * Starts nginx on 127.0.0.1 terminating TLS with each given certificate on a
 * port of its own, and passing requests unchanged (Host included, bodies
 * streamed) to `upstreamPort`. Returns { ports: { NAME: port }, stop }.
 */
export async function startTlsTerminator({ certificates, names, upstreamPort }) {
  ensureApt({ nginx: 'nginx' })
  const dir = await mkdtemp(join(tmpdir(), 'osp-nginx-'))
  const ports = {}
  const servers = []
  for (const name of names) {
    ports[name] = await freePort()
    servers.push(`
    server {
      listen ${HOST}:${ports[name]} ssl;
      ssl_certificate ${certificates.certPath(name)};
      ssl_certificate_key ${certificates.keyPath(name)};
      location / {
        proxy_pass http://${HOST}:${upstreamPort};
        proxy_set_header Host $http_host;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_request_buffering off;
        proxy_buffering off;
      }
    }`)
  }
  const config = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${servers.join('\n')}
}
`
  await writeFile(join(dir, 'nginx.conf'), config)
  const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] })
  for (const port of Object.values(ports)) {
    if (!(await waitForPort(port, child, 10_000))) {
      await stopChild(child)
      throw new Error(`nginx did not listen on ${HOST}:${port}`)
    }
  }
  return {
    ports,
    async stop() {
      await stopChild(child)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
