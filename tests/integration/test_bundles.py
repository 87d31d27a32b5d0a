"""Which back end offers bundles (many small blobs in one request): the local folder store does, in an
upload's answer and a download page; S3 takes one object a request and offers none, so its answers are
exactly API.md's. Either way every missing blob and every file keeps its own URL."""

from __future__ import annotations

import hashlib

from artreg.model.wire import AddFiles, FileEntry, StartUpload, UploadStarted
from tests.conftest import Backend

P, N = "vision", "shards"
CONTENTS = {f"s/{i}.bin": f"shard {i}".encode() for i in range(4)}


def entries(contents: dict[str, bytes]) -> list[FileEntry]:
    return [FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for p, d in contents.items()]


def test_only_the_folder_store_offers_bundles_and_every_blob_keeps_its_own_url(backend: Backend) -> None:
    # Given an upload of four small new files, then a batch of two more
    started = backend.registry.start_upload(P, N, StartUpload(files=entries(CONTENTS)))
    assert isinstance(started, UploadStarted)
    more = {f"t/{i}.bin": f"more {i}".encode() for i in range(2)}
    added = backend.registry.add_files(P, N, started.upload_id, AddFiles(files=entries(more)))
    # When the blobs are PUT each to its own URL, committed, and a download page is asked for
    for data in CONTENTS.values():
        target = next(m for m in started.missing if m.sha256 == hashlib.sha256(data).hexdigest())
        backend.put_blob(target, data)
    for data in more.values():
        target = next(m for m in added.missing if m.sha256 == hashlib.sha256(data).hexdigest())
        backend.put_blob(target, data)
    backend.registry.commit(P, N, started.upload_id)
    page = backend.registry.download(P, N, "latest")
    # Then every missing blob and every file had a URL of its own, on both back ends
    assert all(m.url for m in [*started.missing, *added.missing])
    assert all(f.url for f in page.files)
    # And bundles of them were offered by the folder store only
    offered = [sorted(b.blobs) for b in (*started.bundles, *added.bundles, *page.bundles)]
    if backend.name == "aws":
        assert offered == []
    else:
        shas = sorted(e.sha256 for e in entries(CONTENTS))
        all_shas = sorted(e.sha256 for e in entries({**CONTENTS, **more}))
        assert offered == [shas, sorted(e.sha256 for e in entries(more)), all_shas]
