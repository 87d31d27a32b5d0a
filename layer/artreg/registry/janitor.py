"""The janitor's use cases, run on a schedule (the `janitor` Lambda, or `artreg janitor` on the local
store).

Expiring uploads: a pending upload past its `expires_at` can no longer be committed (the registry
checks the time on every request); the janitor marks it `expired` and aborts the multipart uploads it
started, so that their parts stop costing storage before the bucket's lifecycle rule would. Each run
handles at most `limit` uploads; what is left waits for the next run.

Reclaiming blobs, in two runs, so that a blob a version lists is never removed:

1. A run reads what is *listed*: the blobs of every pending upload first, then those of every live
   version (in that order: an upload that commits between the two reads is seen by one of them). A
   stored blob that nothing lists and that is older than the grace period is *condemned*: from then
   on it counts as missing to every upload, which sends its bytes again as a new copy.
2. A later run, at least `fence` after the condemnation, reads what is listed again and removes the
   condemned copy if it is still unlisted. An upload whose existence check came before the
   condemnation had written its upload record within one request's time (under 30 s, far under the
   fence), so that read sees it; one whose check came after was told to upload, and its new copy is
   not the condemned one.

Re-checking remote references: every pinned reference of a live version (an `s3://` object on AWS, a
`file://` one locally) is read again as it was at commit; one that reads otherwise is noted with a
`RemoteReferenceChanged` event, once per observation, however many runs see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from artreg.model.errors import NotFound, Retryable
from artreg.model.wire import FileEntry, RemoteEntry, RemoteSpec
from artreg.registry import manifests, paging
from artreg.registry.policy import SystemClock
from artreg.registry.ports import BlobStore, Clock, MetadataStore
from artreg.registry.records import RemoteChange, StoredVersion

E = TypeVar("E", FileEntry, RemoteEntry)
FENCE = timedelta(minutes=15)  # condemnation to removal: far above one request's 30 s
_PAGE = 1000


@dataclass(frozen=True)
class UploadSweep:
    expired: int  # uploads marked expired by this run
    aborted: int  # multipart uploads aborted by this run


@dataclass(frozen=True)
class BlobSweep:
    condemned: int = 0  # unlisted blobs past the grace period, marked by this run
    reclaimed: int = 0  # condemned blobs removed by this run
    reclaimed_bytes: int = 0


@dataclass(frozen=True)
class RemoteSweep:
    checked: int = 0  # pinned references read again
    changed: int = 0  # of those, reading otherwise than pinned (changed or vanished)
    noted: int = 0  # changes not seen by an earlier run: one event each


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

    def reclaim_blobs(self, grace: timedelta, upload_ttl: timedelta, fence: timedelta = FENCE) -> BlobSweep:
        """One pass over every project's blobs: condemns the unlisted ones past `grace`, and removes
        those condemned at least `fence` before this run began and still unlisted."""
        started = self.clock.now()
        condemned = reclaimed = reclaimed_bytes = 0
        for project in self.blobs.projects():
            for blob in self.blobs.unlisted_blobs(project, self._listed(project, started, upload_ttl)):
                if blob.condemned_at is None:
                    if blob.modified <= started - grace:
                        self.blobs.condemn(project, blob, started)
                        condemned += 1
                elif blob.condemned_at <= started - fence and self.blobs.reclaim(project, blob):
                    reclaimed += 1
                    reclaimed_bytes += blob.size
        return BlobSweep(condemned=condemned, reclaimed=reclaimed, reclaimed_bytes=reclaimed_bytes)

    def recheck_remote_refs(self) -> RemoteSweep:
        """Reads every pinned remote reference of every live version again."""
        now = self.clock.now()
        checked = changed = noted = 0
        for project in self.store.projects():
            for version in self._live_versions(project):
                for pinned in self._entries_of(version, RemoteEntry):
                    if not pinned.verified:
                        continue  # nothing was pinned to compare with
                    try:
                        change = self._remote_change(version, pinned, now)
                    except Retryable:
                        continue  # unreadable just now: not a change; the next run reads it again
                    checked += 1
                    if change is not None:
                        changed += 1
                        noted += self.store.note_remote_change(change)
        return RemoteSweep(checked=checked, changed=changed, noted=noted)

    def _remote_change(self, version: StoredVersion, pinned: RemoteEntry, now: datetime) -> RemoteChange | None:
        observed = self.blobs.pin_remote(RemoteSpec(uri=pinned.uri, path=pinned.path))
        if observed.verified and (observed.size, observed.etag, observed.version_id) == (
            pinned.size,
            pinned.etag,
            pinned.version_id,
        ):
            return None
        return RemoteChange(
            project=version.project,
            name=version.name,
            version=version.version,
            path=pinned.path,
            uri=pinned.uri,
            state="changed" if observed.verified else "vanished",
            pinned=pinned.model_copy(update={"metadata": {}}),
            observed=observed.model_copy(update={"metadata": {}}) if observed.verified else None,
            checked_at=now,
        )

    def _listed(self, project: str, now: datetime, upload_ttl: timedelta) -> set[str]:
        """The blobs pending uploads and live versions list; the uploads are read first (see above)."""
        listed = {
            entry.sha256
            for upload in self.store.pending_uploads(project, now, upload_ttl)
            for entry in upload.entries
            if isinstance(entry, FileEntry)
        }
        for version in self._live_versions(project):
            listed.update(entry.sha256 for entry in self._entries_of(version, FileEntry))
        return listed

    def _live_versions(self, project: str) -> Iterator[StoredVersion]:
        heads = paging.scan(lambda after, n: self.store.list_heads(project, after, n), lambda h: h.name, None, _PAGE)
        for head in heads:
            yield from (version for version in self._versions(project, head.name) if version.state != "deleted")

    def _versions(self, project: str, name: str) -> Iterator[StoredVersion]:
        return paging.scan(
            lambda before, n: self.store.list_versions(project, name, before, n), lambda v: v.sort_key, None, _PAGE
        )

    def _entries_of(self, version: StoredVersion, kind: type[E]) -> Iterator[E]:
        """The version's entries of one kind, from its record or, for a large manifest, its chunks."""
        return (e for e in manifests.entries(self.blobs, version) if isinstance(e, kind))
