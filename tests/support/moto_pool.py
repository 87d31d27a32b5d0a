"""A connection pool for the SDK (`Transport(pool=...)`) that reaches moto's S3 in this process: the
SDK's urllib3 requests to presigned S3 URLs go through `requests`, which moto's mock intercepts (its
own sockets would go to the network); every other request (the API, on loopback) through urllib3."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from tests.support.urllib3_answer import Urllib3Answer


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
        return Urllib3Answer(response.status_code, response.content, response.headers)
