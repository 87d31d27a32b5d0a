"""A job as a user runs one, for the many-files benchmark and test: `python -m tests.support.files_job
ACTION URL PATH CACHE_DIR` logs the folder PATH as the artifact `files` (`log`, or `relog` with
`if_changed`), downloads its latest version into PATH (`download`), or only imports (`idle`), then
prints one JSON line: what it did, its duration, the requests it made and its own peak RSS.

The requests are counted by a pool that keeps counters only (no record per request, which would
grow with the files), sized as the SDK sizes its own. The peak is VmHWM, the high-water mark of the
process's own memory: ru_maxrss also carries the RSS of the parent that forked it."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from artreg.client import Artifact, Registry
from artreg.client.http import Transport
from artreg.client.settings import load_settings

NAME = "files"
REPO = Path(__file__).resolve().parents[2]


def run(action: str, url: str, path: Path, cache: Path, *, timeout: float) -> dict[str, Any]:
    """Runs the job in a process of its own (so that its peak RSS is its own) and answers its JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.files_job", action, url, str(path), str(cache)],
        cwd=REPO,
        env={**os.environ, "ARTREG_PROGRESS": "0"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {action} job failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class CountingPool(urllib3.PoolManager):
    def __init__(self, maxsize: int) -> None:
        super().__init__(num_pools=16, maxsize=maxsize, block=False)
        self._lock = threading.Lock()
        self.api_calls = 0
        self.blob_requests = 0
        self.blob_bytes_sent = 0
        self.api_bytes_sent = 0  # request bodies of API calls: a manifest offered, or only its changes

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        blob = urlsplit(url).path.startswith("/blobs/")
        with self._lock:
            if blob:
                self.blob_requests += 1
            else:
                self.api_calls += 1
        if blob and body is not None and not isinstance(body, bytes | bytearray):
            body = self._counted(body)
        elif blob and body is not None:
            self._add(len(body))
        elif isinstance(body, bytes | bytearray):
            with self._lock:
                self.api_bytes_sent += len(body)
        return super().request(method, url, body, *args, **kwargs)

    def _add(self, n: int) -> None:
        with self._lock:
            self.blob_bytes_sent += n

    def _counted(self, body: Any) -> Any:
        for chunk in body:
            self._add(len(chunk))
            yield chunk


def own_peak_rss_kib() -> int:
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(action: str, url: str, path: str, cache: str) -> dict[str, Any]:
    settings = load_settings(url=url, project="vision", progress=False, cache_dir=cache)
    workers = settings.workers or 0
    pool = CountingPool(maxsize=max(10, workers))
    reg = Registry(settings=settings, transport=Transport(url, pool=pool))
    started = time.monotonic()
    cpu = time.process_time()
    outcome: dict[str, Any] = {"action": action}
    if action in ("log", "relog"):
        logged = reg.log_artifact(Artifact(NAME, type="dataset").add(path), if_changed=action == "relog")
        outcome.update(version=logged.version, created=logged.created, files=logged.file_count)
    elif action == "download":
        result = reg.download(NAME, "latest", path)
        outcome.update(version=result.version, downloaded=result.downloaded, from_cache=result.from_cache)
        outcome.update(bytes_fetched=result.bytes)
    outcome["seconds"] = round(time.monotonic() - started, 3)
    outcome["cpu_seconds"] = round(time.process_time() - cpu, 3)  # this process's, all threads
    outcome.update(api_calls=pool.api_calls, blob_requests=pool.blob_requests, blob_bytes_sent=pool.blob_bytes_sent)
    outcome["api_bytes_sent"] = pool.api_bytes_sent
    outcome["requests"] = pool.api_calls + pool.blob_requests
    outcome["peak_rss_mib"] = round(own_peak_rss_kib() / 1024, 1)
    reg.close()
    return outcome


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
