"""The janitor's walks over every project, cut into steps that each end within a budget and save a
checkpoint through the metadata store, so that successive runs finish a walk however large the
registry (the safety argument across runs is in `janitor`'s docstring).

A step asks its budget before each item of work: reading a project's pending uploads, a page of one
artifact's versions, a page of stored blobs. It saves every `save_every` items and when it stops;
a step killed between two saves loses only what it did since the last one, which the next step does
again (condemning and reclaiming are harmless to repeat: a condemnation repeated is only later).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from pydantic import BaseModel

from artreg.model.wire import FileEntry
from artreg.registry import manifests, paging
from artreg.registry.budget import Budget
from artreg.registry.ports import BlobStore, Clock, MetadataStore
from artreg.registry.records import StoredVersion

MARK_CHUNK = 8192  # digests per chunk of a mark set: 256 KiB, under a DynamoDB item's 400 KB
BLOBS, REMOTE = "blobs", "remote"  # the checkpoints' names


class Cursor(BaseModel):
    """Where a walk stands in one project's versions: heads up to `after_head` are read, and of the next
    one the versions below `before_version`."""

    after_head: str | None = None
    before_version: str | None = None


class Walk(BaseModel):
    started: datetime  # when the walk's first step began
    after_project: str | None = None  # projects up to this one are done
    project: str | None = None  # the project in hand
    versions: Cursor = Cursor()


class BlobWalk(Walk):
    mark_started: datetime | None = None  # when the project's mark set began: its pending uploads' read
    chunks: int = 0  # chunks of the mark set saved
    sweeping: bool = False  # the mark set is complete; its blobs are being walked
    after_blob: str | None = None  # blobs up to this sha256 are handled


W = TypeVar("W", bound=Walk)


class Checkpoint(BaseModel, Generic[W]):
    walk: W | None = None  # the unfinished walk
    completed: datetime | None = None  # when the last walk finished


class BlobCheckpoint(Checkpoint[BlobWalk]):
    pass


class RemoteCheckpoint(Checkpoint[Walk]):
    pass


C = TypeVar("C", BlobCheckpoint, RemoteCheckpoint)


class Step(Generic[C]):
    """One run's step of the walk saved under `name`."""

    def __init__(
        self, name: str, kind: type[C], store: MetadataStore, clock: Clock, budget: Budget, save_every: int
    ) -> None:
        self.name, self.store, self.clock, self.budget, self.save_every = name, store, clock, budget, save_every
        saved = store.get_checkpoint(name)
        self.revision = saved[1] if saved else 0
        self.checkpoint: C = kind.model_validate_json(saved[0]) if saved else kind()
        self.items = 0

    def take(self) -> bool:
        """One more item, if the budget allows; saves every `save_every` items."""
        if not self.budget.take():
            return False
        self.items += 1
        if self.items % self.save_every == 0:
            self.save()
        return True

    def save(self) -> None:
        self.store.save_checkpoint(self.name, self.checkpoint.model_dump_json(), self.revision)
        self.revision += 1

    def complete(self) -> None:
        self.checkpoint.walk, self.checkpoint.completed = None, self.clock.now()
        self.save()


def next_project(projects: list[str], after: str | None) -> str | None:
    return min((p for p in projects if after is None or p > after), default=None)


def walk_versions(
    store: MetadataStore,
    project: str,
    cursor: Cursor,
    take: Callable[[], bool],
    visit: Callable[[list[StoredVersion]], None],
    page: int,
) -> bool:
    """Visits the live versions of `project` a page at a time from `cursor`, moving it; False if the
    budget ran out first. A head made behind the cursor meanwhile is not read: its versions are newer
    than the walk (see `janitor`: why that is safe)."""
    heads = paging.scan(lambda after, n: store.list_heads(project, after, n), lambda h: h.name, cursor.after_head, page)
    for head in heads:
        while True:
            if not take():
                return False
            versions = store.list_versions(project, head.name, cursor.before_version, page)
            visit([v for v in versions if v.state != "deleted"])
            if len(versions) < page:
                break
            cursor.before_version = versions[-1].sort_key
        cursor.after_head, cursor.before_version = head.name, None
    return True


def file_digests(blobs: BlobStore, versions: list[StoredVersion]) -> set[str]:
    return {e.sha256 for v in versions for e in manifests.entries(blobs, v) if isinstance(e, FileEntry)}


def pack(digests: set[str]) -> list[bytes]:
    """The digests, sorted, in chunks of at most `MARK_CHUNK` (one, empty, if there are none)."""
    ordered = sorted(digests)
    starts = range(0, len(ordered), MARK_CHUNK) if ordered else [0]
    return [b"".join(bytes.fromhex(d) for d in ordered[i : i + MARK_CHUNK]) for i in starts]


def unpack(chunk: bytes) -> set[str]:
    return {chunk[i : i + 32].hex() for i in range(0, len(chunk), 32)}


def age(walk: Walk | None, now: datetime) -> timedelta:
    """How old the unfinished walk is (nothing unfinished: zero)."""
    return now - walk.started if walk else timedelta(0)
