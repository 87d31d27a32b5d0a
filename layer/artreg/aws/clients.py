"""boto3 clients, made once per process with explicit retry and signing settings, and the registry
wired to the AWS adapters."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from artreg.aws.dynamodb import DynamoStore
from artreg.aws.eventbridge import EventBridgePublisher
from artreg.aws.s3 import S3BlobStore
from artreg.registry import Registry
from artreg.registry.janitor import Janitor
from artreg.registry.lineage import LineageRecorder
from artreg.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=10)


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_RETRIES)


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    # SigV4 presigning (boto3 presigns with SigV2 without it), against the regional endpoint so that a
    # presigned URL is never redirected away from the region its signature names
    session = boto3.session.Session()
    region = session.region_name or "us-east-1"
    return session.client(
        "s3",
        region_name=region,
        endpoint_url=f"https://s3.{region}.amazonaws.com",
        config=_RETRIES.merge(Config(signature_version="s3v4", s3={"addressing_style": "virtual"})),
    )


@lru_cache(maxsize=1)
def events_client() -> EventBridgeClient:
    return boto3.client("events", config=_RETRIES)


def event_publisher(settings: Settings) -> EventBridgePublisher:
    return EventBridgePublisher(events_client(), settings.event_bus_name, settings.event_source)


def lineage_recorder(settings: Settings) -> LineageRecorder:
    return LineageRecorder(DynamoStore(dynamodb_client(), settings.table_name))


def aws_janitor(settings: Settings) -> Janitor:
    return Janitor(DynamoStore(dynamodb_client(), settings.table_name), _blob_store(settings))


def _blob_store(settings: Settings) -> S3BlobStore:
    return S3BlobStore(
        s3_client(),
        settings.bucket_name,
        presign_seconds=settings.presign_seconds,
        multipart_threshold=settings.multipart_threshold,
        part_size=settings.part_size,
    )


def aws_registry(settings: Settings) -> Registry:
    blobs = _blob_store(settings)
    return Registry(DynamoStore(dynamodb_client(), settings.table_name), blobs, policy=settings.policy())
