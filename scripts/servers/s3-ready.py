"""Exits 0 once the S3 server answers a signed ListObjectsV2 on the bucket, else non-zero.

Used by the server scripts to wait for a server to be really ready: a CLI returning is not
enough, since layouts and keys take a moment to propagate. Environment: S3_ENDPOINT
(http://host:port), S3_REGION, S3_KEY, S3_SECRET, S3_BUCKET. SigV4 is done by hand so that
only the standard library is needed.
"""
import datetime
import hashlib
import hmac
import os
import urllib.request

env = os.environ
endpoint, bucket = env["S3_ENDPOINT"], env["S3_BUCKET"]
host = endpoint.split("://", 1)[1].rstrip("/")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
scope = "/".join([now[:8], env["S3_REGION"], "s3", "aws4_request"])
query = "list-type=2&max-keys=1"
payload_hash = hashlib.sha256(b"").hexdigest()
signed_headers = "host;x-amz-content-sha256;x-amz-date"
canonical_request = "\n".join([
    "GET", "/" + bucket, query,
    "host:" + host, "x-amz-content-sha256:" + payload_hash, "x-amz-date:" + now, "",
    signed_headers, payload_hash,
])
string_to_sign = "\n".join([
    "AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical_request.encode()).hexdigest(),
])
key = ("AWS4" + env["S3_SECRET"]).encode()
for part in scope.split("/"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
request = urllib.request.Request(f"{endpoint.rstrip('/')}/{bucket}?{query}", headers={
    "x-amz-date": now,
    "x-amz-content-sha256": payload_hash,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={env['S3_KEY']}/{scope}, "
                     f"SignedHeaders={signed_headers}, Signature={signature}",
})
# No proxy: the servers are on loopback whatever http_proxy says.
urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5).read()
