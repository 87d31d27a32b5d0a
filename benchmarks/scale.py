"""scale: a resolve must cost the same with 10 versions as with 10,000, and a page of a listing the
same whatever follows it.

1. Latency on `artreg server` (a subprocess, SQLite) over HTTP with a kept-alive connection: each
   operation on the small side (an artifact of 10 versions, a project of 1 artifact) and the large
   side (10,000 versions, 1,000 artifacts), the two sides alternating request by request so that load
   on this shared machine falls on both alike. Versions carry no files (API.md allows an empty file
   list), so populating is one request a version.
2. AWS calls and items read on moto, through the real `RegistryService` and `DynamoStore` on the table of
   template.yaml: the figures that carry over to DynamoDB, where moto's latency would not.

Each figure stands beside the small side's, measured in the same run, as a ratio."""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from benchmarks import Options, table
from tests.support.moto_serial import no_transaction_backups

TITLE = "Scale: resolve and list with 10 and 10,000 versions, and 1 and 1,000 artifacts"
PROJECT = "scale"  # holds the small and the large artifact
SMALL_VERSIONS = 10
ALIAS = "staging"  # on the first version of each artifact (not protected: an upload may move it)
ONE, MANY = "one-artifact", "many-artifacts"  # the projects of the artifact listings
WRITERS = 4  # HTTP clients populating the server at once
TABLE = "artreg-bench"
BUCKET = "artreg-bench-blobs"


@dataclass(frozen=True)
class Sizes:
    versions: int  # of the large artifact on the server
    artifacts: int  # of the large project on the server
    moto_versions: int  # the same on moto, where populating is slow (see moto_counts)
    moto_artifacts: int
    requests: int  # timed requests per operation and side


def sizes(options: Options) -> Sizes:
    return Sizes(
        versions=options.size(10_000, 200),
        artifacts=options.size(1000, 20),
        moto_versions=options.size(300, 30),
        moto_artifacts=options.size(300, 20),
        requests=options.size(300, 30),
    )


@dataclass(frozen=True)
class Read:
    path: str  # the request on the server
    call: Callable[[Any], object]  # the same read through a `RegistryService`


@dataclass(frozen=True)
class Operation:
    """One read on the small side and on the large side."""

    label: str
    small: Read
    large: Read


def resolve(name: str, ref: str) -> Read:
    return Read(f"/v1/resolve/{PROJECT}/{name}@{ref}", lambda registry: registry.resolve(PROJECT, name, ref))


def versions(name: str, limit: int) -> Read:
    return Read(
        f"/v1/projects/{PROJECT}/artifacts/{name}/versions?limit={limit}",
        lambda registry: registry.list_versions(PROJECT, name, limit=limit),
    )


def artifacts(project: str, limit: int) -> Read:
    return Read(
        f"/v1/projects/{project}/artifacts?limit={limit}",
        lambda registry: registry.list_artifacts(project, limit=limit),
    )


def operations(large: str) -> list[Operation]:
    """`large` is the name of the large artifact; the small one is `small`."""
    return [
        Operation(f"resolve `name@{ALIAS}`", resolve("small", ALIAS), resolve(large, ALIAS)),
        Operation("resolve `name@latest`", resolve("small", "latest"), resolve(large, "latest")),
        Operation("resolve `name@1.0.0` (the oldest)", resolve("small", "1.0.0"), resolve(large, "1.0.0")),
        Operation(
            f"list versions, first page (limit={SMALL_VERSIONS})",
            versions("small", SMALL_VERSIONS),
            versions(large, SMALL_VERSIONS),
        ),
        Operation("list versions, first page (limit=100)", versions("small", 100), versions(large, 100)),
        Operation("list artifacts, first page (limit=1)", artifacts(ONE, 1), artifacts(MANY, 1)),
        Operation("list artifacts, first page (limit=100)", artifacts(ONE, 100), artifacts(MANY, 100)),
    ]


# ---------------------------------------------------------------- 1. latency on the server


class Writers:
    """Metadata-only commits over HTTP from a few threads, each with its own kept-alive session."""

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        session: requests.Session = self._local.session
        return session

    def commit(self, project: str, name: str, aliases: list[str] | None = None) -> float:
        """One version with no files (committed by the start request itself); its latency."""
        body = {"type": "model", "files": [], "commit": True, "aliases": aliases or []}
        began = time.perf_counter()
        answer = self._session().post(
            f"{self.url}/v1/projects/{project}/artifacts/{name}/uploads", json=body, timeout=60
        )
        latency = time.perf_counter() - began
        if answer.status_code != 201 or answer.json().get("state") != "committed":
            raise RuntimeError(f"scale: commit of {project}/{name} answered {answer.status_code}: {answer.text[:300]}")
        return latency

    def versions(self, project: str, name: str, count: int) -> list[float]:
        """`count` versions of one artifact, the first alone (it carries the alias); their latencies in
        the order they were sent."""
        first = self.commit(project, name, [ALIAS])
        with ThreadPoolExecutor(WRITERS) as pool:
            return [first, *pool.map(lambda _: self.commit(project, name), range(count - 1))]

    def artifacts(self, project: str, count: int) -> None:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda i: self.commit(project, f"model-{i:05d}", [ALIAS]), range(count)))


@dataclass
class Timings:
    seconds: list[float]
    items: int  # in the answer (a record, or a page's items)

    def ms(self, quantile: float) -> float:
        ordered = sorted(self.seconds)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def timed_get(session: requests.Session, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    answer = session.get(url, timeout=30)
    seconds = time.perf_counter() - began
    if answer.status_code != 200:
        raise RuntimeError(f"scale: GET {url} answered {answer.status_code}: {answer.text[:300]}")
    body = answer.json()
    return seconds, len(body["items"]) if "items" in body else 1


def compare(session: requests.Session, url: str, operation: Operation, count: int) -> tuple[Timings, Timings]:
    """`count` requests on each side, alternating, after a few untimed ones."""
    small, large = (Timings([], 0) for _ in range(2))
    sides = ((small, operation.small.path), (large, operation.large.path))
    for _ in range(5):
        for _, path in sides:
            timed_get(session, url + path)
    for _ in range(count):
        for timings, path in sides:
            seconds, timings.items = timed_get(session, url + path)
            timings.seconds.append(seconds)
    return small, large


def populate_server(writers: Writers, large_name: str, sizes: Sizes) -> tuple[str, list[float]]:
    """Both sides of every operation; a line on how long it took, and the large artifact's commit latencies."""
    began = time.perf_counter()
    writers.versions(PROJECT, "small", SMALL_VERSIONS)
    print(f"scale: logging {sizes.versions} versions on the server ...", file=sys.stderr, flush=True)
    latencies = writers.versions(PROJECT, large_name, sizes.versions)
    writers.artifacts(ONE, 1)
    print(f"scale: logging {sizes.artifacts} artifacts on the server ...", file=sys.stderr, flush=True)
    writers.artifacts(MANY, sizes.artifacts)
    seconds = time.perf_counter() - began
    commits = SMALL_VERSIONS + sizes.versions + 1 + sizes.artifacts
    note = (
        f"Populating took {seconds:.0f} s: {commits} commits from {WRITERS} clients, {commits / seconds:.0f} a second."
    )
    return note, latencies


def commit_growth(latencies: list[float]) -> str:
    """Commit latency of the large artifact's first and last tenth of versions: a commit must not slow
    down as versions pile up."""
    tenth = max(1, len(latencies) // 10)
    first, last = statistics.median(latencies[1 : tenth + 1]), statistics.median(latencies[-tenth:])
    return (
        f"Commits to the large artifact, {WRITERS} clients at once: median {1000 * first:.1f} ms over its first "
        f"tenth of versions, {1000 * last:.1f} ms over its last ({last / first:.2f}x)."
    )


def server_latency(sizes: Sizes) -> str:
    from tests.support.server import RunningServer

    large_name = f"large-{sizes.versions}"
    headers = [
        "operation",
        "small: p50 ms",
        "p99 ms",
        "items",
        "large: p50 ms",
        "p99 ms",
        "items",
        "p50 ratio",
        "p99 ratio",
    ]
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as data:
        server = RunningServer(Path(data))
        server.start()
        try:
            populated, latencies = populate_server(Writers(server.url), large_name, sizes)
            print("scale: timing reads on the server ...", file=sys.stderr, flush=True)
            with requests.Session() as session:
                for operation in operations(large_name):
                    small, large = compare(session, server.url, operation, sizes.requests)
                    rows.append(
                        [
                            operation.label,
                            f"{small.ms(0.5):.2f}",
                            f"{small.ms(0.99):.2f}",
                            small.items,
                            f"{large.ms(0.5):.2f}",
                            f"{large.ms(0.99):.2f}",
                            large.items,
                            f"{large.ms(0.5) / small.ms(0.5):.2f}x",
                            f"{large.ms(0.99) / small.ms(0.99):.2f}x",
                        ]
                    )
        finally:
            server.stop()
    return "\n".join(
        [
            f"### Latency on `artreg server`: {SMALL_VERSIONS} vs {sizes.versions:,} versions, 1 vs "
            f"{sizes.artifacts:,} artifacts",
            "",
            f"{sizes.requests} timed requests per operation and side, over one kept-alive connection, the sides "
            "alternating. Small side: an artifact of 10 versions (resolve, list versions) or a project of 1 artifact "
            f"(list artifacts); large side: {sizes.versions:,} versions or {sizes.artifacts:,} artifacts. "
            f"`{ALIAS}` points at version 1.0.0. *items* is what the answer holds: a page of the large side can hold "
            "more, so the pages of equal size (limit=10, limit=1) are the like-for-like rows.",
            "",
            table(headers, rows),
            "",
            populated + " " + commit_growth(latencies),
        ]
    )


# ---------------------------------------------------------------- 2. calls and items on moto


class Reads:
    """The DynamoDB calls a client sends, by operation, and the items they read (what DynamoDB bills a
    read by): a GetItem reads its item if found, a Query the items its key condition matched."""

    def __init__(self, client: Any):
        self.calls: Counter[str] = Counter()
        self.items = 0
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "GetItem":
            self.items += 1 if parsed.get("Item") else 0
        else:
            self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))

    def take(self) -> tuple[str, int]:
        taken = ", ".join(f"{n} {op}" for op, n in sorted(self.calls.items())) or "-"
        items, self.calls, self.items = self.items, Counter(), 0
        return taken, items


def moto_counts(sizes: Sizes) -> str:
    from artreg.aws.dynamodb import DynamoStore
    from artreg.aws.s3 import S3BlobStore
    from artreg.model.wire import StartUpload
    from artreg.registry.service import RegistryService
    from tests.support.moto_resources import registry_resources

    large_name = f"large-{sizes.moto_versions}"
    rows: list[list[object]] = []
    with registry_resources(TABLE, BUCKET) as aws:
        registry = RegistryService(DynamoStore(aws["dynamodb"], TABLE), S3BlobStore(aws["s3"], BUCKET))

        def log(project: str, name: str, count: int) -> None:
            for i in range(count):
                registry.start_upload(
                    project, name, StartUpload(files=[], commit=True, aliases=[ALIAS] if i == 0 else [])
                )

        print(
            f"scale: logging {sizes.moto_versions} versions and {sizes.moto_artifacts} artifacts on moto ...",
            file=sys.stderr,
            flush=True,
        )
        began = time.perf_counter()
        with no_transaction_backups():
            log(PROJECT, "small", SMALL_VERSIONS)
            log(PROJECT, large_name, sizes.moto_versions)
            log(ONE, "model-00000", 1)
            for i in range(sizes.moto_artifacts):
                log(MANY, f"model-{i:05d}", 1)
        populated = time.perf_counter() - began
        check_populated(registry, large_name, sizes)
        reads = Reads(aws["dynamodb"])
        for operation in operations(large_name):
            measured = []
            for read in (operation.small, operation.large):
                reads.take()
                read.call(registry)
                measured.append(reads.take())
            (small_calls, small_items), (large_calls, large_items) = measured
            same = "yes" if small_calls == large_calls else "NO"
            rows.append([operation.label, small_calls, small_items, large_calls, large_items, same])
    headers = ["operation", "small: calls", "items read", "large: calls", "items read", "same calls"]
    return "\n".join(
        [
            f"### DynamoDB calls and items read on moto: {SMALL_VERSIONS} vs {sizes.moto_versions:,} versions, 1 vs "
            f"{sizes.moto_artifacts:,} artifacts",
            "",
            "Through `RegistryService` and `DynamoStore`, counted with botocore's `after-call` event on the client. "
            "The "
            "large sides are smaller than on the server: moto's Query and transactions take time in proportion to "
            "what the table holds, so logging 10,000 versions there would take hours. A GetItem reads its one item "
            "whatever the partition holds. A Query reads at most its `Limit`, which the registry sets to its batch "
            "of 100 (`paging.scan`) whatever the page asked for: so a page of 10 reads up to 100 items. "
            f"Populating took {populated:.0f} s.",
            "",
            table(headers, rows),
        ]
    )


def check_populated(registry: Any, large_name: str, sizes: Sizes) -> None:
    """Populating went without moto's rollback copies: check it wrote what it should have."""
    head = registry.get_artifact(PROJECT, large_name)
    expected = (sizes.moto_versions, f"{sizes.moto_versions}.0.0", "1.0.0")
    if (head.version_count, head.latest, head.aliases.get(ALIAS)) != expected:
        raise RuntimeError(f"scale: moto holds {head} for {large_name}, not {expected}")


def run(options: Options) -> str:
    chosen = sizes(options)
    return server_latency(chosen) + "\n\n" + moto_counts(chosen)
