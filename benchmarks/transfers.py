"""transfers: files logged and downloaded through the SDK against `artreg server`, each beside a plain
`cp` of the same bytes on the same disk, timed in the same run.

Everything lives in one temporary folder: the source files, the server's data folder, the copies,
the downloads and the SDK's cache, so that every figure reads and writes the same disk. Each client
operation runs in a fresh process (`benchmarks/_transfer_client.py`), so that its peak RSS is its
own and its requests are counted alone; its time is that of the SDK call, without the interpreter's
start and imports (those are the bare-import row of the memory table). Pending writes are flushed
(`sync`) before each timed step, so that none is paid for by the next one.

The machine has ample RAM: the files stay in the page cache, so a read is a memory copy and only
what is synced waits for the disk. `cp` is timed without and with a `sync` after it; the server
fsyncs every blob it receives, the SDK's downloads fsync nothing."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import Options, table
from tests.support.server import RunningServer

TITLE = "Transfers through the SDK against `artreg server`, against a plain copy"
CLIENT = Path(__file__).with_name("_transfer_client.py")
PROJECT = "bench"
MiB = 1024**2
SMALL_FILE = 4096
FILES_PER_FOLDER = 1000
LOG_TARGET = 0.5  # a 256 MiB file logs at >= this share of the speed of cp + sync
FILES_PER_SECOND_TARGET = 1500  # 1,000 new files of 4 KiB log at >= this many files a second
RELOG_REQUESTS_TARGET = 2  # unchanged content logs again in at most this many requests, no blob bytes
RELOG_BASELINE_REQUESTS = 1  # the least it can take: one request listing the content
IDLE_RSS_TARGET_MIB = 150  # the server process, idle after its first answer
FIRST_ANSWER_TARGET_S = 1.0  # from `artreg server` started to its first API answer


@dataclass(frozen=True)
class Content:
    """What is logged: one large file or a folder of small ones, written once for the benchmark."""

    name: str  # the artifact's name
    label: str  # for the tables
    path: Path
    files: int
    size: int  # bytes in all


@dataclass(frozen=True)
class Copy:
    """The baseline: the same bytes copied by coreutils on the same disk, a few times. The median is
    taken: one copy lasts a fraction of a second, and a neighbour's busy moment would otherwise set it."""

    plain: tuple[float, ...]  # seconds of each `cp -r src dst`
    synced: tuple[float, ...]  # of each `cp -r src dst && sync`

    @property
    def seconds(self) -> float:
        return statistics.median(self.plain)

    @property
    def synced_seconds(self) -> float:
        return statistics.median(self.synced)

    def __add__(self, other: Copy) -> Copy:
        return Copy(self.plain + other.plain, self.synced + other.synced)


@dataclass(frozen=True)
class ClientRun:
    """One SDK operation in a process of its own, as `_transfer_client.py` reported it."""

    seconds: float  # the SDK call alone
    process_seconds: float  # the whole process: interpreter, imports, the call
    peak_kib: int  # VmHWM at the end
    import_peak_kib: int  # VmHWM once the SDK was imported, before the call
    report: dict[str, Any]  # request and byte counts, and what the call answered

    @property
    def requests(self) -> int:
        return int(self.report["api_requests"] + self.report["blob_requests"])

    def requests_text(self) -> str:
        handoffs = self.report.get("handoffs", 0)
        handed = f" + {handoffs} handoff" if handoffs else ""
        return f"{self.requests} ({self.report['api_requests']} API + {self.report['blob_requests']} blob){handed}"


@dataclass(frozen=True)
class Measured:
    content: Content
    copy: Copy
    log: ClientRun  # the first log: every blob sent
    relog: ClientRun  # the same content logged again: a new version
    unchanged: ClientRun  # and again with if_changed: the version there is
    cold: ClientRun  # a download with an empty cache
    warm: ClientRun  # the same download again into a fresh folder, the cache filled by the first


@dataclass(frozen=True)
class BareImport:
    """The floor under every client process: `python -c "import artreg.client"`."""

    seconds: float
    peak_kib: int


# ---------------------------------------------------------------- content


def large_file(folder: Path, name: str, mib: int) -> Content:
    """`mib` MiB, every MiB distinct and unlike any other file's (a random block, numbered): content
    that no blob of the registry holds already. Numbering one random block is much cheaper than
    drawing every byte, and neither hashing nor copying cares."""
    path = folder / f"{name}.bin"
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for index in range(mib):
            out.write(index.to_bytes(8, "big") + block[8:])
    return Content(name, f"{mib:,} MiB file", path, 1, mib * MiB)


def small_files(folder: Path, name: str, count: int) -> Content:
    """`count` random files of 4 KiB in folders of 1,000, as a dataset of shards or images is laid out."""
    path = folder / name
    for index in range(count):
        shard = path / f"part-{index // FILES_PER_FOLDER:03d}"
        shard.mkdir(parents=True, exist_ok=True)
        (shard / f"{index:06d}.bin").write_bytes(os.urandom(SMALL_FILE))
    return Content(name, f"{count:,} files of 4 KiB", path, count, count * SMALL_FILE)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- measuring


def settle() -> None:
    """Flushes every pending write, so that a timed step does not pay for the one before it."""
    os.sync()


def timed(command: list[str]) -> float:
    settle()
    began = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - began


def copy_times(content: Content, scratch: Path, tries: int = 2) -> Copy:
    """`cp -r` of the content beside it, and the same followed by `sync` (which flushes the whole
    machine's pending writes: on this shared machine, other processes' too)."""
    target = scratch / f"{content.name}.copy"
    plain, synced = [], []
    for _ in range(tries):
        plain.append(timed(["cp", "-r", str(content.path), str(target)]))
        remove(target)
        synced.append(timed(["sh", "-c", 'cp -r "$0" "$1" && sync', str(content.path), str(target)]))
        remove(target)
    return Copy(tuple(plain), tuple(synced))


def client(server: RunningServer, cache: Path, **spec: Any) -> ClientRun:
    """Runs one SDK operation (see `_transfer_client.py`) in a fresh process, its cache at `cache`."""
    request = json.dumps({**spec, "url": server.url, "project": PROJECT})
    env = {**server.env, "ARTREG_CACHE_DIR": str(cache)}
    settle()
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(CLIENT), request], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    process_seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"the transfer client failed on {spec}:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return ClientRun(report["seconds"], process_seconds, report["peak_kib"], report["import_peak_kib"], report)


def measure(server: RunningServer, content: Content, scratch: Path) -> Measured:
    """Log, log again, download with an empty cache and with the filled one, between copies of the
    same content (the baseline)."""
    print(f"transfers: {content.label} ...", file=sys.stderr, flush=True)
    copies_before = copy_times(content, scratch)
    cache = scratch / f"{content.name}.cache"
    unused_cache = scratch / "log.cache"  # logging never reads nor fills the cache
    log = client(server, unused_cache, op="log", name=content.name, source=str(content.path))
    relog = client(server, unused_cache, op="log", name=content.name, source=str(content.path))
    unchanged = client(server, unused_cache, op="log", name=content.name, source=str(content.path), if_changed=True)
    version = log.report["version"]
    cold_dest, warm_dest = scratch / f"{content.name}.cold", scratch / f"{content.name}.warm"
    try:
        cold = client(server, cache, op="download", name=content.name, version=version, dest=str(cold_dest))
        warm = client(server, cache, op="download", name=content.name, version=version, dest=str(warm_dest))
    finally:
        for path in (cold_dest, warm_dest, cache):
            remove(path)
    if (cold.report["downloaded"], warm.report["from_cache"]) != (content.files, content.files):
        raise RuntimeError(f"{content.label}: the cold download fetched, or the warm one found cached, not every file")
    copy = copies_before + copy_times(content, scratch)  # the load may shift while the SDK runs
    return Measured(content, copy, log, relog, unchanged, cold, warm)


def measure_once(server: RunningServer, content: Content, scratch: Path) -> Measured:
    """`measure`, then the source goes: the disk holds one large file at a time, besides its blob."""
    try:
        return measure(server, content, scratch)
    finally:
        remove(content.path)


def bare_import(tries: int = 3) -> BareImport:
    """The quickest of a few bare imports of the SDK (a shared machine only ever adds time)."""
    code = "import artreg.client; print(open('/proc/self/status').read())"
    runs = []
    for _ in range(tries):
        began = time.perf_counter()
        status = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - began
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        runs.append(BareImport(seconds, peak))
    return BareImport(min(r.seconds for r in runs), min(r.peak_kib for r in runs))


@dataclass(frozen=True)
class ServerProcess:
    first_answer: tuple[float, ...]  # seconds from the command to its first API answer, each try
    idle_rss_kib: int  # VmRSS 2 s after that answer (the largest of the tries)


def server_process(scratch: Path, tries: int = 3) -> ServerProcess:
    """Starts `artreg server` on fresh data `tries` times: how long until it answers an API request,
    and its resident memory once idle."""
    import http.client
    import socket

    from tests.support.server import ARTREG

    firsts, rss = [], 0
    for attempt in range(tries):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        data = scratch / f"server-process-{attempt}"
        began = time.perf_counter()
        process = subprocess.Popen(
            [ARTREG, "server", "--port", str(port), "--data", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", f"/v1/projects/{PROJECT}/artifacts")
                    answer = conn.getresponse()
                    answer.read()
                    conn.close()
                    if answer.status == 200:
                        break
                except OSError:
                    time.sleep(0.002)
            firsts.append(time.perf_counter() - began)
            time.sleep(2)
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss = max(rss, next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")))
        finally:
            process.terminate()
            process.wait(10)
    return ServerProcess(tuple(firsts), rss)


def server_section(measured: ServerProcess) -> str:
    first = statistics.median(measured.first_answer)
    rss_mib = measured.idle_rss_kib / 1024
    rows = [
        [
            "start to first API answer",
            f"{first:.2f} s (of {', '.join(f'{s:.2f}' for s in measured.first_answer)})",
            f"<= {FIRST_ANSWER_TARGET_S:g} s",
            verdict(first <= FIRST_ANSWER_TARGET_S),
        ],
        [
            "idle RSS after it",
            f"{rss_mib:.1f} MiB",
            f"<= {IDLE_RSS_TARGET_MIB} MiB",
            verdict(rss_mib <= IDLE_RSS_TARGET_MIB),
        ],
    ]
    return "\n".join(
        [
            "### (f) The server process",
            "",
            "`artreg server` started on a fresh data folder, until it answers `GET /v1/projects/bench/artifacts` "
            "(median of 3 starts), and its VmRSS 2 s later (the largest of the 3).",
            "",
            table(["figure", "measured", "target", "verdict"], rows),
        ]
    )


def same_device(*paths: Path) -> None:
    devices = {os.stat(path).st_dev for path in paths}
    if len(devices) != 1:
        raise RuntimeError(f"{', '.join(map(str, paths))} are not on one device: the copies would not compare")


# ---------------------------------------------------------------- figures


def secs(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds >= 0.1 else f"{seconds:.3f}"


def speed(baseline_seconds: float, seconds: float) -> str:
    """How fast, relative to the baseline: baseline time over measured time (above 1: faster)."""
    return f"{baseline_seconds / seconds:.2f}x"


def size_text(count: int) -> str:
    if count >= MiB:
        return f"{count / MiB:,.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:,.1f} KiB"
    return f"{count:,} B"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def transfer_rows(measured: Measured, rate: Callable[[Content, ClientRun], str]) -> list[list[object]]:
    rows: list[list[object]] = []
    copy = measured.copy
    for operation, run in (("log", measured.log), ("download, empty cache", measured.cold)):
        rows.append(
            [
                measured.content.label,
                operation,
                secs(run.seconds),
                rate(measured.content, run),
                run.requests_text(),
                secs(copy.seconds),
                speed(copy.seconds, run.seconds),
                secs(copy.synced_seconds),
                speed(copy.synced_seconds, run.seconds),
            ]
        )
    return rows


def large_files_section(results: list[Measured]) -> str:
    def rate(content: Content, run: ClientRun) -> str:
        return f"{content.size / MiB / run.seconds:,.0f}"

    rows: list[list[object]] = []
    for measured in results:
        rows += transfer_rows(measured, rate)
    headers = ["content", "operation", "seconds", "MiB/s", "requests", "cp s", "vs cp", "cp+sync s", "vs cp+sync"]
    target = results[0]
    achieved = target.copy.synced_seconds / target.log.seconds
    return "\n".join(
        [
            "### (a) One large file",
            "",
            "`log_artifact` of one file (a staging URL, then the file handed to the server as an open descriptor "
            'over its Unix socket, which copies it in the kernel and hashes its copy (a "handoff": no blob '
            "request), start, commit; the same over the 512 MiB multipart threshold, where the URL is for the "
            "socket only: a client on another machine would hash the file, then PUT its 64 MiB parts), "
            "and `use_artifact` + `download` of that version into an empty folder "
            'with an empty cache. "vs cp" is the speed relative to `cp` of the same file: cp seconds over '
            "artreg seconds, above 1 is faster.",
            "",
            table(headers, rows),
            "",
            f"Target: the {target.content.label} logs at >= {LOG_TARGET:.2f}x the speed of cp + sync: "
            f"{achieved:.2f}x, {verdict(achieved >= LOG_TARGET)}.",
        ]
    )


def small_files_section(results: list[Measured]) -> str:
    def rate(content: Content, run: ClientRun) -> str:
        return f"{content.files / run.seconds:,.0f}"

    rows: list[list[object]] = []
    for measured in results:
        rows += transfer_rows(measured, rate)
    headers = ["content", "operation", "seconds", "files/s", "requests", "cp -r s", "vs cp -r", "+sync s", "vs +sync"]
    target = results[0]
    achieved = target.content.files / target.log.seconds
    api_calls = target.log.report["api_requests"]
    return "\n".join(
        [
            "### (b) Many small files",
            "",
            "The same operations on a folder of 4 KiB files (in folders of 1,000), against `cp -r` of the folder. "
            "Manifests go in batches of 1,000 entries; every file is a blob of its own, and those up to 1 MiB "
            "travel in bundles of up to 250 blobs a request (a PUT on the way up, a GET on the way down).",
            "",
            table(headers, rows),
            "",
            f"Target: {target.content.label} logged at >= {FILES_PER_SECOND_TARGET:,} files/s with a handful "
            f"of API calls: {achieved:,.0f} files/s with {api_calls} API calls and "
            f"{target.log.report['blob_requests']:,} blob requests, {verdict(achieved >= FILES_PER_SECOND_TARGET)}.",
        ]
    )


def relog_section(results: list[Measured]) -> str:
    rows: list[list[object]] = []
    for measured, mode, run in (
        (m, mode, run) for m in results for mode, run in (("new version", m.relog), ("if_changed", m.unchanged))
    ):
        met = run.report["blob_bytes_sent"] == 0 and run.requests <= RELOG_REQUESTS_TARGET
        rows.append(
            [
                measured.content.label,
                mode,
                secs(run.seconds),
                secs(measured.log.seconds),
                speed(measured.log.seconds, run.seconds),
                size_text(run.report["blob_bytes_sent"]),
                size_text(run.report["api_bytes_sent"]),
                run.requests_text(),
                f"0 B, {RELOG_BASELINE_REQUESTS}",
                f"{run.requests / RELOG_BASELINE_REQUESTS:.0f}x",
                verdict(met),
            ]
        )
    headers = [
        "content",
        "logged as",
        "seconds",
        "first log s",
        "vs first log",
        "blob bytes sent",
        "API bytes sent",
        "requests",
        "baseline bytes, requests",
        "requests vs baseline",
        f"target (0 B, <= {RELOG_REQUESTS_TARGET} requests)",
    ]
    return "\n".join(
        [
            "### (c) Logging unchanged content again",
            "",
            "`log_artifact` of the same content right after the first log: as a new version (same digest), "
            "then with `if_changed` (the version there is answered). Requests and bytes are counted in the "
            "client at urllib3's connection pool. The baseline is what the content needs at least: no blob "
            "bytes, one request. A new version of more than 1,000 files takes a request per 1,000 (API.md's "
            "batches) and the commit; with `if_changed` the SDK first asks for `latest` and compares digests.",
            "",
            table(headers, rows),
        ]
    )


def warm_section(results: list[Measured]) -> str:
    rows: list[list[object]] = []
    for measured in results:
        cold, warm, copy = measured.cold, measured.warm, measured.copy
        rows.append(
            [
                measured.content.label,
                secs(cold.seconds),
                secs(warm.seconds),
                speed(cold.seconds, warm.seconds),
                secs(copy.seconds),
                speed(copy.seconds, warm.seconds),
                f"{size_text(cold.report['blob_bytes_received'])} / {size_text(warm.report['blob_bytes_received'])}",
                f"{cold.requests:,} / {warm.requests:,}",
            ]
        )
    headers = [
        "content",
        "cold s",
        "warm s",
        "warm vs cold",
        "cp s",
        "warm vs cp",
        "blob bytes fetched cold / warm",
        "requests cold / warm",
    ]
    return "\n".join(
        [
            "### (d) Downloading again with a warm cache",
            "",
            "The same version downloaded a second time into another empty folder, the SDK's cache filled by the "
            "first (cold) download: every file is a cache hit, re-hashed, then hard linked into place.",
            "",
            table(headers, rows),
        ]
    )


def memory_section(results: list[Measured], bare: BareImport) -> str:
    floor = bare.peak_kib
    rows: list[list[object]] = [
        ["-", '`python -c "import artreg.client"`', f"{floor / 1024:.1f}", "1.00x", "0.0", secs(bare.seconds)]
    ]
    for measured in results:
        for operation, run in (
            ("log", measured.log),
            ("log again", measured.relog),
            ("log again, if_changed", measured.unchanged),
            ("download, empty cache", measured.cold),
            ("download, warm cache", measured.warm),
        ):
            rows.append(
                [
                    measured.content.label,
                    operation,
                    f"{run.peak_kib / 1024:.1f}",
                    f"{run.peak_kib / floor:.2f}x",
                    f"{(run.peak_kib - run.import_peak_kib) / 1024:.1f}",
                    secs(run.process_seconds),
                ]
            )
    headers = ["content", "operation", "peak RSS MiB", "vs bare import", "MiB over its own import", "process s"]
    return "\n".join(
        [
            "### (e) Peak memory of the client process",
            "",
            "VmHWM of each client process at its end, against the bare import of the SDK. The client process "
            "imports a little more than the bare one (json, the counting hook); its own RSS once imported is "
            'taken before the call ("MiB over its own import"). "process s" is the whole process: interpreter '
            "start, imports and the call.",
            "",
            table(headers, rows),
        ]
    )


NOTES = """### What bounds each figure

- **The machine**: 2 cores shared with other jobs (see the load average above), and RAM enough for
  every file to stay in the page cache: a read is a memory copy and only a sync or fsync waits for the
  disk. Each SDK figure is one run; each `cp` figure is the median of 4, 2 timed before the SDK's
  operations and 2 after.
- **Logging a large file**: the server hashes every blob it stores (it trusts no writer's claim).
  SHA-256 of 256 MiB takes about 0.2 s on this CPU (with its SHA instructions), about what `cp` +
  `sync` takes in all. For a new file of 32 MiB or more the SDK asks for a staging URL; the server,
  on this machine, names its Unix socket in the answer, and the SDK hands it an open
  descriptor of the file (a "handoff", docs/api.md): the server copies it with copy_file_range in 8
  MiB steps while a second thread hashes its own copy right behind (both let the GIL go), fsyncs as
  for a PUT and stores the blob under that SHA-256; the SDK takes it for the file, its stat unchanged
  before and after, and hashes nothing; the upload then finds the blob stored. So the log is about an
  in-kernel copy and one hash overlapped, plus the requests (~0.3 s for 256 MiB on an idle machine).
  A client on another machine PUTs the file to the staging URL instead, hashing each MiB on another
  thread as it sends it, while the server hashes what it writes (docs/api.md, staged blobs): bound by
  the CPU of both processes (~0.3 CPU-s in the client, ~0.5 in the server, uvicorn's receive ~0.23 of
  it), about 0.4-0.5 s, up to the 512 MiB multipart threshold. Over it, the staging URL is offered
  for the socket only (no PUT takes more than the threshold), so the 1 GiB file is handed off too; a
  client on another machine hashes it first (a multipart upload is addressed by its SHA-256, so that
  a killed client's next log resumes it), then sends it in 64 MiB parts, a few at once, to one server
  process: uvicorn reads the socket on its event loop and a worker thread hashes each
  MiB as it writes it; parts are written in place, at their offset in one file, each
  fdatasync'd (a part's ETag is opaque: no MD5 of it), and the completion reads the file once to check
  its SHA-256 and renames it: no byte is copied. The disk writes of a body start every 8 MiB as it
  arrives (sync_file_range), so that the one syncfs that makes blobs durable before the commit that
  lists them finds little left to write. `cp` reads once and writes once, in the kernel. The first
  log of a run is also the server's first POST; the idempotency layer it needs (~0.25 s of imports)
  is loaded in the background once the server serves, long before (section (f) measures a start to a
  first GET, and the idle RSS with it loaded).
- **Downloading** streams each blob from the server process in 1 MiB chunks into a temporary file
  that the client hashes as it writes, then renames; nothing is fsynced, so plain `cp` is the fair
  baseline. The cache gets its own copy (a reflink where the file system has one), so that no write to
  a downloaded file reaches it.
- **Small files** cost per file, not per byte. Files up to 1 MiB travel in bundles (up to 250 blobs in
  one signed request each way), so the HTTP work (urllib3's on the client, uvicorn's and the URL's
  HMAC check on the server) is paid once a bundle; what is left per file is creating it, which the
  kernel of this machine makes cost ~250-700 us (a temporary file, then a rename into place, as for any
  blob): the server writes a bundle's blobs from 8 threads, the client a download's files from 16 (made
  durable with the others by one syncfs before the commit). The client sends or fetches
  `default_workers()` bundles at once. `cp -r` makes no request, and its `sync` writes the tree back at
  once.
- **Logging again** reads no file whose size, mtime, ctime, inode and device are those of the hash
  cache's entry (the SDK's hash cache), hashing only the others; the server only checks that each
  listed blob exists with its size. Each request lists at most 1,000 files, so a larger manifest takes
  one request per 1,000 files, plus the commit.
- **A warm download** re-hashes every cached file before copying it into place (a cache entry may have
  been damaged since): it reads the bytes once more than `cp`.
- **Memory**: bytes move in 1 MiB chunks and the file list, hashing and batches are streamed, so a
  client's peak stays flat with the number of files and their size."""


def run(options: Options) -> str:
    sizes_mib = [options.size(256, 8), options.size(1024, 8)]
    counts = [options.size(1000, 50), options.size(10_000, 100)]
    with tempfile.TemporaryDirectory(prefix="artreg-transfers-") as folder:
        scratch = Path(folder)
        sources = scratch / "sources"
        sources.mkdir()
        server = RunningServer(scratch / "server")
        server.start()
        try:
            same_device(sources, scratch / "server")
            large = [
                measure_once(server, large_file(sources, f"file-{i}", mib), scratch) for i, mib in enumerate(sizes_mib)
            ]
            small = [measure_once(server, small_files(sources, f"tree-{i}", n), scratch) for i, n in enumerate(counts)]
        finally:
            server.stop()
        process = server_process(scratch)
    bare = bare_import()
    everything = large + small
    return "\n\n".join(
        [
            large_files_section(large),
            small_files_section(small),
            relog_section(everything),
            warm_section(everything),
            memory_section(everything, bare),
            server_section(process),
            NOTES,
        ]
    )
