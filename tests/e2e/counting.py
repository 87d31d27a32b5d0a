"""What an SDK client sends, counted on the client side: a `urllib3.PoolManager` that records every
request (method, URL) and the body bytes it carries, handed to the SDK through its public hooks
(`Transport(pool=...)`, `Registry(transport=...)`). Imported by the child processes of the large
tests too, so it stays free of pytest."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from artreg.client import Registry, RetryPolicy
from artreg.client.http import Transport


@dataclass(frozen=True)
class Sent:
    method: str
    path: str  # the URL's path, no query

    @property
    def is_blob(self) -> bool:
        """A transfer to or from the blob store (a presigned URL), not an API call."""
        return self.path.startswith("/blobs/")

    @property
    def is_part(self) -> bool:
        return self.is_blob and "/parts/" in self.path


class CountingPool(urllib3.PoolManager):
    """A PoolManager as the SDK makes its own, that counts what goes through it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"num_pools": 16, "maxsize": 10, "block": False, **kwargs})
        self._lock = threading.Lock()
        self.sent: list[Sent] = []
        self.api_bytes = 0
        self.blob_bytes = 0

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        sent = Sent(method, urlsplit(url).path)
        with self._lock:
            self.sent.append(sent)
        if isinstance(body, bytes | bytearray):
            self._add(sent, len(body))
        elif body is not None:
            body = self._counted(sent, body)
        return super().request(method, url, body, *args, **kwargs)

    def _add(self, sent: Sent, n: int) -> None:
        with self._lock:
            if sent.is_blob:
                self.blob_bytes += n
            else:
                self.api_bytes += n

    def _counted(self, sent: Sent, body: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in body:
            self._add(sent, len(chunk))
            yield chunk

    # ------------------------------------------------------------ what a test reads

    @property
    def api_calls(self) -> list[Sent]:
        return [s for s in self.sent if not s.is_blob]

    @property
    def blob_calls(self) -> list[Sent]:
        return [s for s in self.sent if s.is_blob]

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()
            self.api_bytes = self.blob_bytes = 0

    def summary(self) -> dict[str, int]:
        return {
            "requests": len(self.sent),
            "api_calls": len(self.api_calls),
            "blob_requests": len(self.blob_calls),
            "part_puts": sum(1 for s in self.sent if s.is_part and s.method == "PUT"),
            "completions": sum(1 for s in self.api_calls if s.path.endswith("/complete")),
            "blob_bytes_sent": self.blob_bytes,
        }


def counted_registry(
    url: str,
    cache_dir: str | os.PathLike[str],
    *,
    project: str = "vision",
    retry: RetryPolicy | None = None,
) -> tuple[Registry, CountingPool]:
    """A `Registry` as a user makes one, whose every request goes through a `CountingPool`."""
    pool = CountingPool()
    transport = Transport(url, retry=retry, pool=pool)
    return Registry(url, project=project, progress=False, cache_dir=cache_dir, transport=transport), pool
