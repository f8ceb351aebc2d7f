// aws-chunked request bodies for hand-made uploads, the checksums S3 accepts
// in trailers, and a recorder that shows which upload format a real client
// put on the wire.
import { createHash, createHmac } from 'node:crypto'
import net from 'node:net'
import zlib from 'node:zlib'

import { CLIENT_SK, HOST, REGION, amzDate, signRequest } from './helpers.mjs'

export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

// ---------------------------------------------------------------------------
// Checksums, as S3 writes them: the digest's big-endian bytes in base64

/** Builds the 256-entry table of a reflected CRC with the given polynomial. */
function reflectedTable(poly, bits) {
  const mask = (1n << BigInt(bits)) - 1n
  const table = []
  for (let n = 0n; n < 256n; n++) {
    let crc = n
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n
    table.push(crc & mask)
  }
  return table
}

const CRC32C_TABLE = reflectedTable(0x82f63b78n, 32).map(Number)
const CRC64NVME_TABLE = reflectedTable(0x9a6c9329ac4bc9b5n, 64)

function crc32c(data) {
  let crc = 0xffffffff
  for (const byte of data) crc = (crc >>> 8) ^ CRC32C_TABLE[(crc ^ byte) & 0xff]
  return (crc ^ 0xffffffff) >>> 0
}

function crc64nvme(data) {
  const mask = 0xffffffffffffffffn
  let crc = mask
  for (const byte of data) crc = (crc >> 8n) ^ CRC64NVME_TABLE[Number((crc ^ BigInt(byte)) & 0xffn)]
  return crc ^ mask
}

function uint32Bytes(value) {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(value >>> 0)
  return out
}

function uint64Bytes(value) {
  const out = Buffer.alloc(8)
  out.writeBigUInt64BE(value)
  return out
}

/** Computes a checksum by its S3 name (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) as base64. */
export function checksumBase64(algorithm, data) {
  switch (algorithm.toUpperCase()) {
    case 'CRC32':
      return uint32Bytes(zlib.crc32(data)).toString('base64')
    case 'CRC32C':
      return uint32Bytes(crc32c(data)).toString('base64')
    case 'CRC64NVME':
      return uint64Bytes(crc64nvme(data)).toString('base64')
    case 'SHA1':
      return createHash('sha1').update(data).digest('base64')
    case 'SHA256':
      return createHash('sha256').update(data).digest('base64')
    default:
      throw new Error(`unknown checksum algorithm ${algorithm}`)
  }
}

/** The header and trailer name of a checksum: x-amz-checksum-crc32 and so on. */
export const checksumHeader = (algorithm) => `x-amz-checksum-${algorithm.toLowerCase()}`

// ---------------------------------------------------------------------------
// aws-chunked encoding

const hmac = (key, data) => createHmac('sha256', key).update(data).digest()
const sha256Hex = (data) => createHash('sha256').update(data).digest('hex')

/** Derives the SigV4 signing key for a day (YYYYMMDD), region and service. */
export function signingKeyFor(secretKey, day, region, service = 's3') {
  return hmac(hmac(hmac(hmac(`AWS4${secretKey}`, day), region), service), 'aws4_request')
}

/**
 * Encodes `data` as an aws-chunked body.
 *
 * `signing` ({ key, amzDate, scope, seed }) turns on chunk signatures, chained
 * from the request signature `seed`; `trailer` ({ name, value }) appends a
 * trailer line (plus x-amz-trailer-signature when signing). `tamper(chunks)`
 * may change the chunk data after the signatures were computed, to forge a
 * body. Returns a Buffer.
 */
export function encodeAwsChunked(data, { chunkSize = 64 * 1024, signing, trailer, withTrailerSection = false, tamper } = {}) {
  const chunks = []
  for (let offset = 0; offset < data.length; offset += chunkSize) chunks.push(data.subarray(offset, offset + chunkSize))
  chunks.push(Buffer.alloc(0))

  let previous = signing?.seed
  const signatures = chunks.map((chunk) => {
    if (!signing) return undefined
    const stringToSign = ['AWS4-HMAC-SHA256-PAYLOAD', signing.amzDate, signing.scope, previous, EMPTY_SHA256, sha256Hex(chunk)].join('\n')
    previous = hmac(signing.key, stringToSign).toString('hex')
    return previous
  })
  const sent = tamper ? tamper(chunks.map((chunk) => Buffer.from(chunk))) : chunks

  const parts = []
  sent.forEach((chunk, index) => {
    const extension = signatures[index] ? `;chunk-signature=${signatures[index]}` : ''
    parts.push(Buffer.from(`${chunk.length.toString(16)}${extension}\r\n`))
    if (chunk.length > 0) parts.push(chunk, Buffer.from('\r\n'))
  })

  if (trailer || withTrailerSection) {
    const lines = trailer ? `${trailer.name}:${trailer.value}\n` : ''
    parts.push(Buffer.from(lines.replace(/\n/g, '\r\n')))
    if (signing) {
      const stringToSign = ['AWS4-HMAC-SHA256-TRAILER', signing.amzDate, signing.scope, previous, sha256Hex(lines)].join('\n')
      parts.push(Buffer.from(`x-amz-trailer-signature:${hmac(signing.key, stringToSign).toString('hex')}\r\n`))
    }
  }
  parts.push(Buffer.from('\r\n'))
  return Buffer.concat(parts)
}

/**
 * Signs an aws-chunked PUT of `data` to `path` (with `query`, as for
 * signRequest) with the client keys and encodes its body. `mode` is one of the three STREAMING-* values; for the
 * trailer modes `algorithm` names the checksum announced in x-amz-trailer.
 *
 * Options that make the upload invalid:
 * - `trailerValue` replaces the correct checksum value.
 * - `omitTrailer` announces the trailer in x-amz-trailer but never sends it.
 * - `decodedLength` replaces the true x-amz-decoded-content-length; null
 *   leaves the header out.
 * - `tamper` goes to encodeAwsChunked.
 *
 * Returns { path, headers, body } for httpRequest. `contentLength: false`
 * leaves Content-Length out (the body then goes with HTTP chunked framing).
 */
export function chunkedUpload({
  host,
  path,
  query,
  data,
  mode,
  algorithm = 'CRC32',
  chunkSize = 64 * 1024,
  trailerValue,
  omitTrailer = false,
  decodedLength = data.length,
  tamper,
  contentLength = true,
  extraHeaders = {},
  date = new Date(),
}) {
  const hasTrailer = mode !== STREAMING_SIGNED
  const signed = mode !== STREAMING_UNSIGNED_TRAILER
  const headers = {
    'content-encoding': 'aws-chunked',
    ...extraHeaders,
  }
  if (decodedLength !== null) headers['x-amz-decoded-content-length'] = String(decodedLength)
  if (hasTrailer) headers['x-amz-trailer'] = checksumHeader(algorithm)

  const trailer = hasTrailer && !omitTrailer
    ? { name: checksumHeader(algorithm), value: trailerValue ?? checksumBase64(algorithm, data) }
    : undefined
  const encode = (request) =>
    encodeAwsChunked(data, {
      chunkSize,
      signing: signed
        ? {
            key: signingKeyFor(CLIENT_SK, amzDate(date).slice(0, 8), REGION),
            amzDate: amzDate(date),
            scope: request.scope,
            seed: request.signature,
          }
        : undefined,
      trailer,
      withTrailerSection: hasTrailer,
      tamper,
    })

  // Content-Length is signed and the request signature seeds the chunk
  // signatures. Every signature is 64 hex digits, so a stand-in seed gives
  // the encoded length before the request is signed.
  if (contentLength) {
    const length = encode({ scope: '', signature: '0'.repeat(64) }).length
    headers['content-length'] = String(length)
  }
  const request = signRequest({ method: 'PUT', host, path, query, headers, payloadHash: mode, date })
  return { path: request.path, headers: request.headers, body: encode(request) }
}

// ---------------------------------------------------------------------------
// What real clients send

const REQUEST_HEAD = /(GET|PUT|POST|HEAD|DELETE) ([^ \r\n]+) HTTP\/1\.1\r\n((?:[^\r\n]+\r\n)*?)\r\n/g
const TRAILER_SECTION = /\r\n0(?:;chunk-signature=[0-9a-f]{64})?\r\n((?:x-amz-[a-z0-9-]+:[^\r\n]*\r\n)+)\r\n/g
const CHUNK_SIGNATURE = /;chunk-signature=[0-9a-f]{64}\r\n/g
const CARRY = 16 * 1024

/**
 * Starts a TCP relay on 127.0.0.1 that forwards every connection unchanged to
 * 127.0.0.1:targetPort and reads the client's bytes as they pass: request
 * lines and headers, aws-chunked trailer sections and chunk signatures.
 * Works for plain HTTP/1.1 only.
 *
 * `requests()` lists { method, target, headers, trailers, chunkSignatures }
 * in the order the heads arrived on each connection, connections in the
 * order they opened. `reset()` clears the list.
 */
export function startRecordingRelay(targetPort) {
  let connections = []
  const sockets = new Set()
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    const upstream = net.connect({ host: HOST, port: targetPort })
    const seen = []
    connections.push(seen)

    let carry = ''
    client.on('data', (chunk) => {
      const text = carry + chunk.toString('latin1')
      // A match is new when it ends past the carried-over text: one that
      // ends inside it was complete, and counted, in the previous round.
      const fresh = (match) => match.index + match[0].length > carry.length
      const events = []
      for (const match of text.matchAll(REQUEST_HEAD)) {
        if (fresh(match)) events.push({ at: match.index, head: match })
      }
      for (const match of text.matchAll(TRAILER_SECTION)) {
        if (fresh(match)) events.push({ at: match.index, trailer: match[1] })
      }
      for (const match of text.matchAll(CHUNK_SIGNATURE)) {
        if (fresh(match)) events.push({ at: match.index, signature: true })
      }
      events.sort((a, b) => a.at - b.at)

      for (const event of events) {
        if (event.head) {
          const headers = {}
          for (const line of event.head[3].split('\r\n').filter(Boolean)) {
            const colon = line.indexOf(':')
            headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
          }
          seen.push({ method: event.head[1], target: event.head[2], headers, trailers: {}, chunkSignatures: 0 })
        } else if (seen.length > 0 && event.trailer) {
          for (const line of event.trailer.split('\r\n').filter(Boolean)) {
            const colon = line.indexOf(':')
            seen.at(-1).trailers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1)
          }
        } else if (seen.length > 0 && event.signature) {
          seen.at(-1).chunkSignatures++
        }
      }
      carry = text.slice(-CARRY)
    })

    client.pipe(upstream)
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () => {
      resolve({
        port: server.address().port,
        requests: () => connections.flat(),
        reset() {
          connections = []
        },
        close: () =>
          new Promise((done) => {
            server.close(() => done())
            for (const socket of sockets) socket.destroy()
          }),
      })
    })
  })
}
