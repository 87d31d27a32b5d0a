"""AWS clients, made once per process with explicit retry and signing settings, and the registry
wired to the AWS adapters.

The clients are botocore's, from one botocore session: boto3's client is that same object, but
`import boto3` also loads s3transfer (its managed transfers, and multiprocessing's managers with it),
which no function here uses, and costs a cold start about 15 ms of CPU (benchmarks/cold_start.py).

The adapters get their clients deferred: a client is made on its first use, not at import. Making
one loads its service model (about 0.1 s for DynamoDB, 0.2 s for S3), and a cold start that only
resolves needs no S3 client at all. botocore itself (some 50 ms of imports: its client module loads its
documentation machinery) is imported by the first client too, so that the API function's import pays
only for what answers a request; on Lambda both run with the collector off (artreg.aws.startup). For the
same reason the janitor, lineage, event and idempotency pieces are imported by the factories that make
them, not by this module, which every function imports."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from artreg.aws.dynamodb import DynamoStore
from artreg.aws.s3 import S3BlobStore
from artreg.aws.startup import long_lived
from artreg.aws.verifier import LambdaVerification
from artreg.registry.service import RegistryService
from artreg.settings import Settings

if TYPE_CHECKING:
    import botocore.session
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

    from artreg.aws.eventbridge import EventBridgePublisher
    from artreg.registry.janitor import Janitor
    from artreg.registry.lineage import LineageRecorder

C = TypeVar("C")
IDEMPOTENCY_PK = "I#idempotency"
_RETRIES: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 4},
    "connect_timeout": 2,
    "read_timeout": 10,
}
_when_loaded: list[Callable[[], None]] = []
_hooks = threading.Lock()  # the first clients may be made by several threads at once (S3's HEADs)


def when_botocore_loads(hook: Callable[[], None]) -> None:
    """Runs `hook` once botocore's client module is loaded: now if it is, else when this module loads it
    to make the process's first client (X-Ray's patch of botocore waits for it so)."""
    if "botocore.client" in sys.modules:
        hook()
    else:
        _when_loaded.append(hook)


def _new_session() -> botocore.session.Session:
    import botocore.session

    with _hooks:  # every client waits for the hooks, run once
        while _when_loaded:
            _when_loaded.pop(0)()
    return botocore.session.get_session()


def _config(**more: Any) -> Config:
    from botocore.config import Config

    return Config(**_RETRIES, **more)


class _Deferred(Generic[C]):
    """Stands in for what `make` returns (a client), and makes it on first use: once, even when the S3
    adapter's HEAD threads reach it together."""

    def __init__(self, make: Callable[[], C]):
        self._make = make
        self._client: C | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    with long_lived():  # botocore's modules and the client's service model
                        self._client = self._make()
        return getattr(self._client, name)


def deferred(make: Callable[[], C]) -> C:
    return cast(C, _Deferred(make))


@lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    """The session of the DynamoDB, EventBridge and Lambda clients (as boto3's default one was): credentials
    and endpoint data read once for them. Region and credentials come from the environment, as boto3's do."""
    return _new_session()


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    return cast("DynamoDBClient", _session().create_client("dynamodb", config=_config()))


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    # SigV4 presigning (botocore presigns with SigV2 without it), against the regional endpoint (us-east-1's
    # included) so that a presigned URL is never redirected away from the region its signature names; the
    # endpoint comes from botocore's rules, so it is right in every partition (amazonaws.com.cn included).
    # A session of its own: its URLs are signed with the credentials the environment holds when it is made.
    session = _new_session()
    addressing = _config(
        signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}
    )
    region = session.get_config_variable("region") or "us-east-1"
    return cast("S3Client", session.create_client("s3", region_name=region, config=addressing))


@lru_cache(maxsize=1)
def events_client() -> EventBridgeClient:
    return cast("EventBridgeClient", _session().create_client("events", config=_config()))


@lru_cache(maxsize=1)
def lambda_client() -> LambdaClient:
    return cast("LambdaClient", _session().create_client("lambda", config=_config()))


def idempotency_store(settings: Settings) -> DynamoDBPersistenceLayer:
    """Powertools' idempotency records in the registry's own table, under their own partition key: the
    table's TTL attribute is their expiry, and the stream's filter lets none of them through."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=settings.table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value=IDEMPOTENCY_PK,
        expiry_attr="expires_at",
        boto3_client=deferred(dynamodb_client),
    )


def event_publisher(settings: Settings) -> EventBridgePublisher:
    from artreg.aws.eventbridge import EventBridgePublisher

    return EventBridgePublisher(deferred(events_client), settings.event_bus_name, settings.event_source)


def lineage_recorder(settings: Settings) -> LineageRecorder:
    from artreg.registry.lineage import LineageRecorder

    return LineageRecorder(DynamoStore(deferred(dynamodb_client), settings.table_name))


def aws_janitor(settings: Settings) -> Janitor:
    from artreg.registry.janitor import Janitor

    return Janitor(DynamoStore(deferred(dynamodb_client), settings.table_name), _blob_store(settings))


def _blob_store(settings: Settings) -> S3BlobStore:
    """The API's store: blobs over the inline bound are verified by the verifier function, when named."""
    name = settings.verifier_function_name
    return S3BlobStore(
        deferred(s3_client),
        settings.bucket_name,
        presign_seconds=settings.presign_seconds,
        multipart_threshold=settings.multipart_threshold,
        part_size=settings.part_size,
        inline_verify_limit=settings.inline_verify_limit,
        start_verification=LambdaVerification(deferred(lambda_client), name) if name else None,
    )


def blob_verifier(settings: Settings) -> S3BlobStore:
    """The verifier function's store: it only settles blobs (`S3BlobStore.settle`)."""
    return S3BlobStore(deferred(s3_client), settings.bucket_name)


def aws_registry(settings: Settings, *, on_retry: Callable[[], None] | None = None) -> RegistryService:
    """`on_retry` is called on every lost race of a write (the API function counts them)."""
    return RegistryService(
        DynamoStore(deferred(dynamodb_client), settings.table_name),
        _blob_store(settings),
        policy=settings.policy(),
        on_retry=on_retry,
    )
