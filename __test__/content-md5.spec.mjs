// addContentMd5: DeleteObjects sent with a CRC checksum but no Content-MD5
// (what current AWS SDKs send) gets a Content-MD5 header added by the proxy,
// for backends that still require one. A recording backend stand-in shows
// what arrives; the checksum of the body must match the header.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'

import { DeleteObjectsCommand } from '@aws-sdk/client-s3'

import { HOST, makeClient, startProxy } from './helpers.mjs'

const BUCKET = 'md5-bucket'

describe('addContentMd5', () => {
  let backend
  const received = []

  before(async () => {
    backend = http.createServer((req, res) => {
      const chunks = []
      req.on('data', (chunk) => chunks.push(chunk))
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) })
        res.writeHead(200, { 'content-type': 'application/xml' })
        res.end('<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Deleted><Key>a.txt</Key></Deleted></DeleteResult>')
      })
    })
    await new Promise((resolve) => backend.listen(0, HOST, resolve))
  })

  after(async () => {
    await new Promise((resolve) => backend.close(resolve))
  })

  async function deleteThrough(addContentMd5) {
    received.length = 0
    const proxy = await startProxy({
      cosMap: {
        [BUCKET]: { host: HOST, port: backend.address().port, tls: false, addressingStyle: 'path', accessKey: 'a', secretKey: 'b', addContentMd5 },
      },
    })
    try {
      const client = makeClient(proxy.httpPort)
      await client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: 'a.txt' }] } }))
    } finally {
      await proxy.close()
    }
    assert.equal(received.length, 1)
    return received[0]
  }

  test('adds Content-MD5 of the body', async () => {
    const { headers, body } = await deleteThrough(true)
    assert.equal(headers['content-md5'], createHash('md5').update(body).digest('base64'))
    assert.ok(body.includes('<Key>a.txt</Key>'), 'the body is forwarded whole')
  })

  test('leaves requests alone by default', async () => {
    const { headers } = await deleteThrough(false)
    assert.equal(headers['content-md5'], undefined)
  })
})
