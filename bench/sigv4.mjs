// AWS Signature Version 4 for S3 requests signed in the Authorization header,
// built on node:crypto. The benchmark signs each request once and replays the
// same headers: the proxy accepts a signed request for 15 minutes.
import { createHash, createHmac } from 'node:crypto'

export const EMPTY_SHA256 = createHash('sha256').update('').digest('hex')
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'

const hmac = (key, data) => createHmac('sha256', key).update(data).digest()
const sha256Hex = (data) => createHash('sha256').update(data).digest('hex')

/**
 * Percent-encodes with S3's rules: unreserved characters stay, every other
 * byte of the UTF-8 form becomes an uppercase %XX. `keepSlash` keeps `/`
 * for paths, while query names and values encode it.
 */
export function uriEncode(text, keepSlash) {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte)
    if (/[A-Za-z0-9\-._~]/.test(char) || (keepSlash && char === '/')) out += char
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Formats a date as the SigV4 timestamp, e.g. 20130524T000000Z. */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
}

/** Orders encoded [name, value] pairs by name, then by value, comparing code units. */
function compareParameters([nameA, valueA], [nameB, valueB]) {
  if (nameA !== nameB) return nameA < nameB ? -1 : 1
  if (valueA !== valueB) return valueA < valueB ? -1 : 1
  return 0
}

/** Builds the canonical query string: names and values encoded, sorted by name, then value. */
function canonicalQuery(query) {
  return Object.entries(query)
    .map(([name, value]) => [uriEncode(name, false), uriEncode(String(value), false)])
    .sort(compareParameters)
    .map(([name, value]) => `${name}=${value}`)
    .join('&')
}

/** Derives the signing key for one day, region and service. */
export function signingKey(secretKey, day, region, service) {
  const dateKey = hmac(`AWS4${secretKey}`, day)
  return hmac(hmac(hmac(dateKey, region), service), 'aws4_request')
}

/**
 * Signs one request. `path` is the decoded path (e.g. `/bucket/my key`);
 * `host` is the Host header as sent (`127.0.0.1:8080`); `payloadHash` is
 * the hex SHA-256 of the body or UNSIGNED-PAYLOAD (the empty-body hash by
 * default). Returns the encoded path to request, the headers to send
 * (Host included) and the intermediate strings, so that a failure can be
 * traced to a stage.
 */
export function signRequest({
  method,
  host,
  path,
  query = {},
  headers = {},
  payloadHash = EMPTY_SHA256,
  accessKey,
  secretKey,
  region = 'us-east-1',
  service = 's3',
  date = new Date(),
}) {
  const timestamp = amzDate(date)
  const day = timestamp.slice(0, 8)
  const all = { ...headers, host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': timestamp }
  const lower = Object.fromEntries(
    Object.entries(all).map(([name, value]) => [name.toLowerCase(), String(value).trim().replace(/\s+/g, ' ')]),
  )
  const names = Object.keys(lower).sort()
  const encodedPath = uriEncode(path, true)
  const query_ = canonicalQuery(query)
  const canonicalRequest = [
    method,
    encodedPath,
    query_,
    names.map((name) => `${name}:${lower[name]}\n`).join(''),
    names.join(';'),
    payloadHash,
  ].join('\n')
  const scope = `${day}/${region}/${service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', timestamp, scope, sha256Hex(canonicalRequest)].join('\n')
  const signature = createHmac('sha256', signingKey(secretKey, day, region, service)).update(stringToSign).digest('hex')
  const authorization =
    `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`
  return {
    path: query_ ? `${encodedPath}?${query_}` : encodedPath,
    headers: { ...lower, authorization },
    canonicalRequest,
    stringToSign,
    signature,
  }
}
