"""The janitor at scale on moto: a registry of N blobs (100,000 by default), most listed by live
versions and the rest by nothing, written straight into moto's S3 and the table (not through the API:
fast). The janitor then runs as the hourly Lambda does, each run with the time its timeout leaves less a
margin, until its walk over the blobs is done (condemning the unlisted ones), and again after the fence
(removing them). It shows each run ending within its timeout, and the walk finishing over successive
runs, where one run over everything would have to last the whole walk. Each run's DynamoDB Queries are
counted (botocore's `before-call` event): most of them read the expiry index for pending uploads."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import Options, table

TITLE = "the janitor's walk in time-budgeted runs, on moto"
TABLE, BUCKET = "artreg-bench-janitor", "artreg-bench-janitor-blobs"
PROJECT = "bench"
FILES_PER_VERSION = 90
VERSIONS_PER_ARTIFACT = 10
UNLISTED = 0.1  # of the blobs, listed by nothing


def run(options: Options) -> str:
    from artreg.aws.dynamodb import DynamoStore
    from artreg.aws.s3 import S3BlobStore
    from artreg.registry import janitor_walks as walks
    from artreg.registry.budget import TimeBudget
    from artreg.registry.janitor import Janitor
    from tests.support.moto_resources import registry_resources

    blobs = options.size(100_000, 2_000)
    timeout_s = 2.0 if options.quick else 30.0  # the Lambda's timeout (300 s), scaled down for moto
    margin_s = 0.6 if options.quick else 3.0  # the handler keeps 30 s of 300: one item and a checkpoint fit in it
    grace = timedelta(days=7)
    with registry_resources(TABLE, BUCKET, load=True) as aws:
        print(f"janitor: writing {blobs} blobs and their versions into moto ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        listed = populate(aws, blobs)
        populated = time.perf_counter() - began
        store, s3 = DynamoStore(aws["dynamodb"], TABLE), S3BlobStore(aws["s3"], BUCKET)

        queries = [0]

        def count(**_: Any) -> None:
            queries[0] += 1

        aws["dynamodb"].meta.events.register("before-call.dynamodb.Query", count)

        def walk(at: timedelta) -> list[tuple[float, int, int, int]]:
            """Runs until the walk is done: each run's seconds, blobs condemned and removed, Queries."""
            janitor = Janitor(store, s3, clock=Later(at))
            runs: list[tuple[float, int, int, int]] = []
            while True:
                start, queries[0] = time.perf_counter(), 0
                budget = TimeBudget(timeout_s - margin_s)
                janitor.expire_uploads(budget=budget)  # as the handler does first: it moves the expiry cursor
                swept = janitor.reclaim_blobs(grace, timedelta(hours=24), budget=budget)
                runs.append((time.perf_counter() - start, swept.condemned, swept.reclaimed, queries[0]))
                print(f"janitor: run {len(runs)}: {runs[-1][0]:.1f} s, {swept}", file=sys.stderr, flush=True)
                saved = store.get_checkpoint(walks.BLOBS)
                if saved and walks.BlobCheckpoint.model_validate_json(saved[0]).walk is None:
                    return runs

        condemning = walk(grace + timedelta(days=1))
        removing = walk(grace + timedelta(days=1, hours=1))
        pages = aws["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PROJECT}/blobs/")
        left = sum(len(page.get("Contents", [])) for page in pages)  # a listing, not a HEAD per blob
    unlisted = blobs - listed
    rows = [
        [
            kind,
            len(runs),
            f"{max(r[0] for r in runs):.2f}",
            f"{sum(r[0] for r in runs):.1f}",
            *totals(runs),
            sum(r[3] for r in runs),
            f"{sum(r[3] for r in runs) / len(runs):.0f}",
        ]
        for kind, runs in (("condemning walk", condemning), ("removing walk", removing))
    ]
    per_run = [
        [f"{kind} {i + 1}", f"{seconds:.2f}", condemned, removed, count]
        for kind, runs in (("condemning", condemning), ("removing", removing))
        for i, (seconds, condemned, removed, count) in enumerate(runs)
    ]
    return "\n".join(
        [
            f"- {blobs} blobs in one project: {listed} listed by {listed // FILES_PER_VERSION} live versions, "
            f"{unlisted} listed by nothing (written into moto in {populated:.1f} s)",
            f"- each run: a timeout of {timeout_s:g} s, a time budget of {timeout_s - margin_s:g} s "
            f"(the timeout less a margin of {margin_s:g} s for the last item and the checkpoint)",
            f"- runs over their timeout: {sum(r[0] > timeout_s for r in condemning + removing)}"
            f" of {len(condemning) + len(removing)}",
            f"- blobs left after the two walks: {left} (listed: {listed})",
            "",
            table(
                ["walk", "runs", "longest run (s)", "all runs (s)", "condemned", "removed", "Queries", "a run"], rows
            ),
            "",
            "Every run:",
            "",
            table(["run", "seconds", "condemned", "removed", "Queries"], per_run),
        ]
    )


def totals(runs: list[tuple[float, int, int, int]]) -> list[int]:
    return [sum(r[1] for r in runs), sum(r[2] for r in runs)]


class Later:
    def __init__(self, after: timedelta) -> None:
        self.after = after

    def now(self) -> datetime:
        return datetime.now(UTC) + self.after


def populate(aws: dict[str, Any], blobs: int) -> int:
    """Writes the blobs into moto's S3 backend directly, and live versions listing all but `UNLISTED`
    of them into the table with BatchWriteItem; answers how many blobs are listed."""
    import hashlib

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from artreg.aws import dynamodb_codec as codec
    from artreg.model.wire import FileEntry
    from artreg.registry.records import Head, StoredVersion

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    digests = sorted(hashlib.sha256(str(i).encode()).hexdigest() for i in range(blobs))
    for sha in digests:
        backend.put_object(BUCKET, f"{PROJECT}/blobs/sha256/{sha[:2]}/{sha}", sha.encode())
    every = round(1 / UNLISTED)  # spread over the whole key range, as deletions leave them
    listed = [sha for i, sha in enumerate(digests) if i % every]
    listed = listed[: len(listed) // FILES_PER_VERSION * FILES_PER_VERSION]
    now = datetime.now(UTC)
    items: list[dict[str, Any]] = []
    for v, start in enumerate(range(0, len(listed), FILES_PER_VERSION)):
        name, number = f"model-{v // VERSIONS_PER_ARTIFACT:05d}", f"1.0.{v % VERSIONS_PER_ARTIFACT}"
        files = [FileEntry(path=f"f{i}.bin", size=64, sha256=sha) for i, sha in enumerate(listed[start : start + 90])]
        version = StoredVersion.model_validate(
            {"project": PROJECT, "name": name, "version": number, "type": "model", "files": files,
             "digest": "0" * 64, "created_at": now, "size": 64 * len(files), "file_count": len(files)}
        )  # fmt: skip
        items.append({**codec.version_key(PROJECT, name, number), **codec.version_attrs(version)})
        if v % VERSIONS_PER_ARTIFACT == 0:
            head = Head(project=PROJECT, name=name, type="model", created_at=now, updated_at=now)
            items.append(codec.head_item(head))
    client = aws["dynamodb"]
    for i in range(0, len(items), 25):
        client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]})
    return len(listed)
