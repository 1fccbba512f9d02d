"""Real Celery (its S3 result backend, over boto3) for the interop tests.

Configured by environment variables: ENDPOINT, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY,
BUCKET, BASE_PATH (Celery's s3_base_path, used as given), GLOBAL_KEYPREFIX (optional; empty
means none) and RESULT_EXTENDED (`1` turns on result_extended).

    celery_interop.py info     -> {"celery": ..., "boto3": ..., "botocore": ..., "addressing_style": ...}
    celery_interop.py write    stdin: [case, ...]              -> {task_id: {"traceback": ...}}
    celery_interop.py read     stdin: {"tasks": [...], "groups": [...]}
                                                                -> {"tasks": [...], "groups": {...}}
    celery_interop.py forget   stdin: {"tasks": [...], "groups": [...]}   -> {}
    celery_interop.py raw      stdin: [full key, ...]           -> {key: hex bytes or null}

A case is {"task_id", "state", "result", "exception": {"type", "module", "args"},
"traceback": str | true (raise the exception and store the real traceback), "date_done"
(ISO 8601: Celery's clock is fixed to it for this write), "request": {"task", "args",
"kwargs", "hostname", "retries", "queue", "group", "parent_id"}} or {"group": {"id",
"task_ids"}}. Every write and read goes through Celery's own backend API; only `raw` and
`info` use boto3 directly.
"""
import importlib
import json
import os
import sys
import tempfile
import traceback
from datetime import datetime

# Celery's S3Backend builds its client as boto3.Session(...).resource('s3', endpoint_url=...),
# with no way to pass a botocore Config. The local test servers need path-style requests;
# botocore reads that from the config file only, so point AWS_CONFIG_FILE at one of our own
# (this also keeps any ~/.aws/config of the machine out of the tests).
_aws_config = tempfile.NamedTemporaryFile("w", suffix=".aws-config", delete=False)
_aws_config.write("[default]\ns3 =\n    addressing_style = path\n")
_aws_config.close()
os.environ["AWS_CONFIG_FILE"] = _aws_config.name
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_name, None)

import boto3  # noqa: E402
import botocore  # noqa: E402
import celery  # noqa: E402
from botocore.config import Config  # noqa: E402
from celery import Celery  # noqa: E402
from celery.app.task import Context  # noqa: E402
from celery.result import AsyncResult, GroupResult  # noqa: E402


def make_app():
    env = os.environ
    app = Celery("s3rs-interop", set_as_current=False)
    conf = {
        "result_backend": "s3",
        "s3_endpoint_url": env["ENDPOINT"],
        "s3_region": env["REGION"],
        "s3_access_key_id": env["ACCESS_KEY_ID"],
        "s3_secret_access_key": env["SECRET_ACCESS_KEY"],
        "s3_bucket": env["BUCKET"],
        "s3_base_path": env.get("BASE_PATH", ""),
        "result_extended": env.get("RESULT_EXTENDED") == "1",
    }
    if env.get("GLOBAL_KEYPREFIX"):
        conf["result_backend_transport_options"] = {"global_keyprefix": env["GLOBAL_KEYPREFIX"]}
    app.conf.update(conf)
    client = app.backend._s3_resource.meta.client
    style = (client.meta.config.s3 or {}).get("addressing_style")
    if style != "path":
        raise SystemExit(f"Celery's boto3 client is not path-style: {style!r}")
    return app


def exception_instance(spec):
    cls = importlib.import_module(spec["module"])
    for name in spec["type"].split("."):
        cls = getattr(cls, name)
    return cls(*spec.get("args", []))


def request_context(task_id, spec):
    if spec is None:
        return None
    return Context(
        id=task_id,
        task=spec.get("task"),
        args=spec.get("args"),
        kwargs=spec.get("kwargs"),
        hostname=spec.get("hostname"),
        retries=spec.get("retries", 0),
        delivery_info={"routing_key": spec["queue"]} if spec.get("queue") else None,
        group=spec.get("group"),
        parent_id=spec.get("parent_id"),
    )


def write(app, cases):
    backend = app.backend
    out = {}
    for case in cases:
        if "group" in case:
            group = case["group"]
            members = [AsyncResult(t, app=app) for t in group["task_ids"]]
            GroupResult(group["id"], members, app=app).save()
        if "task_id" not in case:
            continue
        if case.get("date_done"):
            fixed = datetime.fromisoformat(case["date_done"])
            app.now = lambda fixed=fixed: fixed
        else:
            app.__dict__.pop("now", None)
        value = case.get("result")
        tb = case.get("traceback")
        if case.get("exception"):
            value = exception_instance(case["exception"])
            if tb is True:
                try:
                    raise value
                except BaseException:
                    tb = traceback.format_exc()
        elif tb is True:
            raise SystemExit("a real traceback needs an exception")
        backend.store_result(
            case["task_id"],
            value,
            case["state"],
            traceback=tb,
            request=request_context(case["task_id"], case.get("request")),
        )
        out[case["task_id"]] = {"traceback": tb}
    app.__dict__.pop("now", None)
    return out


def describe_exception(exc):
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "args": list(exc.args),
        "str": str(exc),
    }


def read(app, query):
    tasks = []
    for task_id in query.get("tasks", []):
        r = AsyncResult(task_id, app=app)
        meta = r._get_task_meta()
        value = r.result
        entry = {
            "task_id": task_id,
            "state": r.state,
            "ready": r.ready(),
            "traceback": r.traceback,
            "date_done": r.date_done.isoformat() if r.date_done else None,
            "children": meta.get("children"),
            "group_id": meta.get("group_id"),
            "parent_id": meta.get("parent_id"),
            "name": r.name,
            "args": r.args,
            "kwargs": r.kwargs,
            "worker": r.worker,
            "retries": r.retries,
            "queue": r.queue,
        }
        if isinstance(value, BaseException):
            entry["exception"] = describe_exception(value)
        else:
            entry["result"] = value
        if r.ready():
            # What application code sees: the value, or the stored exception re-raised.
            try:
                entry["get"] = {"value": r.get(timeout=10, propagate=True)}
            except BaseException as exc:  # noqa: BLE001 -- re-raised task exceptions
                entry["get"] = {"raised": describe_exception(exc)}
        tasks.append(entry)
    groups = {}
    for group_id in query.get("groups", []):
        restored = GroupResult.restore(group_id, app=app)
        groups[group_id] = None if restored is None else [r.id for r in restored.results]
    return {"tasks": tasks, "groups": groups}


def forget(app, query):
    for task_id in query.get("tasks", []):
        AsyncResult(task_id, app=app).forget()
    for group_id in query.get("groups", []):
        GroupResult(group_id, [], app=app).delete()
    return {}


def raw(keys):
    env = os.environ
    client = boto3.client(
        "s3",
        endpoint_url=env["ENDPOINT"],
        region_name=env["REGION"],
        aws_access_key_id=env["ACCESS_KEY_ID"],
        aws_secret_access_key=env["SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    out = {}
    for key in keys:
        try:
            body = client.get_object(Bucket=env["BUCKET"], Key=key)["Body"].read()
            out[key] = body.hex()
        except client.exceptions.NoSuchKey:
            out[key] = None
    return out


def info(app):
    client = app.backend._s3_resource.meta.client
    return {
        "celery": celery.__version__,
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "python": sys.version.split()[0],
        "addressing_style": client.meta.config.s3.get("addressing_style"),
        "endpoint_url": client.meta.endpoint_url,
    }


def main():
    command = sys.argv[1]
    try:
        if command == "raw":
            result = raw(json.load(sys.stdin))
        else:
            app = make_app()
            if command == "info":
                result = info(app)
            elif command == "write":
                result = write(app, json.load(sys.stdin))
            elif command == "read":
                result = read(app, json.load(sys.stdin))
            elif command == "forget":
                result = forget(app, json.load(sys.stdin))
            else:
                raise SystemExit(f"unknown command {command!r}")
    finally:
        os.unlink(_aws_config.name)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
