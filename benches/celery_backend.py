"""Celery's own S3 result backend (celery.backends.s3.S3Backend, over boto3) for the benchmark.

Driven by the bench binary (benches/src/celery.rs) over stdin/stdout, one JSON object a
line each way, so that one warm process serves every round and the pipe never sits inside a
measured interval:

    {"cmd": "info"}                                   -> {"python", "celery", "boto3", "botocore"}
    {"cmd": "run", "op": "get"|"set"|"delete", "size": N, "keys": [...]}
                                                      -> {"latencies_ns": [...], "cpu_ns": N}
    {"cmd": "quit"}

Each operation is one call of the backend's own `get`, `set` or `delete` (Celery's `get` is a
HEAD, then a GET), timed with `time.perf_counter_ns()`; `cpu_ns` is this process's user +
system CPU time over the whole loop (`getrusage(RUSAGE_SELF)`). Values are the bench's: the
64-character alphabet below repeated to N bytes.

Configured by environment variables: ENDPOINT, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY,
BUCKET.
"""
import atexit
import json
import os
import resource
import sys
import tempfile
import time

# Celery's S3Backend builds its client as boto3.Session(...).resource('s3', endpoint_url=...),
# with no way to pass a botocore Config; local servers need path-style requests, which
# botocore reads from the config file only (the trick of tests/support/celery_interop.py).
_aws_config = tempfile.NamedTemporaryFile("w", suffix=".aws-config", delete=False)
_aws_config.write("[default]\ns3 =\n    addressing_style = path\n")
_aws_config.close()
atexit.register(os.unlink, _aws_config.name)
os.environ["AWS_CONFIG_FILE"] = _aws_config.name
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_name, None)

import boto3  # noqa: E402
import botocore  # noqa: E402
import celery  # noqa: E402
from celery import Celery  # noqa: E402

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def value(size, cache={}):
    if size not in cache:
        cache[size] = (ALPHABET * (size // len(ALPHABET) + 1))[:size]
    return cache[size]


def make_backend():
    env = os.environ
    app = Celery("s3rs-bench", set_as_current=False)
    app.conf.update(
        result_backend="s3",
        s3_endpoint_url=env["ENDPOINT"],
        s3_region=env["REGION"],
        s3_access_key_id=env["ACCESS_KEY_ID"],
        s3_secret_access_key=env["SECRET_ACCESS_KEY"],
        s3_bucket=env["BUCKET"],
    )
    backend = app.backend
    client = backend._s3_resource.meta.client
    style = (client.meta.config.s3 or {}).get("addressing_style")
    if style != "path":
        raise SystemExit(f"Celery's boto3 client is not path-style: {style!r}")
    return backend


def cpu_ns():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def run(backend, op, size, keys):
    latencies = []
    clock = time.perf_counter_ns
    if op == "get":
        expected = len(value(size))
        cpu0 = cpu_ns()
        for key in keys:
            t0 = clock()
            got = backend.get(key)
            latencies.append(clock() - t0)
            if got is None or len(got) != expected:
                raise SystemExit(f"get {key}: {'missing' if got is None else len(got)} bytes")
    elif op == "set":
        body = value(size)
        cpu0 = cpu_ns()
        for key in keys:
            t0 = clock()
            backend.set(key, body)
            latencies.append(clock() - t0)
    elif op == "delete":
        cpu0 = cpu_ns()
        for key in keys:
            t0 = clock()
            backend.delete(key)
            latencies.append(clock() - t0)
    else:
        raise SystemExit(f"unknown op {op!r}")
    return {"latencies_ns": latencies, "cpu_ns": cpu_ns() - cpu0}


def main():
    backend = make_backend()
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        if cmd == "info":
            reply = {
                "python": sys.version.split()[0],
                "celery": celery.__version__,
                "boto3": boto3.__version__,
                "botocore": botocore.__version__,
            }
        elif cmd == "run":
            reply = run(backend, request["op"], request["size"], request["keys"])
        elif cmd == "quit":
            return
        else:
            raise SystemExit(f"unknown command {cmd!r}")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
