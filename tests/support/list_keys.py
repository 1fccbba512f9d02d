"""Independent view of a bucket for the tests: lists keys under PREFIX with boto3.

Keys are printed hex-encoded, one per line, so that any key (spaces, newlines, unicode)
survives the trip through stdout unchanged.
"""
import os

import boto3
from botocore.config import Config
from botocore.handlers import decode_list_object_v2, set_list_objects_encoding_type_url

client = boto3.client(
    "s3",
    endpoint_url=os.environ["ENDPOINT"],
    region_name=os.environ["REGION"],
    aws_access_key_id=os.environ["ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
)
# boto3 asks for URL-encoded keys and decodes them itself; a server that ignores the request
# (s3s-fs) then has '+' and '%2F' in keys mangled. Ask for keys as they are instead.
client.meta.events.unregister(
    "before-parameter-build.s3.ListObjectsV2", set_list_objects_encoding_type_url
)
client.meta.events.unregister("after-call.s3.ListObjectsV2", decode_list_object_v2)
paginator = client.get_paginator("list_objects_v2")
for page in paginator.paginate(Bucket=os.environ["BUCKET"], Prefix=os.environ["PREFIX"]):
    for item in page.get("Contents", []):
        print(item["Key"].encode("utf-8").hex())
