"""aws-costs: the AWS API calls each registry operation makes, and commits per second on one
artifact from 1 writer and from 16, both on moto through the real `Registry`, `DynamoStore` and
`S3BlobStore`, with the table and bucket built from template.yaml.

Calls are counted with botocore's `before-call` event on the two clients: once per API call (an
SDK-level retry of the same call is not counted again). Presigning a URL sends nothing and emits no
`before-call`. Blob bytes go to the presigned URLs with `requests`, as a client sends them: moto
answers those, and they are counted apart, as client PUTs.

moto is not DynamoDB: commits per second here are moto's, with its requests serialised by a lock
(what DynamoDB's per-request atomicity gives) and `TransactionConflict` cancellations injected at
a chosen rate. They compare 16 writers with 1 and count retries; they are no figure for AWS."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from artreg.aws.dynamodb import DynamoStore
from artreg.aws.s3 import S3BlobStore
from artreg.model.errors import Retryable
from artreg.model.wire import FileEntry, MissingBlob, MoveAlias, StartUpload, Usage
from artreg.registry import Registry
from artreg.registry.service import Committed
from benchmarks import Options, table
from tests.support.moto_resources import registry_resources
from tests.support.moto_serial import SerialisedClient

TITLE = "AWS calls per operation, and commit throughput on moto"
REGION = "us-east-1"
TABLE = "artreg-bench"
BUCKET = "artreg-bench-blobs"
PROJECT = "bench"
WRITERS = (1, 16)
CONFLICT_RATES = (0.0, 0.1)


@dataclass(frozen=True)
class Sizes:
    versions: int = 150  # of the artifact whose first page of versions is listed
    page: int = 100  # versions in that page
    files: int = 100  # of the large commit, the deduplicated ones and the download page
    commits: int = 96  # per throughput row (6 per writer of 16)


FULL, QUICK = Sizes(), Sizes(versions=15, page=10, files=10, commits=16)


class Calls:
    """Counts the API calls two botocore clients send, by service and operation, and the blob PUTs a
    client sends to presigned URLs."""

    def __init__(self, *clients: Any):
        self._lock = threading.Lock()
        self._api: Counter[tuple[str, str]] = Counter()
        self._puts = 0
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:  # must return None: a value would stand in for the response
        with self._lock:
            self._api[model.service_model.service_name, model.name] += 1

    def put(self, target: MissingBlob, data: bytes) -> None:
        assert target.url, "benchmark blobs are small: one PUT, never multipart"
        requests.put(target.url, data=data, headers=target.headers, timeout=30).raise_for_status()
        with self._lock:
            self._puts += 1

    def take(self) -> tuple[Counter[tuple[str, str]], int]:
        """What was counted since the last take."""
        with self._lock:
            taken = self._api, self._puts
            self._api, self._puts = Counter(), 0
        return taken


@contextmanager
def moto_account() -> Iterator[tuple[Any, Any, Calls]]:
    """A fresh moto account holding the registry's table and bucket; its two clients, counted. Nothing
    here reads the table's stream, so it runs as a load test (see registry_resources)."""
    with registry_resources(TABLE, BUCKET, load=True) as resources:
        yield resources["dynamodb"], resources["s3"], Calls(resources["dynamodb"], resources["s3"])


def files(tag: str, count: int = 1) -> dict[str, bytes]:
    return {f"{tag}/{i:04d}.bin": f"{tag} {i}".encode() for i in range(count)}


def log(registry: Registry, calls: Calls, name: str, content: dict[str, bytes], **request: Any) -> Committed:
    """The client flow: start (commit=true); if blobs are missing, PUT them and commit."""
    blobs = {hashlib.sha256(data).hexdigest(): data for data in content.values()}
    entries = [FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for p, d in content.items()]
    started = registry.start_upload(PROJECT, name, StartUpload(files=entries, commit=True, **request))
    if isinstance(started, Committed):
        return started
    for target in started.missing:
        calls.put(target, blobs[target.sha256])
    return registry.commit(PROJECT, name, started.upload_id)


# ---------------------------------------------------------------- 1. calls per operation


def by_operation(api: Counter[tuple[str, str]], service: str) -> str:
    return ", ".join(f"{count} {op}" for (s, op), count in sorted(api.items()) if s == service) or "-"


def calls_per_operation(sizes: Sizes) -> str:
    n = sizes.files
    with moto_account() as (dynamodb, s3, calls):
        registry = Registry(DynamoStore(dynamodb, TABLE), S3BlobStore(s3, BUCKET))
        log(registry, calls, "model", files("v1"), aliases=["prod"])
        log(registry, calls, "model", files("v2"))
        for i in range(sizes.versions):
            log(registry, calls, "history", {}, metadata={"i": i})
        shards = files("shards", n)
        rows: list[list[object]] = []
        notes: list[str] = []

        def measure(operation: str, baseline: int, why: str, action: Callable[[], object]) -> None:
            calls.take()
            action()
            api, puts = calls.take()
            total = sum(api.values())
            dynamo, s3_calls = by_operation(api, "dynamodb"), by_operation(api, "s3")
            rows.append([operation, dynamo, s3_calls, puts, total, baseline, f"{total / baseline:.2f}"])
            notes.append(f"- {operation}: {why}")

        def committed(content: dict[str, bytes], created: bool = True, **request: Any) -> None:
            assert log(registry, calls, "model", content, **request).created is created

        measure(
            "resolve by alias", 1, "1 GetItem of the alias item", lambda: registry.resolve(PROJECT, "model", "prod")
        )
        measure("resolve a version", 1, "1 GetItem", lambda: registry.resolve(PROJECT, "model", "1.0.0"))
        measure("get `latest`", 1, "1 GetItem", lambda: registry.resolve(PROJECT, "model", "latest"))
        measure(
            f"list a page of {sizes.page} of {sizes.versions} versions",
            1,
            "1 Query",
            lambda: registry.list_versions(PROJECT, "history", limit=sizes.page),
        )
        commit_why = "1 read of the upload, 1 GetItem of the head, 1 TransactWriteItems"
        measure(
            "start+commit, 1 new file",
            6,
            f"start: 1 HEAD, 1 PutItem of the upload; commit: 1 HEAD, {commit_why}",
            lambda: committed(files("one")),
        )
        measure(
            f"start+commit, {n} new files",
            4 + 2 * n,
            f"start: {n} HEAD, 1 PutItem of the upload; commit: {n} HEAD, {commit_why}",
            lambda: committed(shards),
        )
        measure(
            f"commit of {n} stored files (deduplicated)",
            n + 2,
            f"{n} HEAD, 1 GetItem of the head, 1 TransactWriteItems (the upload item written in it)",
            lambda: committed(shards),
        )
        measure(
            "the same with if_changed=true",
            1,
            "1 GetItem of `latest`: same digest, so its blobs are live and need no HEAD",
            lambda: committed(shards, created=False, if_changed=True),
        )
        measure(
            "move an alias",
            3,
            "1 GetItem of the head, 1 GetItem of the target version, 1 TransactWriteItems",
            lambda: registry.move_alias(PROJECT, "model", "prod", MoveAlias(version="2.0.0")),
        )
        measure(
            "record a usage",
            2,
            "1 GetItem (resolve), 1 PutItem",
            lambda: registry.record_usage(PROJECT, "model", "prod", Usage(run_id="run-1")),
        )
        measure(
            f"download page of {n} files",
            1,
            "1 GetItem (resolve); presigning sends nothing",
            lambda: registry.download(PROJECT, "model", "latest", limit=n),
        )
        measure(
            "file redirect (`file_target`)",
            1,
            "1 GetItem (resolve); presigning sends nothing",
            lambda: registry.file_target(PROJECT, "model", "latest", next(iter(shards))),
        )
    headers = ["operation", "DynamoDB calls", "S3 calls", "client PUTs", "total AWS calls", "baseline", "ratio"]
    return "\n".join(
        [
            "### AWS API calls per operation",
            "",
            table(headers, rows),
            "",
            "Client PUTs are blob bytes sent to presigned URLs, not API calls of the registry. "
            "The baseline is the fewest calls the operation needs:",
            "",
            *notes,
        ]
    )


# ---------------------------------------------------------------- 2. commit throughput


@dataclass
class Run:
    seconds: float
    latencies: list[float]  # of each commit that succeeded, start to commit
    gave_up: int  # commits that hit the registry's retry deadline (`Retryable`)
    retries: int
    api_calls: int
    injected: int
    gapless: bool

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def commit_run(writers: int, commits: int, conflict_rate: float) -> Run:
    """`writers` threads each commit `commits // writers` versions of distinct 1-file content to one artifact."""
    retries: list[None] = []
    latencies: list[float] = []
    versions: list[str] = []
    gave_up: list[Retryable] = []
    errors: list[BaseException] = []
    with moto_account() as (dynamodb, s3, calls):
        serialised = SerialisedClient(dynamodb, conflict_rate=conflict_rate)
        registry = Registry(
            DynamoStore(serialised, TABLE),  # type: ignore[arg-type]
            S3BlobStore(s3, BUCKET),
            on_retry=lambda: retries.append(None),
        )
        log(registry, calls, "warm-up", {"w.bin": b"warm-up"})  # moto sets up a fresh account on first use
        start = threading.Barrier(writers + 1)

        def writer(number: int) -> None:
            start.wait()
            for i in range(commits // writers):
                began = time.perf_counter()
                try:
                    version = log(registry, calls, "model", {"w.bin": f"{number} {i}".encode()}).record.version
                except Retryable as error:  # a client would retry it; this one moves on to its next commit
                    gave_up.append(error)
                    continue
                except BaseException as error:
                    errors.append(error)
                    return
                latencies.append(time.perf_counter() - began)
                versions.append(version)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        calls.take()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
        api, _ = calls.take()
        head = registry.get_artifact(PROJECT, "model")
    for error in errors[:3]:
        print(f"aws-costs: a writer failed: {error!r}", file=sys.stderr)
    done = len(versions)
    gapless = (
        not errors
        and sorted(int(v.split(".")[0]) for v in versions) == list(range(1, done + 1))
        and (head.version_count, head.latest) == (done, f"{done}.0.0")
    )
    return Run(
        seconds, latencies, len(gave_up), len(retries), sum(api.values()), serialised.injected_conflicts, gapless
    )


def throughput(commits: int) -> str:
    rows: list[list[object]] = []
    for rate in CONFLICT_RATES:
        single: Run | None = None
        for writers in WRITERS:
            print(f"aws-costs: {writers} writer(s), conflict rate {rate} ...", file=sys.stderr, flush=True)
            run = commit_run(writers, commits, rate)
            single = single or run
            done = max(len(run.latencies), 1)
            rows.append(
                [
                    writers,
                    f"{rate:.1f}",
                    len(run.latencies),
                    run.gave_up,
                    f"{run.seconds:.1f}",
                    f"{run.rate:.1f}",
                    f"{run.rate / single.rate:.2f}x",
                    f"{run.latency_ms(0.5):.0f}",
                    f"{run.latency_ms(0.99):.0f}",
                    f"{run.retries / done:.2f}",
                    run.injected,
                    f"{run.api_calls / done:.1f}",
                    "OK" if run.gapless else "FAIL",
                ]
            )
    headers = [
        "writers",
        "conflict rate",
        "commits",
        "gave up",
        "seconds",
        "commits/s",
        "vs 1 writer",
        "p50 ms",
        "p99 ms",
        "retries/commit",
        "injected conflicts",
        "AWS calls/commit",
        "versions unique, gapless",
    ]
    return "\n".join(
        [
            "### Commits per second on moto, one artifact",
            "",
            "Each commit is the client flow start (commit=true) → PUT of its 1 blob → commit, of content no "
            "other commit has; latency is that whole flow. moto's DynamoDB is serialised "
            "(`tests.support.moto_serial.SerialisedClient`), which cancels the given share of transactions as "
            "`TransactionConflict`; the registry runs with its default `Policy` (backoff from 4 ms doubling to "
            '250 ms, 20 s deadline: a commit past it *gave up*). "vs 1 writer" compares with the 1-writer row of '
            "the same conflict rate in the same run. The table's stream is off and moto takes one backup per "
            "transaction (see `moto_account`). moto "
            "runs in this process: its work is CPU under one GIL, so 16 threads cannot beat 1 here; retries per "
            "commit and the version check are what carry over to AWS.",
            "",
            table(headers, rows),
        ]
    )


def run(options: Options) -> str:
    versions = options.size(FULL.versions, QUICK.versions)
    sizes = Sizes(
        versions=versions,
        page=min(versions, QUICK.page if options.quick else FULL.page),
        files=options.size(FULL.files, QUICK.files),
        commits=options.size(FULL.commits, QUICK.commits),
    )
    commits = options.commits or sizes.commits
    print("aws-costs: counting calls per operation ...", file=sys.stderr, flush=True)
    operations = calls_per_operation(sizes)
    return operations + "\n\n" + throughput(commits)
