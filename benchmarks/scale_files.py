"""scale-files: a dataset of many small files (64 bytes each, in 100 folders) through `artreg server`
(a subprocess, SQLite) with the SDK, each step a child process that reports its own peak RSS (VmHWM)
and the requests it made (tests/support/files_job.py):

1. log the folder as a new artifact (every blob new);
2. log it again unchanged with `if_changed` (the hash cache answers every file's SHA-256);
3. change one file and log it with `if_changed`: a new version, one file's bytes sent; over one
   request of files, as an upload from `latest` (whose manifest the SDK's cache kept when it logged
   it), so that the request bodies hold the change, not the manifest;
4. download the latest version into an empty folder with an empty cache.

The files are left 2 s before the first log, as a dataset is before it is logged: the hash cache
keeps no file modified within 2 s of its reading (see artreg.client.hashcache). Run at two sizes,
the client's peak RSS must stay the same (flat memory); the server's is read from /proc."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Options, table
from tests.support import files_job
from tests.support.server import RunningServer

TITLE = "Many small files: log, unchanged re-log, one changed, download"
FOLDERS = 100
REPO = Path(__file__).resolve().parents[1]


def make_files(root: Path, count: int) -> None:
    """`count` files of 64 bytes of distinct content in `FOLDERS` folders."""
    for folder in range(FOLDERS):
        (root / f"d{folder:03d}").mkdir(parents=True)
    for i in range(count):
        (root / f"d{i % FOLDERS:03d}" / f"f{i:07d}.bin").write_bytes(f"file {i}".ljust(64).encode())


def job(action: str, url: str, path: Path, cache: Path) -> dict[str, Any]:
    return files_job.run(action, url, path, cache, timeout=3600)


def server_peak_rss_mib(server: RunningServer) -> float:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        return round(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024, 1)


def one_size(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="artreg-bench-files-") as tmp:
        root = Path(tmp)
        data, cache = root / "dataset", root / "cache"
        make_files(data, count)
        time.sleep(2.1)
        server = RunningServer(root / "server")
        server.start()
        try:
            idle = job("idle", server.url, data, cache)
            logged = job("log", server.url, data, cache)
            relogged = job("relog", server.url, data, cache)
            changed = data / "d000" / "f0000000.bin"
            changed.write_bytes(b"changed".ljust(80))
            one = job("relog", server.url, data, cache)
            downloaded = job("download", server.url, root / "out", root / "empty-cache")
            server_rss = server_peak_rss_mib(server)
        finally:
            server.stop()
    assert (logged["files"], relogged["created"], one["created"]) == (count, False, True), (logged, relogged, one)
    assert downloaded["downloaded"] == count, downloaded
    return {
        "count": count,
        "idle": idle,
        "log": logged,
        "relog": relogged,
        "one": one,
        "download": downloaded,
        "server_rss": server_rss,
    }


def run(options: Options) -> str:
    # --quick (the suite's smoke test) takes every step at 1,000 files: the figures are the full run's
    sizes = [1_000] if options.quick else sorted({options.size(10_000, 10_000), options.size(100_000, 10_000)})
    results = [one_size(count) for count in sizes]
    rows = []
    for r in results:
        n = r["count"]
        rows.append(
            [
                f"{n:,}",
                f"{r['idle']['peak_rss_mib']}",
                f"{r['log']['seconds']} s, {n / r['log']['seconds']:,.0f} files/s, {r['log']['peak_rss_mib']} MiB",
                f"{r['relog']['seconds']} s, {r['relog']['requests']} req, {r['relog']['peak_rss_mib']} MiB",
                f"{r['one']['seconds']} s, {r['one']['blob_bytes_sent']} B of files + {r['one']['api_bytes_sent']:,} B"
                f" of requests, {r['one']['requests']} req ({r['one']['api_calls']} API)",
                f"{r['download']['seconds']} s, {n / r['download']['seconds']:,.0f} files/s,"
                f" {r['download']['peak_rss_mib']} MiB",
                f"{r['server_rss']}",
                f"{r['log']['cpu_seconds'] * 1e6 / n:,.0f} / {r['download']['cpu_seconds'] * 1e6 / n:,.0f}",
            ]
        )
    headers = [
        "files",
        "client RSS idle (MiB)",
        "log new",
        "re-log unchanged (if_changed)",
        "one file changed",
        "download, empty cache",
        "server peak RSS (MiB)",
        "client CPU µs/file (log / download)",
    ]
    notes = (
        "RSS: the client process's peak (VmHWM); CPU: the client process's, all threads (what is left of"
        " a file's time is the server's); the changed file is 80 bytes. Over 1,000 files the change goes as an"
        " upload from `latest` (GET latest, the upload, the file's PUT, the commit); at 1,000 (--quick) the"
        " manifest fits one request, which is sent whole.\n"
    )
    return table(headers, rows) + "\n\n" + notes
