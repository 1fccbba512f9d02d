"""Independent view of one object for the tests: what the server keeps of it, by boto3.

Prints a JSON object of the HEAD answer's checksums (with ChecksumMode=ENABLED) and ETag:
{"ChecksumCRC32C": "...", "ETag": "..."}; an absent checksum is left out.
"""
import json
import os

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
head = client.head_object(Bucket=os.environ["BUCKET"], Key=os.environ["KEY"], ChecksumMode="ENABLED")
print(json.dumps({k: v for k, v in head.items() if k.startswith("Checksum") or k == "ETag"}))
