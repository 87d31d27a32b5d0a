"""What the registry needs of the outside world. The AWS adapters (DynamoDB, S3) and the local
ones (SQLite, a folder) implement these; the registry's use cases are written against them only.
The records that cross them are in `records`."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from artreg.model.manifest import Entry
from artreg.model.wire import (
    AliasMove,
    Bundle,
    MissingBlob,
    Part,
    RemoteEntry,
    RemoteSpec,
    StagingTarget,
    UsageRecord,
)
from artreg.registry.keys import MovePosition
from artreg.registry.records import (
    ArtifactChange,
    EdgeKind,
    Head,
    LineageEdge,
    RemoteChange,
    RunSeen,
    StoredBlob,
    StoredLink,
    StoredVersion,
    StoreLimits,
    UnsettledBlob,
    Upload,
)

# ---------------------------------------------------------------- what a store raises


class HeadMoved(Exception):
    """The head was not at the expected revision; carries the head as it is now (None if gone)."""

    def __init__(self, current: Head | None):
        super().__init__("artifact head moved")
        self.current = current


class VersionTaken(Exception):
    """The version to create exists already."""


class UploadNotPending(Exception):
    """The upload to commit is no longer pending (committed by a concurrent request)."""


class TargetGone(Exception):
    """A link's target is not a committed version (deleted meanwhile, or never there)."""

    def __init__(self, link: StoredLink):
        super().__init__(f"{link.target.name}@{link.target.version} is not a committed version")
        self.link = link


class CheckpointMoved(Exception):
    """The janitor's checkpoint was saved by another run since it was read."""


# ---------------------------------------------------------------- ports


class MetadataStore(Protocol):
    limits: StoreLimits  # what the store can hold: the registry refuses more before writing anything

    def projects(self) -> Iterator[str]:
        """Every project that has held an artifact."""
        ...

    def list_projects(self, after: str | None, limit: int) -> list[str]:
        """Up to `limit` of those projects, in name order, after `after`: one Query or one SELECT."""
        ...

    def get_head(self, project: str, name: str) -> Head | None: ...
    def list_heads(self, project: str, after_name: str | None, limit: int) -> list[Head]: ...
    def get_version(self, project: str, name: str, version: str) -> StoredVersion | None: ...
    def get_alias(self, project: str, name: str, alias: str) -> StoredVersion | None: ...
    def list_versions(self, project: str, name: str, before_key: str | None, limit: int) -> list[StoredVersion]:
        """Versions (deleted ones too) in descending precedence, starting below `before_key`."""
        ...

    def apply(self, change: ArtifactChange) -> None:
        """All of `change` or nothing; raises HeadMoved, VersionTaken, UploadNotPending or TargetGone."""
        ...

    def get_link(self, project: str, name: str, version: str, role: str) -> StoredLink | None: ...
    def list_links(self, project: str, name: str, version: str, after_role: str | None, limit: int) -> list[StoredLink]:
        """A version's links in role order, after `after_role`."""
        ...

    def linked_by(
        self, project: str, name: str, version: str, after: str | None, limit: int
    ) -> tuple[list[StoredLink], str | None]:
        """The links whose target is this version, by holder name, precedence and role, from after the
        position `after`; the position of the last one when more follow."""
        ...

    def alias_history(
        self, project: str, name: str, alias: str, before: MovePosition | None, limit: int
    ) -> tuple[list[AliasMove], MovePosition | None]:
        """Moves newest first, from below `before`; the position of the last one when more follow."""
        ...

    def alias_at(self, project: str, name: str, alias: str, at: datetime) -> AliasMove | None: ...

    def create_upload(self, upload: Upload) -> None: ...
    def add_upload_batch(
        self,
        project: str,
        upload_id: str,
        batch_id: str,
        entries: Sequence[Entry],
        missing: Sequence[str],
        multipart: dict[str, str],
    ) -> None:
        """Adds a batch to a pending upload, or replaces the batch of the same id (a client's retry);
        raises UploadNotPending if the upload is not pending."""
        ...

    def get_upload(self, project: str, upload_id: str, with_entries: bool = True) -> Upload | None:
        """The upload with the entries, missing blobs and multipart ids of all its batches (or,
        without entries, with no entries and the missing blobs and multipart ids of its first request
        only: enough to check its state, as each further batch does)."""
        ...

    def get_upload_parts(self, project: str, upload_id: str) -> tuple[Upload, list[Callable[[], list[Entry]]]] | None:
        """The upload with the missing blobs and multipart ids of all its batches but none of their
        entries, and a reader of each request's entries (its first, then each batch) that decodes them
        only when called: a commit holds one batch's entries at a time, not the whole manifest."""
        ...

    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        """Up to `limit` uploads still pending whose `expires_at` is not after `now`, with their
        multipart ids (oldest first, as far as the store keeps an order)."""
        ...

    def expire_upload(self, project: str, upload_id: str) -> bool:
        """Marks a pending upload expired; False if it was not pending any more (committed meanwhile)."""
        ...

    def pending_uploads(
        self, project: str, now: datetime, upload_ttl: timedelta, expiring_from: datetime | None = None
    ) -> Iterator[Upload]:
        """Every upload of `project` still pending (expired ones the janitor has not marked yet too),
        with the entries of all its batches; read strongly consistent. With `expiring_from`, only those
        whose `expires_at` is not before it (a store may answer a few more): what the janitor reads again
        to see the uploads begun since its last read (`janitor._BlobStep._pending`)."""
        ...

    def note_remote_change(self, change: RemoteChange) -> bool:
        """Records what a remote reference was last seen as, and its `RemoteReferenceChanged` event,
        unless that same observation is recorded already; True if it was new."""
        ...

    # The janitor's checkpoints and the mark sets its walks gather over several runs (registry.janitor).
    def get_checkpoint(self, name: str) -> tuple[str, int] | None:
        """The checkpoint `name` (the janitor's JSON) and its revision; None if never saved."""
        ...

    def save_checkpoint(self, name: str, state: str, revision: int) -> None:
        """Saves the checkpoint as revision `revision` + 1 if it is still at `revision` (0: never saved);
        raises CheckpointMoved if not."""
        ...

    def put_mark_chunk(self, name: str, index: int, digests: bytes) -> None:
        """Stores (or replaces) chunk `index` of mark set `name`: sorted 32-byte digests, at most 256 KiB."""
        ...

    def mark_chunks(self, name: str, count: int) -> list[bytes]:
        """Chunks 0 to `count` - 1 of mark set `name` (a later chunk, left by a killed run, is not read)."""
        ...

    def put_usage(self, usage: UsageRecord) -> None: ...

    def put_edge(self, edge: LineageEdge) -> bool:
        """Records a lineage edge unless it is recorded already (the first one stays), and counts a new one
        in its run's summary in the same write (`RunSeen.seeing`); True if it was new."""
        ...

    def list_runs(self, project: str, before: str | None, limit: int) -> tuple[list[RunSeen], str | None]:
        """A project's runs, most recently seen first (by `keys.run_seen_position`), from below `before`;
        the position of the last one when more follow."""
        ...

    def run_edges(
        self, project: str, run_id: str, kind: EdgeKind | None, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        """A run's edges (of one kind, or both), by version name and precedence, from after the position
        `after`; the position of the last one when more follow."""
        ...

    def version_edges(
        self, project: str, name: str, version: str, kind: EdgeKind, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        """The edges of one kind that end at a version (the runs that produced it, or used it), by run id."""
        ...


class BlobStore(Protocol):
    def find_missing(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """The (sha256, size) pairs that are not stored with that size."""
        ...

    def upload_targets(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[MissingBlob]:
        """Where and how to PUT each blob: a presigned URL binding its checksum, or a multipart upload."""
        ...

    def url_count(self, size: int) -> int:
        """The presigned URLs `upload_targets` answers for a blob of this size (one, or one a part)."""
        ...

    def upload_bundles(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[Bundle]:
        """PUT URLs each taking several of these missing blobs' bytes in one request, besides their own
        URLs; none from a store that takes one blob a request (S3)."""
        ...

    def staging_targets(self, project: str, sizes: Sequence[int]) -> list[StagingTarget]:
        """For each size, a PUT URL taking a file's bytes before their SHA-256 is known (the store computes
        it, stores the blob under it and answers it), or none (`url` null): S3 offers none."""
        ...

    def download_bundles(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[Bundle]:
        """GET URLs each answering several of these stored blobs' bytes in one request, besides their
        own URLs; none from a store that answers one blob a request (S3)."""
        ...

    def complete_multipart(self, project: str, sha256: str, multipart_id: str, parts: Sequence[Part]) -> bool:
        """Stores the blob from its parts; True if its bytes are known to be the blob now, False if the
        store completed it and verifies it later (`verify` says `verifying_since` meanwhile)."""
        ...

    def verify(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[UnsettledBlob]:
        """The blobs that are not stored trusted with that size and SHA-256, and which of them are
        being verified (since when); `verifying.check_stored` decides what that means for a commit."""
        ...

    def abort_multipart(self, project: str, sha256: str, multipart_id: str) -> None:
        """Drops the parts of an unfinished multipart upload; one that is gone already is no error."""
        ...

    def download_url(self, project: str, sha256: str, filename: str, size: int | None = None) -> str:
        """A URL that reads the blob, named `filename`; `size` is the blob's when the caller knows it (a
        manifest's entry), which spares a store that signs it a look at the blob."""
        ...

    def pin_remote(self, spec: RemoteSpec) -> RemoteEntry:
        """What can be read of a remote object (size, ETag, version id) with `verified`: one that is gone or
        not readable is answered unverified; only a passing failure of the store raises (`Retryable`)."""
        ...

    def put_manifest(self, project: str, digest: str, chunks: Iterable[bytes]) -> None:
        """Stores a manifest's chunks (`ENTRIES` JSON, serialised by `registry.manifests.Chunks`) as
        they come: a caller's generator is never held whole."""
        ...

    def get_manifest_chunk(self, project: str, digest: str, index: int) -> list[Entry]: ...

    # The janitor's side. A condemned blob counts as missing to `find_missing` and `verify`, so that
    # an upload that starts after the condemnation sends its bytes again (a new copy, never reclaimed
    # by the condemnation of the old one).
    def projects(self) -> Iterator[str]:
        """The projects that hold blobs."""
        ...

    def unlisted_blobs(self, project: str, listed: Container[str]) -> Iterator[StoredBlob]:
        """The project's blobs whose sha256 is not in `listed`, with their generation and condemnation."""
        ...

    def unlisted_page(
        self, project: str, listed: Container[str], after: str | None, limit: int
    ) -> tuple[list[StoredBlob], str | None]:
        """Of the next `limit` stored blobs of the project after the sha256 `after`, in sha256 order, those
        whose sha256 is not in `listed`, with their generation and condemnation; and the last sha256 looked
        at, or None when no blob follows it (so that a walk goes on from there, page by page)."""
        ...

    def condemn(self, project: str, blob: StoredBlob, at: datetime) -> None:
        """Marks this copy of the blob for reclaiming; it now counts as missing to new uploads."""
        ...

    def reclaim(self, project: str, blob: StoredBlob) -> bool:
        """Removes this copy of the blob if it is still the condemned one; False if not."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdSource(Protocol):
    def new_id(self) -> str: ...
