"""A connection pool for the SDK (`Transport(pool=...)`) that reaches moto's S3 in this process: the
SDK's urllib3 requests to presigned S3 URLs go through `requests`, which moto's mock intercepts (its
own sockets would go to the network); every other request (the API, on loopback) through urllib3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3


class _Answer:
    """What the SDK reads of a urllib3 answer."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.data = response.content
        self._response = response

    def stream(self, size: int) -> Iterator[bytes]:
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]

    def read(self) -> bytes:
        return self.data

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class MotoPool(urllib3.PoolManager):
    def __init__(self) -> None:
        super().__init__(num_pools=4, maxsize=10, block=False)

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if not (urlsplit(url).hostname or "").endswith(".amazonaws.com"):
            return super().request(method, url, body, *args, **kwargs)
        if body is not None and not isinstance(body, bytes | bytearray):
            body = b"".join(body)  # a streamed part, whole: moto reads a request's body at once
        headers = kwargs.get("headers") or {}
        response = requests.request(method, url, data=body, headers=headers, timeout=30)
        return _Answer(response)
