"""Independent reads and writes of single objects for the tests, with boto3.

    s3_object.py get KEY     -> the object's bytes on stdout; exit 3 when there is no such key
    s3_object.py put KEY     <- the bytes on stdin

Configured as list_keys.py: ENDPOINT, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, BUCKET.
"""
import os
import sys

import boto3
from botocore.config import Config

client = boto3.client(
    "s3",
    endpoint_url=os.environ["ENDPOINT"],
    region_name=os.environ["REGION"],
    aws_access_key_id=os.environ["ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
)
command, key = sys.argv[1], sys.argv[2]
bucket = os.environ["BUCKET"]
if command == "get":
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        sys.exit(3)
    sys.stdout.buffer.write(body)
elif command == "put":
    client.put_object(Bucket=bucket, Key=key, Body=sys.stdin.buffer.read())
else:
    sys.exit(f"unknown command {command!r}")
