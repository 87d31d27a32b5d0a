"""contention: commits per second when writers race for one artifact, against writers with one
artifact each, on two back ends: moto behind the real `RegistryService`, `DynamoStore` and `S3BlobStore`
(writers are threads), and `artreg server` over HTTP (writers are processes, each with the SDK). Every
row ends with a check that each artifact's versions are unique and gapless (`Run.gapless`)."""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artreg.client import Artifact
from artreg.client import Registry as Client
from artreg.client.http import RetryPolicy
from artreg.model.errors import Retryable
from benchmarks import Options, table

TITLE = "Commit contention: one artifact and many, on moto and on artreg server"
PROJECT = "bench"
START_TIMEOUT_S = 120  # for every writer process to be ready; past it, the row fails rather than hangs
FLOW = (
    "Each commit is the client flow: start (commit=true) → PUT of its 1 blob → commit, of content no other commit "
    "has; its latency is that whole flow. Each row ends with a check that each artifact's versions are unique and "
    "gapless: its commits got 1.0.0 .. N.0.0 (major bumps), and its head says N versions with N.0.0 as `latest`."
)


@dataclass(frozen=True)
class Shape:
    """One row: `writers` writers on `artifacts` artifacts (writer n commits to artifact n % artifacts)."""

    writers: int
    artifacts: int = 1
    conflict_rate: float = 0.0  # moto only: the share of transactions cancelled as `TransactionConflict`

    def artifact(self, writer: int) -> str:
        return f"model-{writer % self.artifacts}"

    def commits_of(self, writer: int, commits: int) -> int:
        """The writer's share of a row's commits, which are spread as evenly as they go."""
        commits = max(commits, self.writers)  # every writer commits at least once
        return commits // self.writers + (writer < commits % self.writers)


@dataclass(frozen=True)
class Target:
    """What the project asks of `artreg server` with many writers on one artifact."""

    writers: int = 32
    commits_per_s: float = 120.0
    p99_s: float = 0.5


TARGET = Target()


MOTO_SHAPES = (Shape(1), Shape(4), Shape(16), Shape(16, 16), Shape(16, conflict_rate=0.1))
SERVER_SHAPES = (Shape(1), Shape(4), Shape(16), Shape(16, 16), Shape(TARGET.writers))  # the last row: the target's


@dataclass(frozen=True)
class Sizes:
    moto_commits: int = 96  # per row
    server_commits: int = 640  # per row


FULL, QUICK = Sizes(), Sizes(moto_commits=16, server_commits=16)


@dataclass
class Outcome:
    """What one writer did; sent back from a writer process, so plain data."""

    began: float = 0.0  # time.monotonic(), the same clock in every process of the machine
    ended: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of each commit that succeeded, its whole flow
    versions: dict[str, list[str]] = field(default_factory=dict)  # by artifact, the versions its commits got
    gave_up: int = 0  # commits that ran out of retries (a client would try again later)
    retries: int = 0  # HTTP retries of the SDK (server back end)
    errors: list[str] = field(default_factory=list)  # anything else, which stops the writer


@dataclass
class Run:
    """One row's outcomes, the heads of its artifacts after it, and what the back end counted."""

    outcomes: list[Outcome]
    heads: dict[str, tuple[int, str | None]]  # artifact -> (version_count, latest)
    retries: int  # moto: the registry's commit retries; server: the SDK's HTTP retries
    api_calls: int = 0  # moto: AWS calls
    injected: int = 0  # moto: TransactionConflict cancellations injected

    @property
    def latencies(self) -> list[float]:
        return [s for o in self.outcomes for s in o.latencies]

    @property
    def commits(self) -> int:
        return len(self.latencies)

    @property
    def seconds(self) -> float:
        """From the first writer's start to the last one's end (a writer that never started is left out)."""
        started = [o for o in self.outcomes if o.began]
        return max(o.ended or o.began for o in started) - min(o.began for o in started) if started else float("nan")

    @property
    def rate(self) -> float:
        return self.commits / self.seconds

    @property
    def gave_up(self) -> int:
        return sum(o.gave_up for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        return [e for o in self.outcomes for e in o.errors]

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    @property
    def gapless(self) -> bool:
        """Each artifact's versions are 1.0.0 .. N.0.0, each once, and its head agrees."""
        got: dict[str, list[str]] = {}
        for outcome in self.outcomes:
            for name, versions in outcome.versions.items():
                got.setdefault(name, []).extend(versions)
        if self.errors or sum(map(len, got.values())) != self.commits:
            return False
        for name, versions in got.items():
            count = len(versions)
            majors = sorted(int(v.split(".")[0]) for v in versions)
            if majors != list(range(1, count + 1)) or set(versions) != {f"{m}.0.0" for m in majors}:
                return False
            if self.heads.get(name) != (count, f"{count}.0.0"):
                return False
        return True


def _report(back_end: str, run: Run) -> None:
    for error in run.errors[:3]:
        print(f"contention ({back_end}): a writer failed: {error}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- moto, serialised, writers as threads


def moto_run(shape: Shape, commits: int) -> Run:
    """Threads commit through one `RegistryService` on moto, serialised as real DynamoDB's per-request atomicity
    would have it (`SerialisedClient`), which also injects the row's conflicts."""
    # imported here: the server's writer processes import this module and need none of it
    from artreg.aws.dynamodb import DynamoStore
    from artreg.aws.s3 import S3BlobStore
    from artreg.registry.service import RegistryService
    from benchmarks.aws_costs import BUCKET as BLOBS
    from benchmarks.aws_costs import TABLE, log, moto_account
    from tests.support.moto_serial import SerialisedClient

    retries: list[None] = []
    outcomes = [Outcome() for _ in range(shape.writers)]
    with moto_account() as (dynamodb, s3, calls):
        serialised = SerialisedClient(dynamodb, conflict_rate=shape.conflict_rate)
        registry = RegistryService(
            DynamoStore(serialised, TABLE),  # type: ignore[arg-type]
            S3BlobStore(s3, BLOBS),
            on_retry=lambda: retries.append(None),
        )
        log(registry, calls, "warm-up", {"w.bin": b"warm-up"})  # moto sets up a fresh account on first use
        start = threading.Barrier(shape.writers + 1)

        def writer(number: int) -> None:
            name, outcome = shape.artifact(number), outcomes[number]
            start.wait()
            outcome.began = time.monotonic()
            for i in range(shape.commits_of(number, commits)):
                began = time.monotonic()
                try:
                    version = log(registry, calls, name, {"w.bin": f"{number} {i}".encode()}).record.version
                except Retryable:  # past the registry's retry deadline: a client would retry it later
                    outcome.gave_up += 1
                    continue
                except Exception as error:
                    outcome.errors.append(repr(error))
                    break
                outcome.latencies.append(time.monotonic() - began)
                outcome.versions.setdefault(name, []).append(version)
            outcome.ended = time.monotonic()

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(shape.writers)]
        for thread in threads:
            thread.start()
        calls.take()
        retries.clear()
        start.wait()
        for thread in threads:
            thread.join()
        api, _ = calls.take()
        names = {shape.artifact(n) for n in range(shape.writers)}
        heads = {}
        for name in names:
            head = registry.get_artifact(PROJECT, name)
            heads[name] = (head.version_count, head.latest)
    return Run(outcomes, heads, len(retries), sum(api.values()), serialised.injected_conflicts)


# ---------------------------------------------------------------- artreg server, writers as processes


def server_writer(url: str, name: str, number: int, count: int, tag: str, start: Any, results: Any) -> None:
    """One writer process: `count` commits of 1 small file each, through the SDK, to artifact `name`.
    It always sends back its outcome, a failure in it: the parent waits for one from each writer."""
    outcome = Outcome()
    retries: list[float] = []

    def sleep(seconds: float) -> None:  # the SDK sleeps once before each retry: count them here
        retries.append(seconds)
        time.sleep(seconds)

    try:
        with (
            Client(url, PROJECT, workers=1, progress=False, cache=False, retry=RetryPolicy(sleep=sleep)) as client,
            tempfile.TemporaryDirectory(prefix="artreg-contention-") as folder,
        ):
            source = Path(folder) / "w.bin"
            start.wait(timeout=START_TIMEOUT_S)
            outcome.began = time.monotonic()
            for i in range(count):
                source.write_bytes(f"{tag} {number} {i}".encode())
                began = time.monotonic()
                try:
                    logged = client.log_artifact(Artifact(name, type="model").add(source))
                except Retryable:  # the SDK's retries ran out (429 / 503 / unreachable)
                    outcome.gave_up += 1
                    continue
                outcome.latencies.append(time.monotonic() - began)
                outcome.versions.setdefault(name, []).append(logged.version)
            outcome.ended = time.monotonic()
    except Exception as error:
        outcome.errors.append(repr(error))
    finally:
        outcome.retries = len(retries)
        results.put(outcome)


def server_run(shape: Shape, commits: int) -> Run:
    """A fresh `artreg server` on a folder of its own; each writer a process of its own (forkserver,
    with the SDK imported once), so that the clients do not share one GIL with each other or the server."""
    from tests.support.server import RunningServer

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with tempfile.TemporaryDirectory(prefix="artreg-contention-server-") as data:
        server = RunningServer(Path(data))
        server.start()
        try:
            start, results = context.Barrier(shape.writers), context.Queue()
            tag = f"{shape.writers}x{shape.artifacts}"
            processes = [
                context.Process(
                    target=server_writer,
                    args=(server.url, shape.artifact(n), n, shape.commits_of(n, commits), tag, start, results),
                )
                for n in range(shape.writers)
            ]
            for process in processes:
                process.start()
            outcomes = [results.get(timeout=START_TIMEOUT_S + 600) for _ in processes]
            for process in processes:
                process.join(timeout=60)
            with Client(server.url, PROJECT, progress=False, cache=False) as client:
                heads = {}
                for name in {shape.artifact(n) for n in range(shape.writers)}:
                    summary = client.summary(name)
                    heads[name] = (summary.version_count, summary.latest)
        finally:
            server.stop()
    return Run(outcomes, heads, sum(o.retries for o in outcomes))


# ---------------------------------------------------------------- the tables


def rows_of(
    back_end: str, shapes: Sequence[Shape], commits: int, run: Callable[[Shape, int], Run]
) -> tuple[list[list[object]], dict[Shape, Run]]:
    rows: list[list[object]] = []
    runs: dict[Shape, Run] = {}
    single: Run | None = None
    for shape in shapes:
        print(
            f"contention: {back_end}, {shape.writers} writer(s) on {shape.artifacts} artifact(s)"
            + (f", conflict rate {shape.conflict_rate}" if shape.conflict_rate else "")
            + " ...",
            file=sys.stderr,
            flush=True,
        )
        result = runs[shape] = run(shape, commits)
        _report(back_end, result)
        single = single or result
        done = max(result.commits, 1)
        row: list[object] = [
            shape.writers,
            shape.artifacts,
            result.commits,
            result.gave_up,
            len(result.errors),
            f"{result.seconds:.1f}",
            f"{result.rate:.1f}",
            f"{result.rate / single.rate:.2f}x",
            f"{result.latency_ms(0.5):.0f}",
            f"{result.latency_ms(0.99):.0f}",
            f"{result.retries / done:.2f}",
        ]
        if back_end == "moto":
            row[2:2] = [f"{shape.conflict_rate:.1f}"]
            row += [result.injected, f"{result.api_calls / done:.1f}"]
        rows.append([*row, "OK" if result.gapless else "FAIL"])
    return rows, runs


HEADERS = [
    "writers",
    "artifacts",
    "commits",
    "gave up",
    "failed",
    "seconds",
    "commits/s",
    "vs 1 writer",
    "p50 ms",
    "p99 ms",
]


def moto_section(commits: int) -> str:
    rows, _ = rows_of("moto", MOTO_SHAPES, commits, moto_run)
    headers = [*HEADERS[:2], "conflict rate", *HEADERS[2:], "retries/commit", "injected conflicts", "AWS calls/commit"]
    return "\n".join(
        [
            "### On moto: writers as threads of one process",
            "",
            "moto's DynamoDB is serialised (`tests.support.moto_serial.SerialisedClient`: one request at a time, "
            "the per-request atomicity real DynamoDB gives), which cancels the given share of transactions as "
            "`TransactionConflict`; the registry runs with its default `Policy` (backoff from 4 ms doubling to "
            "250 ms, 20 s deadline: a commit past it *gave up*). Retries are the registry's commit retries "
            "(`on_retry`). The table's stream is off and moto takes one backup per transaction "
            "(`registry_resources(load=True)`). moto runs in this process: its work is CPU under one GIL, so 16 "
            "threads cannot beat 1 here; retries per commit and the version check are what carry over to AWS. "
            '"vs 1 writer" compares with the first row, of the same run.',
            "",
            table([*headers, "versions unique, gapless"], rows),
        ]
    )


def server_section(commits: int) -> str:
    rows, runs = rows_of("server", SERVER_SHAPES, commits, server_run)
    return "\n".join(
        [
            "### On `artreg server` over HTTP: writers as processes",
            "",
            "A fresh `artreg server` (SQLite and a folder of blobs, in a temporary folder) for each row; each writer "
            "is a process of its own (multiprocessing, forkserver) that logs through the SDK "
            "(`Registry(...).log_artifact`, keep-alive connections, 1 small file a commit). The server takes one "
            "API request at a time through its resolver (`Local._resolving`), so its commits never race and the "
            "registry never retries one; retries here are the SDK's HTTP retries (on 429/503 with `Retry-After`, "
            "or a refused connection), and a commit whose retries ran out *gave up*. Client processes and the "
            'server share this machine\'s CPUs. "vs 1 writer" compares with the first row, of the same run.',
            "",
            table([*HEADERS, "HTTP retries/commit", "versions unique, gapless"], rows),
            "",
            target_table(runs[SERVER_SHAPES[-1]]),
        ]
    )


def target_table(run: Run) -> str:
    """The 32-writer row against what the project asks of it."""
    p99 = run.latency_ms(0.99) / 1000
    failures = run.gave_up + len(run.errors)
    rows = [
        ["failed or gave up", "0", failures, "-", "met" if failures == 0 else "missed"],
        ["versions unique, gapless", "yes", "yes" if run.gapless else "no", "-", "met" if run.gapless else "missed"],
        [
            "commits/s",
            f"≥ {TARGET.commits_per_s:.0f}",
            f"{run.rate:.1f}",
            f"{run.rate / TARGET.commits_per_s:.2f}",
            "met" if run.rate >= TARGET.commits_per_s else "missed",
        ],
        [
            "p99 latency",
            f"≤ {TARGET.p99_s * 1000:.0f} ms",
            f"{p99 * 1000:.0f} ms",
            f"{p99 / TARGET.p99_s:.2f}",
            "met" if p99 <= TARGET.p99_s else "missed",
        ],
    ]
    return "\n".join(
        [
            f"Against the project's target for {TARGET.writers} writers on one artifact with `artreg server` "
            f"(ratio: measured / target):",
            "",
            table(["figure", "target", "measured", "ratio", ""], rows),
        ]
    )


def run(options: Options) -> str:
    moto_commits = options.commits or options.size(FULL.moto_commits, QUICK.moto_commits)
    server_commits = options.commits or options.size(FULL.server_commits, QUICK.server_commits)
    note = (
        f"{moto_commits} commits a row on moto, {server_commits} on the server "
        f"(at least one per writer: the {TARGET.writers}-writer row makes {max(server_commits, TARGET.writers)})."
    )
    return "\n\n".join([FLOW, note, moto_section(moto_commits), server_section(server_commits)])
