"""One client operation of the `transfers` benchmark, alone in a fresh process so that its peak RSS
(VmHWM) is its own: `python benchmarks/_transfer_client.py '<json>'` logs a file or folder, or
downloads a version, through the SDK and prints one JSON line of what it took.

It is run by path, not as `-m benchmarks._transfer_client`, so that the `benchmarks` package stays
out of the process it measures. Requests and bytes are counted at urllib3's connection pool, which
every request of the SDK goes through (one call per attempt and per redirect hop), without touching
the SDK's code; a file handed off to the server over its Unix socket is counted apart (`handoffs`).

    {"op": "log", "url": ..., "project": ..., "name": ..., "source": "/path", "if_changed": false}
    {"op": "download", "url": ..., "project": ..., "name": ..., "version": "1.0.0", "dest": "/path"}
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3.connectionpool

from artreg.client import Artifact, Registry

RUN_ID = "transfers-benchmark"


def peak_rss_kib() -> int:
    """VmHWM: the most resident memory this process has held so far, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


class Wire:
    """Counts the requests the SDK makes and the bytes of their bodies both ways, split into API
    calls and blob transfers (the local server's blob URLs are under /blobs/, S3's stand-in)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = {"api_requests": 0, "blob_requests": 0, "api_bytes_sent": 0, "blob_bytes_sent": 0}
        self.counts |= {"api_bytes_received": 0, "blob_bytes_received": 0, "handoffs": 0}

    def install(self) -> None:
        original = urllib3.connectionpool.HTTPConnectionPool.urlopen
        wire = self

        def counted(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            kind = wire.sent(url, kwargs.get("body"), kwargs.get("headers") or {})
            response = original(pool, method, url, *args, **kwargs)
            wire.received(kind, int(response.headers.get("content-length") or 0))
            return response

        urllib3.connectionpool.HTTPConnectionPool.urlopen = counted  # type: ignore[method-assign,assignment]
        # a file handed to a server on this machine as a descriptor (artreg.client.handoff): no HTTP request
        from artreg.client import handoff

        hand_off = handoff.hand_off

        def counted_hand_off(*args: Any, **kwargs: Any) -> str:
            with wire._lock:
                wire.counts["handoffs"] += 1
            return hand_off(*args, **kwargs)

        handoff.hand_off = counted_hand_off

    def sent(self, url: str, body: Any, headers: Any) -> str:
        """Counts a request (every attempt, even one that fails) and its body; answers its kind."""
        kind = "blob" if urlsplit(url).path.startswith("/blobs/") else "api"
        size = len(body) if isinstance(body, bytes | bytearray) else int(_header(headers, "content-length") or 0)
        with self._lock:
            self.counts[f"{kind}_requests"] += 1
            self.counts[f"{kind}_bytes_sent"] += size
        return kind

    def received(self, kind: str, size: int) -> None:
        with self._lock:
            self.counts[f"{kind}_bytes_received"] += size


def _header(headers: Any, name: str) -> str | None:
    return next((value for key, value in dict(headers).items() if key.lower() == name), None)


def log(registry: Registry, spec: dict[str, Any]) -> dict[str, Any]:
    artifact = Artifact(spec["name"], type="dataset").add(spec["source"])
    logged = registry.log_artifact(artifact, if_changed=spec.get("if_changed", False))
    return {"version": logged.version, "files": logged.file_count}


def download(registry: Registry, spec: dict[str, Any]) -> dict[str, Any]:
    """As a training job reads its input: resolve and record the use, then download."""
    used = registry.use_artifact(spec["name"], spec["version"], run_id=RUN_ID)
    result = used.download(spec["dest"])
    return {"downloaded": result.downloaded, "from_cache": result.from_cache, "bytes": result.bytes}


def main(spec: dict[str, Any]) -> dict[str, Any]:
    import_peak = peak_rss_kib()
    wire = Wire()
    wire.install()
    registry = Registry(spec["url"], project=spec["project"], progress=False)
    operation = {"log": log, "download": download}[spec["op"]]
    began = time.perf_counter()
    answer = operation(registry, spec)
    seconds = time.perf_counter() - began
    registry.close()
    return {"seconds": seconds, "peak_kib": peak_rss_kib(), "import_peak_kib": import_peak, **wire.counts, **answer}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
