"""The registry's AWS resources on moto, built from template.yaml: for the tests and the benchmarks."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from tests.support.moto_serial import (
    action_names_listed_once,
    backups_of_transaction_items,
    queries_read_their_partition,
)
from tests.support.s3_checksums import s3_checks_sha256
from tests.support.template import create_bucket, create_event_bus, create_table

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def s3_client() -> Any:
    """As the API makes it: SigV4 presigning, the regional endpoint, virtual-hosted buckets."""
    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=f"https://s3.{REGION}.amazonaws.com",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )


@functools.cache
def _shared_clients() -> tuple[Any, Any, Any]:
    """Clients made once per process (a client takes most of a second to make, and moto answers any
    client made after it is imported, in whichever mock is active): for the tests' fixtures."""
    return boto3.client("dynamodb", region_name=REGION), s3_client(), boto3.client("events", region_name=REGION)


@contextmanager
def registry_resources(
    table: str, bucket: str, *, load: bool = False, shared_clients: bool = False
) -> Iterator[dict[str, Any]]:
    """moto with the table, bucket and bus of template.yaml, and a backup of only the items of each
    transaction (moto would otherwise deep-copy the table once per item of every transaction: a run
    of commits grows quadratic), and moto's per-request costs that are not AWS's cut (moto_serial.py).
    `load=True` is for runs of hundreds of commits: the table's stream off. `shared_clients` reuses
    clients made once (for callers that register nothing on them), not new ones; moto's state is new
    either way."""
    from moto import mock_aws

    os.environ.update(FAKE_CREDENTIALS)  # no real AWS account is ever reached
    with mock_aws(), s3_checks_sha256():  # S3's checksums, which moto lacks
        if shared_clients:
            dynamodb, s3, events = _shared_clients()
        else:
            dynamodb, s3 = boto3.client("dynamodb", region_name=REGION), s3_client()
            events = boto3.client("events", region_name=REGION)
        create_table(dynamodb, table, stream=not load)
        create_bucket(s3, bucket)
        bus = create_event_bus(events, "artreg-test")
        with backups_of_transaction_items(), queries_read_their_partition(), action_names_listed_once():
            yield {"dynamodb": dynamodb, "s3": s3, "bus": bus}
