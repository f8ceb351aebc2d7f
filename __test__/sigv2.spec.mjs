// AWS Signature Version 2 from real clients: boto3 and aws CLI v1 presigned
// URLs (their default in us-east-1), s3cmd signurl, and s3cmd with
// `signature_v2 = True`, all against the proxy on 127.0.0.1. Python clients
// run from the project venv (.tools/venv); s3cmd comes from Debian.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash, createHmac } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'

import {
  CLIENT_AK,
  CLIENT_SK,
  HOST,
  cosMapFor,
  httpRequest,
  makeClient,
  parseS3Error,
  randomBody,
  readAll,
  sha256,
  startBackend,
  startProxy,
} from './helpers.mjs'

const run = promisify(execFile)

const BUCKET = 'sigv2-bucket'
const DOMAIN = 's3.sigv2.test'
// A key with a space, a plus sign and a non-ASCII letter: SigV2 signs the
// path exactly as the client encoded it.
const AWKWARD_KEY = 'dir/a b+c ü.bin'

// Presigns with boto3's defaults: in us-east-1, a SigV2 query URL.
const BOTO3_PRESIGN = `
import sys
import boto3
endpoint, method, bucket, key, expires = sys.argv[1:6]
client = boto3.session.Session(region_name="us-east-1").client("s3", endpoint_url=endpoint)
operation = {"GET": "get_object", "PUT": "put_object"}[method]
print(client.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires)))
`

/**
 * Builds the environment of the Python clients: the client keys, us-east-1,
 * and no AWS or s3cmd settings from the machine (HOME is a fresh folder).
 */
function clientEnv(home) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_') && name !== 'PYTHONPATH'),
  )
  return {
    ...env,
    HOME: home,
    AWS_ACCESS_KEY_ID: CLIENT_AK,
    AWS_SECRET_ACCESS_KEY: CLIENT_SK,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(home, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'aws-credentials'),
    PYTHONNOUSERSITE: '1',
  }
}

/** Installs s3cmd from Debian, or into the venv when apt-get fails, and returns the command. */
function installS3cmd(tools, venvBin) {
  try {
    tools.ensureApt({ s3cmd: 's3cmd' })
    return 's3cmd'
  } catch (err) {
    console.error(`[sigv2] apt-get could not install s3cmd (${err.message}); installing it into the venv`)
    tools.ensureVenv(['s3cmd'])
    return join(venvBin, 's3cmd')
  }
}

/** Signs a request with SigV2 header auth (Date, no x-amz-* headers). */
function signV2({ method, resource, headers = {}, secretKey = CLIENT_SK, date = new Date() }) {
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]))
  const dateText = date.toUTCString()
  const stringToSign = [method, lower['content-md5'] ?? '', lower['content-type'] ?? '', dateText, resource].join('\n')
  const signature = createHmac('sha1', secretKey).update(stringToSign).digest('base64')
  return { ...headers, date: dateText, authorization: `AWS ${CLIENT_AK}:${signature}` }
}

/** Asserts an S3 XML error response with the given status and code, and returns the error. */
function assertS3Error(status, body, expectedStatus, code) {
  const text = Buffer.from(body).toString()
  assert.equal(status, expectedStatus, text)
  const err = parseS3Error(text)
  assert.equal(err.code, code, text)
  return err
}

describe('Signature Version 2', { timeout: 900_000 }, () => {
  let venvBin
  let s3cmd
  let home
  let env
  let backend
  let proxy
  let client
  let endpoint

  before(async () => {
    const tools = await import('../scripts/tools.mjs')
    venvBin = tools.ensureVenv(['boto3', 'awscli'])
    s3cmd = installS3cmd(tools, venvBin)
    home = await mkdtemp(join(tmpdir(), 'osp-sigv2-'))
    env = clientEnv(home)
    backend = await startBackend({ buckets: [BUCKET] })
    proxy = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]), virtualHostDomains: [DOMAIN] })
    endpoint = `http://${HOST}:${proxy.httpPort}`
    client = makeClient(proxy.httpPort)
  })

  after(async () => {
    client?.destroy()
    await proxy?.close()
    await backend?.stop()
    if (home) await rm(home, { recursive: true, force: true })
  })

  const putObject = (key, body) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))
  const getObject = async (key) => readAll((await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body)

  async function boto3Presign(method, key, expires = 300, target = endpoint) {
    const { stdout } = await run(join(venvBin, 'python'), ['-c', BOTO3_PRESIGN, target, method, BUCKET, key, String(expires)], {
      env,
    })
    return stdout.trim()
  }

  async function writeS3cmdConfig() {
    const config = join(home, 's3cfg')
    const hostPort = `${HOST}:${proxy.httpPort}`
    await writeFile(
      config,
      [
        '[default]',
        `access_key = ${CLIENT_AK}`,
        `secret_key = ${CLIENT_SK}`,
        `host_base = ${hostPort}`,
        `host_bucket = ${hostPort}`,
        'bucket_location = us-east-1',
        'use_https = False',
        'signature_v2 = True',
        '',
      ].join('\n'),
    )
    return config
  }

  const runS3cmd = (config, args) => run(s3cmd, ['-c', config, ...args], { env, maxBuffer: 16 << 20 })

  test('boto3 presigned GET (SigV2 by default) returns the object bytes', async () => {
    const body = randomBody(300_000)
    await putObject(AWKWARD_KEY, body)
    const url = await boto3Presign('GET', AWKWARD_KEY)
    assert.ok(url.startsWith(`${endpoint}/${BUCKET}/`), url)
    assert.match(url, /[?&]AWSAccessKeyId=/, 'boto3 presigned with SigV2')
    assert.doesNotMatch(url, /X-Amz-Signature/)
    const res = await fetch(url)
    const bytes = Buffer.from(await res.arrayBuffer())
    assert.equal(res.status, 200, bytes.toString())
    assert.equal(sha256(bytes), sha256(body))
  })

  test('boto3 presigned PUT stores the uploaded bytes', async () => {
    const body = randomBody(200_000)
    const url = await boto3Presign('PUT', AWKWARD_KEY.replace('.bin', '-put.bin'))
    assert.match(url, /[?&]AWSAccessKeyId=/, 'boto3 presigned with SigV2')
    const res = await fetch(url, { method: 'PUT', body })
    assert.equal(res.status, 200, await res.text())
    assert.equal(sha256(await getObject(AWKWARD_KEY.replace('.bin', '-put.bin'))), sha256(body))
  })

  test('aws CLI v1 presigned GET (SigV2 by default) returns the object bytes', async () => {
    const body = randomBody(120_000)
    const key = 'cli/presigned object.bin'
    await putObject(key, body)
    const { stdout } = await run(
      join(venvBin, 'aws'),
      ['--endpoint-url', endpoint, 's3', 'presign', `s3://${BUCKET}/${key}`, '--expires-in', '300'],
      { env },
    )
    const url = stdout.trim()
    assert.match(url, /[?&]AWSAccessKeyId=/, 'aws CLI v1 presigned with SigV2')
    const res = await fetch(url)
    const bytes = Buffer.from(await res.arrayBuffer())
    assert.equal(res.status, 200, bytes.toString())
    assert.equal(sha256(bytes), sha256(body))
  })

  test('s3cmd signurl GET returns the object bytes', async () => {
    const body = randomBody(50_000)
    const key = 's3cmd/signed.bin'
    await putObject(key, body)
    const config = await writeS3cmdConfig()
    const { stdout } = await runS3cmd(config, ['signurl', `s3://${BUCKET}/${key}`, '+300'])
    const url = stdout.trim()
    assert.match(url, /[?&]AWSAccessKeyId=/, url)
    const res = await fetch(url)
    const bytes = Buffer.from(await res.arrayBuffer())
    assert.equal(res.status, 200, bytes.toString())
    assert.equal(sha256(bytes), sha256(body))
  })

  test('s3cmd with signature_v2 puts, lists, gets and deletes', async () => {
    const config = await writeS3cmdConfig()
    const source = join(home, 'upload.bin')
    const target = join(home, 'download.bin')
    const body = randomBody(400_000)
    await writeFile(source, body)
    const key = 's3cmd/header signed.bin'

    const { stderr } = await runS3cmd(config, ['--debug', 'put', source, `s3://${BUCKET}/${key}`])
    assert.match(stderr, /Using signature v2/)
    assert.equal(sha256(await getObject(key)), sha256(body), 'stored bytes')

    const { stdout: listing } = await runS3cmd(config, ['ls', `s3://${BUCKET}/s3cmd/`])
    assert.match(listing, /header signed\.bin/)

    await runS3cmd(config, ['get', '--force', `s3://${BUCKET}/${key}`, target])
    assert.equal(sha256(await readFile(target)), sha256(body), 'downloaded bytes')

    await runS3cmd(config, ['del', `s3://${BUCKET}/${key}`])
    assert.equal(backend.hasObject(BUCKET, key), false)
  })

  test('s3cmd multipart upload signs uploads, partNumber and uploadId', async () => {
    const config = await writeS3cmdConfig()
    const source = join(home, 'multipart.bin')
    const body = randomBody(6 * 1024 * 1024 + 1000)
    await writeFile(source, body)
    const key = 's3cmd/multipart.bin'
    const { stderr } = await runS3cmd(config, ['--debug', 'put', '--multipart-chunk-size-mb=5', source, `s3://${BUCKET}/${key}`])
    // s3cmd logs each string it signs.
    assert.match(stderr, /SignHeaders: 'POST\\n[^']*\/multipart\.bin\?uploads'/)
    assert.match(stderr, /SignHeaders: 'PUT\\n[^']*\/multipart\.bin\?partNumber=2&uploadId=/)
    assert.equal(sha256(await getObject(key)), sha256(body))
  })

  test('virtual-host request: the bucket from the Host is signed', async () => {
    const body = Buffer.from('virtual host, signature version 2')
    await putObject('vhost.txt', body)
    const host = `${BUCKET}.${DOMAIN}:${proxy.httpPort}`
    const headers = signV2({ method: 'GET', resource: `/${BUCKET}/vhost.txt` })
    const res = await httpRequest({ port: proxy.httpPort, path: '/vhost.txt', headers: { ...headers, host } })
    assert.equal(res.status, 200, res.body.toString())
    assert.deepEqual(res.body, body)

    // Signed without the bucket, as if the request were path style: rejected.
    const wrong = signV2({ method: 'GET', resource: '/vhost.txt' })
    const rejected = await httpRequest({ port: proxy.httpPort, path: '/vhost.txt', headers: { ...wrong, host } })
    assertS3Error(rejected.status, rejected.body, 403, 'SignatureDoesNotMatch')
  })

  test('Content-MD5 is signed and reaches the backend', async () => {
    const body = Buffer.from('checked by its MD5')
    const md5 = createHash('md5').update(body).digest('base64')
    const put = (key, contentMd5) => {
      const headers = signV2({
        method: 'PUT',
        resource: `/${BUCKET}/${key}`,
        headers: { 'content-md5': contentMd5, 'content-type': 'text/plain' },
      })
      return httpRequest({ port: proxy.httpPort, method: 'PUT', path: `/${BUCKET}/${key}`, headers, body })
    }
    const ok = await put('md5.txt', md5)
    assert.equal(ok.status, 200, ok.body.toString())
    assert.deepEqual(await getObject('md5.txt'), body)

    // Signed correctly, but the MD5 is of other bytes, so the backend rejects
    // it. s3s-fs writes the bytes before it compares, so only its response is
    // checked here.
    const otherMd5 = createHash('md5').update('other bytes').digest('base64')
    const bad = await put('md5-mismatch.txt', otherMd5)
    assertS3Error(bad.status, bad.body, 400, 'BadDigest')
  })

  test('expired URL: 403 AccessDenied', async () => {
    await putObject('expiring.txt', Buffer.from('soon gone'))
    const url = await boto3Presign('GET', 'expiring.txt', 1)
    assert.match(url, /[?&]AWSAccessKeyId=/)
    await sleep(2100)
    const res = await fetch(url)
    const err = assertS3Error(res.status, await res.arrayBuffer(), 403, 'AccessDenied')
    assert.equal(err.message, 'Request has expired')
  })

  test('tampered signature: 403 SignatureDoesNotMatch', async () => {
    await putObject('tampered.txt', Buffer.from('x'))
    const url = new URL(await boto3Presign('GET', 'tampered.txt'))
    const signature = url.searchParams.get('Signature')
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1)
    url.searchParams.set('Signature', flipped)
    const res = await fetch(url)
    assertS3Error(res.status, await res.arrayBuffer(), 403, 'SignatureDoesNotMatch')
  })

  test('unknown access key: 403 InvalidAccessKeyId', async () => {
    const headers = signV2({ method: 'GET', resource: `/${BUCKET}/tampered.txt` })
    headers.authorization = headers.authorization.replace(CLIENT_AK, 'nobody')
    const res = await httpRequest({ port: proxy.httpPort, path: `/${BUCKET}/tampered.txt`, headers })
    assertS3Error(res.status, res.body, 403, 'InvalidAccessKeyId')
  })

  test('allowSigV2: false answers 400 InvalidRequest', async () => {
    const strict = await startProxy({ cosMap: cosMapFor(backend.port, [BUCKET]), allowSigV2: false })
    try {
      const url = await boto3Presign('GET', 'tampered.txt', 300, `http://${HOST}:${strict.httpPort}`)
      assert.match(url, /[?&]AWSAccessKeyId=/)
      const res = await fetch(url)
      const err = assertS3Error(res.status, await res.arrayBuffer(), 400, 'InvalidRequest')
      assert.match(err.message, /Signature Version 2\) is turned off on this proxy/)

      const headers = signV2({ method: 'GET', resource: `/${BUCKET}/tampered.txt` })
      const header = await httpRequest({ port: strict.httpPort, path: `/${BUCKET}/tampered.txt`, headers })
      assertS3Error(header.status, header.body, 400, 'InvalidRequest')

      // SigV4 still works there.
      const v4 = makeClient(strict.httpPort)
      try {
        const out = await v4.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'tampered.txt' }))
        assert.deepEqual(await readAll(out.Body), Buffer.from('x'))
      } finally {
        v4.destroy()
      }
    } finally {
      await strict.close()
    }
  })
})
