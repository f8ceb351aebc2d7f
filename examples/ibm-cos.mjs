// IBM Cloud Object Storage behind the proxy: the bucket is reached with an
// IBM Cloud API key, which the proxy exchanges at IAM for a bearer token and
// keeps fresh, while S3 clients keep signing with their own SigV4 keys.
//
// IBM COS endpoints follow s3.<region>.cloud-object-storage.appdomain.cloud
// (public), s3.private.<region>... and s3.direct.<region>... for traffic
// from inside IBM Cloud.
import { createRequire } from 'node:module'

const { startServer } = createRequire(import.meta.url)('../index.js')

const apiKey = process.env.COS_API_KEY
const bucket = process.env.COS_BUCKET
const region = process.env.COS_REGION ?? 'us-south'
if (!apiKey || !bucket) {
  console.error('Set COS_API_KEY (an IBM Cloud API key with access to the bucket) and COS_BUCKET.')
  process.exit(1)
}

const client = {
  accessKey: process.env.PROXY_ACCESS_KEY ?? 'local-client',
  secretKey: process.env.PROXY_SECRET_KEY ?? 'local-client-secret',
}

const server = await startServer({
  listenAddress: '127.0.0.1',
  httpPort: Number(process.env.PORT ?? 9000),
  cosMap: {
    [bucket]: {
      host: `s3.${region}.cloud-object-storage.appdomain.cloud`,
      region,
      apiKey,
      // virtual-host addressing: https://<bucket>.s3.<region>.cloud-object-storage.appdomain.cloud
      addressingStyle: 'virtual',
    },
  },
  hmacKeystore: [client],
})

const endpoint = `http://127.0.0.1:${server.httpPort}`
console.log(`Proxy for IBM COS bucket ${bucket} (${region}) on ${endpoint}. Ctrl-C stops it.`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await server.close()
    process.exit(0)
  })
}

// Try it:
//
//   COS_API_KEY=... COS_BUCKET=my-bucket COS_REGION=eu-de node examples/ibm-cos.mjs
//
//   # in another shell, with the proxy's client key (not the IBM API key):
//   export AWS_ACCESS_KEY_ID=local-client AWS_SECRET_ACCESS_KEY=local-client-secret AWS_DEFAULT_REGION=us-east-1
//   aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://my-bucket/
//   aws --endpoint-url http://127.0.0.1:9000 s3 cp README.md s3://my-bucket/README.md
//
//   # the token exchange is logged on failure; to see every request:
//   RUST_LOG=info,object_storage_proxy::access=info node examples/ibm-cos.mjs
