"""A local S3-compatible server for tests: moto's ThreadedMotoServer on a free loopback port.

The storage adapter reaches it through `storage_endpoint` over real HTTP (SigV4-signed PutObject,
GetObject, DeleteObject), exactly as it would reach MinIO or AWS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

FAKE_KEY = "test-access-key"
FAKE_SECRET = "test-secret-key"
REGION = "us-east-1"


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run a moto server on 127.0.0.1 (free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str) -> str:
    """A fresh, uniquely named bucket whose objects anyone may read (as a photo bucket is set up)."""
    import boto3

    name = f"truebond-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_SECRET)
    client.create_bucket(Bucket=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/photos/*"}],
    }
    client.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return name


def object_count(endpoint: str, bucket: str) -> int:
    """How many objects the bucket holds."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_SECRET)
    return int(client.list_objects_v2(Bucket=bucket).get("KeyCount", 0))
