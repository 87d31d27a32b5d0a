"""What a client does with the URLs of a `FolderBlobStore`, without a server: each PUT or GET goes
through the same URL check and the same receiving code that the local server uses."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlsplit

from artreg.local.blobs import FolderBlobStore
from artreg.model.wire import MissingBlob, Part


def put_blob(store: FolderBlobStore, target: MissingBlob, data: bytes) -> None:
    """PUTs `data` to the target's URL, or each of its parts to the part URLs (completing a multipart
    upload is the registry's `complete_blob`, with `parts_of(target, data)`)."""
    if target.url is not None:
        _put(store, target.url, data)
        return
    assert target.multipart is not None, "a missing blob has a URL or a multipart upload"
    size = target.multipart.part_size
    for part in target.multipart.parts:
        _put(store, part.url, data[(part.part_number - 1) * size : part.part_number * size])


def fetch(store: FolderBlobStore, url: str) -> bytes:
    """The bytes a client GETs from a download URL, checked as the server checks the request."""
    split = urlsplit(url)
    request = store.verify_url("GET", split.path, split.query)
    with store.open_blob(request.project, request.sha256) as blob:
        return blob.read()


def parts_of(target: MissingBlob, data: bytes) -> list[Part]:
    """The parts list a client sends to complete the multipart upload of `data`: the ETag of each
    part is the one the server answers its PUT with, the quoted MD5 of its bytes."""
    assert target.multipart is not None, "only a multipart upload has parts"
    size = target.multipart.part_size
    return [
        Part(
            part_number=p.part_number,
            etag=f'"{_md5(data[(p.part_number - 1) * size : p.part_number * size])}"',
        )
        for p in target.multipart.parts
    ]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _put(store: FolderBlobStore, url: str, body: bytes) -> str:
    split = urlsplit(url)
    request = store.verify_url("PUT", split.path, split.query)
    return store.receive(request, io.BytesIO(body), len(body))
