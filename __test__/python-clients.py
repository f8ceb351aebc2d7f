"""Uploads files with boto3 or pyarrow at their default settings, reads them
back, and prints one JSON object: per upload the SHA-256 of the bytes read
back and, for boto3, the payload headers of every request it signed.

Usage: python python-clients.py '<json>' where the JSON has
  client: "boto3" or "pyarrow"
  endpoint: "http://127.0.0.1:PORT" (boto3) or "127.0.0.1:PORT" (pyarrow)
  ca: path of a CA bundle for https (boto3), or null
  bucket, access_key, secret_key, region
  uploads: [{ "op": "put_object" | "upload_file", "file": PATH, "key": KEY }] (op is
    ignored by pyarrow, which writes through an output stream)
"""

import hashlib
import json
import sys

# Headers that show how a request carried its body.
PAYLOAD_HEADERS = (
    "x-amz-content-sha256",
    "content-encoding",
    "transfer-encoding",
    "x-amz-trailer",
    "x-amz-decoded-content-length",
    "x-amz-sdk-checksum-algorithm",
    "expect",
)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_boto3(spec):
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=spec["endpoint"],
        aws_access_key_id=spec["access_key"],
        aws_secret_access_key=spec["secret_key"],
        region_name=spec["region"],
        verify=spec.get("ca") or None,
        config=Config(retries={"max_attempts": 1}),
    )
    sent = []

    def record(request, event_name, **_):
        headers = {name.lower(): value for name, value in request.headers.items()}
        entry = {"operation": event_name.rsplit(".", 1)[-1]}
        for name, value in headers.items():
            if name in PAYLOAD_HEADERS or name.startswith("x-amz-checksum-"):
                entry[name] = value.decode() if isinstance(value, bytes) else value
        sent.append(entry)

    client.meta.events.register("before-send.s3", record)
    results = []
    for upload in spec["uploads"]:
        start = len(sent)
        if upload["op"] == "put_object":
            with open(upload["file"], "rb") as handle:
                client.put_object(Bucket=spec["bucket"], Key=upload["key"], Body=handle.read())
        elif upload["op"] == "upload_file":
            client.upload_file(upload["file"], spec["bucket"], upload["key"])
        else:
            raise ValueError(f"unknown boto3 operation {upload['op']}")
        uploaded = sent[start:]
        body = client.get_object(Bucket=spec["bucket"], Key=upload["key"])["Body"].read()
        results.append(
            {
                "key": upload["key"],
                "sha256": hashlib.sha256(body).hexdigest(),
                "size": len(body),
                "sent": uploaded,
            }
        )
    return results


def run_pyarrow(spec):
    from pyarrow import fs

    filesystem = fs.S3FileSystem(
        access_key=spec["access_key"],
        secret_key=spec["secret_key"],
        region=spec["region"],
        scheme="http",
        endpoint_override=spec["endpoint"],
    )
    results = []
    for upload in spec["uploads"]:
        path = f"{spec['bucket']}/{upload['key']}"
        with open(upload["file"], "rb") as source, filesystem.open_output_stream(path) as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
        digest = hashlib.sha256()
        size = 0
        with filesystem.open_input_stream(path) as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        results.append({"key": upload["key"], "sha256": digest.hexdigest(), "size": size, "sent": []})
    return results


def main():
    spec = json.loads(sys.argv[1])
    runners = {"boto3": run_boto3, "pyarrow": run_pyarrow}
    results = runners[spec["client"]](spec)
    for result, upload in zip(results, spec["uploads"]):
        result["expected_sha256"] = sha256_file(upload["file"])
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
