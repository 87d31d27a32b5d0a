"""The janitor's use cases, run on a schedule (the `janitor` Lambda, or by hand on the local store).

Expiring uploads: a pending upload past its `expires_at` can no longer be committed (the registry
checks the time on every request); the janitor marks it `expired` and aborts the multipart uploads it
started, so that their parts stop costing storage before the bucket's lifecycle rule would. Each run
handles at most `limit` uploads; what is left waits for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from artreg.model.errors import NotFound
from artreg.registry.ports import BlobStore, Clock, MetadataStore
from artreg.registry.service import SystemClock


@dataclass(frozen=True)
class UploadSweep:
    expired: int  # uploads marked expired by this run
    aborted: int  # multipart uploads aborted by this run


class Janitor:
    def __init__(self, store: MetadataStore, blobs: BlobStore, clock: Clock | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock or SystemClock()

    def expire_uploads(self, limit: int = 500) -> UploadSweep:
        expired = aborted = 0
        for upload in self.store.expired_uploads(self.clock.now(), limit):
            # mark first: once expired, no request can complete one of its blobs again
            if not self.store.expire_upload(upload.project, upload.upload_id):
                continue  # committed meanwhile (just before its expiry): its blobs are a version's now
            expired += 1
            for sha256, multipart_id in sorted(upload.multipart.items()):
                try:
                    self.blobs.abort_multipart(upload.project, sha256, multipart_id)
                except NotFound:
                    continue  # completed or aborted already
                aborted += 1
        return UploadSweep(expired=expired, aborted=aborted)
