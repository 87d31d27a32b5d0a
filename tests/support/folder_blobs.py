"""What a client does with the URLs of a `FolderBlobStore`, without a server: each PUT or GET goes
through the same URL check and the same receiving code that the local server uses."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from artreg.local.blob_files import part_etag
from artreg.local.blobs import FolderBlobStore
from artreg.model.wire import MissingBlob, Part


def put_blob(store: FolderBlobStore, target: MissingBlob, data: bytes) -> None:
    """PUTs `data` to the target's URL, or each of its parts to the part URLs (completing a multipart
    upload is the registry's `complete_blob`, with `parts_of(target)`)."""
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


def parts_of(target: MissingBlob) -> list[Part]:
    """The parts list a client sends to complete the multipart upload of the target: the ETag of each
    part is the one the server answers its PUT with (opaque: `blob_files.part_etag`)."""
    assert target.multipart is not None, "only a multipart upload has parts"
    upload = target.multipart.upload_id
    numbers = [p.part_number for p in target.multipart.parts]
    return [Part(part_number=n, etag=f'"{part_etag(upload, n)}"') for n in numbers]


def _put(store: FolderBlobStore, url: str, body: bytes) -> str:
    split = urlsplit(url)
    request = store.verify_url("PUT", split.path, split.query)
    return store.receive(request, io.BytesIO(body), len(body))
