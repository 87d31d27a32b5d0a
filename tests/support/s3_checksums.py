"""What S3 does with SHA-256 checksums and moto does not (moto 5 stores none that a presigned PUT
sends, and refuses no bytes), added to moto's S3 responses as S3's documentation describes it:

- a PUT of an object or of a part that carries `x-amz-checksum-sha256` is refused (`400 BadDigest`)
  when its bytes have another SHA-256, and nothing is stored;
- an object stored by such a PUT keeps the checksum, and HEAD / GET with `ChecksumMode=ENABLED`
  answer it as `ChecksumSHA256` (moto already answers nothing for a multipart object created
  without a checksum algorithm, as S3 answers no SHA-256 for it).

https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity-upload.html
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.s3.exceptions import S3ClientError
from moto.s3.responses import S3Response

_HEADER = "x-amz-checksum-sha256"


class BadDigest(S3ClientError):
    code = 400

    def __init__(self) -> None:
        super().__init__("BadDigest", "The SHA256 you specified did not match the calculated checksum.")


@contextmanager
def s3_checks_sha256() -> Iterator[None]:
    put = S3Response._key_response_put
    get_checksum = S3Response._get_checksum

    def checked_put(self: S3Response, query: dict[str, Any], key_name: str) -> Any:
        claimed = self.headers.get(_HEADER)
        if claimed is not None and "x-amz-copy-source" not in self.headers:
            body = self.body if isinstance(self.body, bytes) else bytes(self.body or b"")
            if base64.b64encode(hashlib.sha256(body).digest()).decode() != claimed:
                raise BadDigest()
        return put(self, query, key_name)

    def stored_checksum(self: S3Response, response_headers: dict[str, Any]) -> tuple[str, str | None]:
        if not self.headers.get("x-amz-sdk-checksum-algorithm") and self.headers.get(_HEADER):
            response_headers[_HEADER] = self.headers[_HEADER]
            return "SHA256", self.headers[_HEADER]
        return get_checksum(self, response_headers)  # type: ignore[no-any-return]

    with (
        mock.patch.object(S3Response, "_key_response_put", checked_put),
        mock.patch.object(S3Response, "_get_checksum", stored_checksum),
    ):
        yield
