"""The records the stores keep and the one atomic change of an artifact they apply: the values that
cross the ports, apart from the ports themselves."""

# no `from __future__ import annotations` here: pydantic would compile each field's annotation from its text
# when the class is made, a cost of every cold start (benchmarks/cold_start.py)

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from artreg.model import versions
from artreg.model.manifest import Entry
from artreg.model.names import LATEST
from artreg.model.wire import (
    AliasMove,
    BaseRef,
    LinkedBy,
    LinkTarget,
    Producer,
    RemoteEntry,
    VersionLink,
    VersionRecord,
)

# pending until committed; expired by the janitor once past `expires_at` (the registry refuses to
# commit an upload past it even before)
UploadState = Literal["pending", "committed", "expired"]
EdgeKind = Literal["produced", "used"]  # a run produced a version, or used it
MAX_LINKS = 10_000  # per version (API.md, Links)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# every model here is defer_build: it builds its validator on first use, not at import (cold start)


class Head(BaseModel):
    """One per artifact: everything a commit needs to allocate a version, so that a commit reads
    one item (and a retry, handed the current head by the failed write, reads none)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    project: str
    name: str
    type: str
    revision: int = 0  # bumped by every change to the artifact: the optimistic-concurrency guard
    latest: str | None = None
    latest_digest: str | None = None
    highest_release: str | None = None  # never moves down, so a number is never handed out twice
    version_count: int = 0  # live versions
    aliases: dict[str, str] = Field(default_factory=dict)  # alias -> version, `latest` included
    created_at: datetime
    updated_at: datetime

    def next(self, now: datetime, **changes: Any) -> Self:
        """The head after one more change: the revision a write is guarded by, bumped."""
        return self.model_copy(update={"revision": self.revision + 1, "updated_at": now, **changes})


class ManifestRef(BaseModel):
    """Where a manifest too large for its version record lives: chunks in the blob store."""

    model_config = ConfigDict(defer_build=True)

    chunk_size: int
    count: int  # entries, files and remote
    first_paths: list[str]  # of each chunk, to find a path's chunk by bisection


@dataclass(frozen=True)
class StoreLimits:
    """What a metadata store can hold, declared by the store (its `limits`); the registry refuses what
    would exceed them before it writes anything. The defaults are the DynamoDB table's, and the local
    store declares the same, so that what the local server accepts the deployed registry accepts."""

    # of a version record's inline manifest: what it may take of a 400 KB DynamoDB item
    record_bytes: int = 256 * 1024
    # of one upload request's entries, compressed (`manifest.pack`): under the 400 KB item limit
    batch_bytes: int = 350_000
    # per artifact, `latest` included. It bounds the items one change writes: a forced delete writes
    # 5 + 2 * max_aliases at most, a commit 36 + max_aliases + 3 a link (at most
    # wire.MAX_COMMIT_LINKS of them), a link change 8 + max_aliases, under DynamoDB's 100 per transaction
    max_aliases: int = 40
    # of a version record's inline links: what is left of the item beside the inline manifest, the
    # metadata (64 KiB) and the tags; a record inlines at most 1,000 links and at most this many bytes
    link_bytes: int = 48 * 1024


def latest_first(aliases: Iterable[str]) -> list[str]:
    """A version's aliases as every store answers them: `latest` first, then by name."""
    return sorted(aliases, key=lambda a: (a != LATEST, a))


class StoredVersion(VersionRecord):
    """A version record as stored: the wire record (with at most the inline part of its manifest)
    plus where the whole manifest lives when it is not all inline."""

    manifest: ManifestRef | None = None
    link_count: int = 0  # every link of the version; `links` holds the inline ones

    @property
    def sort_key(self) -> str:
        return versions.sort_key(self.version)

    def to_record(self) -> VersionRecord:
        return VersionRecord.model_validate(self.model_dump(exclude={"manifest", "link_count"}))

    def as_target(self) -> LinkTarget:
        return LinkTarget(name=self.name, version=self.version, digest=self.digest)


class Upload(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    project: str
    name: str
    upload_id: str
    type: str
    state: UploadState = "pending"
    created_at: datetime
    expires_at: datetime
    created_by: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    version: str | None = None  # the explicit version asked for; once committed, the version it became
    bump: versions.Bump | None = None
    producer: Producer | None = None
    links: dict[str, str] = Field(default_factory=dict)  # role -> NAME@REF, pinned at commit
    if_changed: bool = False
    base: BaseRef | None = None  # the version it starts from (registry.rebase): entries are then changes
    remove: list[str] = Field(default_factory=list)  # paths of the base left out
    entries: list[Entry] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)  # sha256 of blobs to verify at commit
    multipart: dict[str, str] = Field(default_factory=dict)  # sha256 -> multipart upload id

    def as_read(self, state: UploadState, committed_version: str | None, batches: Iterable["UploadBatch"]) -> Self:
        """The upload as a store answers it: its first request and then every further batch in the
        order they came, its state, and once committed the version it became."""
        entries, missing, multipart = list(self.entries), list(self.missing), dict(self.multipart)
        for batch in batches:
            entries += batch.entries
            missing += batch.missing
            multipart.update(batch.multipart)
        return self.model_copy(
            update={
                "state": state,
                "version": committed_version or self.version,
                "entries": entries,
                "missing": missing,
                "multipart": multipart,
            }
        )


@dataclass(frozen=True)
class UploadBatch:
    """What one further request added to a pending upload."""

    entries: list[Entry]
    missing: list[str]
    multipart: dict[str, str]


class LineageEdge(BaseModel):
    """A run produced or used a version (of the same project): kept so that what a run produced and
    used, and which runs produced and used a version, are each one read."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    project: str
    run_id: str
    kind: EdgeKind
    name: str
    version: str
    pipeline: str | None = None
    step: str | None = None
    at: datetime | None = None


class StoredLink(BaseModel):
    """A link as stored: the version holding it (with its digest, for events), the role, the target as
    pinned, and the head revision of the change that made it (which names its event)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    project: str
    name: str
    version: str
    digest: str
    role: str
    target: LinkTarget
    at: datetime
    by: str | None = None
    revision: int
    previous: LinkTarget | None = None  # the target this link replaced, if any

    @property
    def sort_key(self) -> str:
        return versions.sort_key(self.version)

    @property
    def target_sort_key(self) -> str:
        return versions.sort_key(self.target.version)

    def to_wire(self) -> VersionLink:
        return VersionLink(role=self.role, target=self.target, at=self.at, by=self.by)

    def as_linked_by(self) -> LinkedBy:
        source = LinkTarget(name=self.name, version=self.version, digest=self.digest)
        return LinkedBy(role=self.role, source=source, at=self.at, by=self.by)


class Unlink(BaseModel):
    """A link removed: the link as it was, when, by whom, and the head revision of the change."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    link: StoredLink
    at: datetime
    by: str | None = None
    revision: int


class RunSeen(BaseModel):
    """What the registry has heard of a run: when first and last, and how many versions it produced and
    used (its lineage edges, each counted once)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    project: str
    run_id: str
    first_seen: datetime
    last_seen: datetime
    produced: int = 0
    used: int = 0

    @classmethod
    def first(cls, edge: LineageEdge) -> Self:
        """A run not seen before, before its first edge is counted (`seeing`)."""
        at = edge.at or _EPOCH
        return cls(project=edge.project, run_id=edge.run_id, first_seen=at, last_seen=at)

    def seeing(self, edge: LineageEdge) -> Self:
        """The run after one more edge of it was recorded (an edge of an older event without a time
        leaves its times as they are)."""
        at = edge.at or self.last_seen
        return self.model_copy(
            update={
                "first_seen": min(self.first_seen, at),
                "last_seen": max(self.last_seen, at),
                "produced": self.produced + (edge.kind == "produced"),
                "used": self.used + (edge.kind == "used"),
            }
        )


@dataclass(frozen=True)
class StoredBlob:
    """A blob as the blob store holds it, for the janitor: `generation` names this very copy (an S3
    version id, a file's inode), so that reclaiming it never removes a copy uploaded after it was seen."""

    sha256: str
    size: int
    modified: datetime
    generation: str
    condemned_at: datetime | None = None


@dataclass(frozen=True)
class UnsettledBlob:
    """A blob that a store does not hold trusted with its size and SHA-256 (`BlobStore.verify`): absent,
    of another size, condemned, or not known to be that content. `verifying_since`: the store holds
    bytes of that size whose re-hash started then and has not ended (S3, above the inline bound)."""

    sha256: str
    size: int
    verifying_since: datetime | None = None


class RemoteChange(BaseModel):
    """A pinned remote reference of a live version that no longer reads as it was pinned: `changed`
    (another size, ETag or version id) or `vanished` (no longer readable: deleted, or access withdrawn)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    project: str
    name: str
    version: str
    path: str
    uri: str
    state: Literal["changed", "vanished"]
    pinned: RemoteEntry
    observed: RemoteEntry | None
    checked_at: datetime

    @property
    def path_digest(self) -> str:
        """The path as a key part: a path holds `/` and `#`, which keys and event ids join on."""
        return hashlib.sha256(self.path.encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """What was observed: the same observation noted twice is one change."""
        seen = self.observed
        return self.state if seen is None else f"{self.state}:{seen.size}:{seen.etag}:{seen.version_id}"


# ---------------------------------------------------------------- one atomic change of an artifact


@dataclass
class VersionDelta:
    """A change to an existing version, applied to its item and to every alias item that copies
    it, without reading them first."""

    version: str
    aliases_add: set[str] = field(default_factory=set)
    aliases_remove: set[str] = field(default_factory=set)
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    deleted_at: datetime | None = None
    links: list[VersionLink] | None = None  # the inline links, all of them, as they are after
    link_count: int | None = None
    links_truncated: bool | None = None
    # the store refuses the change (as a moved head) if any version links to this one meanwhile
    require_unlinked: bool = False


@dataclass
class ArtifactChange:
    """Everything one write does to an artifact, applied all or nothing, and only if the head is
    still at `expected_revision` (0: the artifact must not exist yet)."""

    head: Head  # the head after the change; its revision is expected_revision + 1
    expected_revision: int
    new_version: StoredVersion | None = None  # must not exist yet
    deltas: list[VersionDelta] = field(default_factory=list)
    # alias items hold a full copy of their version, so that resolving an alias is one read
    alias_puts: dict[str, StoredVersion] = field(default_factory=dict)
    alias_deletes: list[str] = field(default_factory=list)
    history: list[AliasMove] = field(default_factory=list)
    commit_upload: str | None = None  # upload id that becomes new_version (must be pending)
    # links made (or re-pointed: `previous` set) and removed; each target must be a committed version
    links_set: list[StoredLink] = field(default_factory=list)
    links_removed: list[Unlink] = field(default_factory=list)

    def digest_after(self, move: AliasMove) -> str | None:
        """The digest of the version an alias moved to (None when it was removed), for its event."""
        target = self.alias_puts.get(move.alias)
        return target.digest if target is not None else None


def version_id(name: str, version: str) -> str:
    """A version as lineage names it: `name@version`, within its project."""
    return f"{name}@{version}"
