"""The janitor's use cases, run on a schedule (the `janitor` Lambda, or `artreg janitor` on the local
store).

Expiring uploads: a pending upload past its `expires_at` can no longer be committed (the registry
checks the time on every request); the janitor marks it `expired` and aborts the multipart uploads it
started, so that their parts stop costing storage before the bucket's lifecycle rule would. Each run
handles at most `limit` uploads; what is left waits for the next run.

Reclaiming blobs, over successive runs, so that a blob a version lists is never removed. Each run is a
step of one walk over every project (`janitor_walks`): it ends within its budget (on Lambda, the time left
less a margin) and saves a checkpoint in the metadata store; the next run goes on from it. Per project:

1. The *mark*: at `mark_started` the step reads the project's pending uploads, then the live versions
   artifact by artifact, page by page, over as many runs as that takes. What they list (the mark set)
   is saved beside the checkpoint as chunks of sorted digests, each chunk before the checkpoint that
   counts it, so that a killed step leaves at most an uncounted chunk, never a counted one missing.
2. The *sweep*, once the mark is complete: the project's stored blobs page by page in sha256 order.
   The pending uploads begun since the mark's read of them are read when the sweep begins, and those
   begun since the last read at every checkpoint, and what they list is added to the mark set. An unlisted blob is
   *condemned* if it was stored at least `grace` before `mark_started`: from then on it counts as
   missing to every upload, which sends its bytes again as a new copy. An unlisted blob condemned at
   least `fence` before `mark_started` is *removed* (that very copy only: an S3 version id, a file's
   inode).

Why a removal is safe: the blob was condemned at `c`, and this mark began at `m >= c + fence`. An upload
whose existence check came before `c` was told the blob is there, and wrote its upload record within one
request's time of that check (under 30 s, far under the fence), so before `m`: the mark read it as
pending, or its version as live (the versions are read after the uploads, so one that commits in between
is seen by one of the two reads), unless that version was deleted since, when nothing lists the blob.
A head made behind the walk's cursor while the mark goes on holds versions whose uploads began after
`m`, so after `c`: they were told to upload, and their copy is not the condemned one. The mark set
only ever holds too much (a step killed after a chunk but before its checkpoint reads pages again),
which keeps a blob longer, never shorter. An upload that checks between the mark and a condemnation
and commits before the sweep reads pending uploads again may have its blob condemned while listed:
it is then never removed (the next marks list it), and the next upload of that content sends it again.

Why the grace: a blob stored after `mark_started - grace` is never condemned by this mark, so one
uploaded for an upload that began after the mark's read of pending uploads is not touched.

A walk is done when the last project's sweep is; the next run begins the next walk. `walk_ages`
says how old the unfinished walk is, which an alarm watches (a walk that takes days is falling behind).

Re-checking remote references: every pinned reference of a live version (an `s3://` object on AWS, a
`file://` one locally) is read again as it was at commit; one that reads otherwise is noted with a
`RemoteReferenceChanged` event, once per observation, however many runs see it. It is a walk too, with
its own checkpoint: a step that stops goes on from there the next time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from artreg.model.errors import NotFound, Retryable
from artreg.model.wire import FileEntry, RemoteEntry, RemoteSpec
from artreg.registry import janitor_walks as walks
from artreg.registry import manifests
from artreg.registry.budget import Budget, Unlimited
from artreg.registry.policy import SystemClock
from artreg.registry.ports import BlobStore, Clock, MetadataStore
from artreg.registry.records import RemoteChange, StoredBlob, StoredVersion

E = TypeVar("E", FileEntry, RemoteEntry)
FENCE = timedelta(minutes=15)  # condemnation to removal: far above one request's 30 s
_PAGE = 200  # versions or blobs per item of work: a page of blobs costs a HEAD per unlisted one
_SAVE_EVERY = 20
# An upload's record is written within one request (under 30 s) of the clock read that set its expiry, and
# the clocks of the API and of the janitor differ by far less than the rest: a read of pending uploads
# again that goes this far back before the last read's time sees every upload that read could have missed.
_READ_OVERLAP = timedelta(minutes=5)


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
    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        clock: Clock | None = None,
        page: int = _PAGE,
        save_every: int = _SAVE_EVERY,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock or SystemClock()
        self.page = page  # versions or blobs per item of work
        self.save_every = save_every  # items between two checkpoints

    def expire_uploads(self, limit: int = 500, budget: Budget | None = None) -> UploadSweep:
        budget = budget or Unlimited()
        expired = aborted = 0
        for upload in self.store.expired_uploads(self.clock.now(), limit):
            if not budget.take():
                break  # the rest are found again by the next run
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

    def reclaim_blobs(
        self,
        grace: timedelta,
        upload_ttl: timedelta,
        fence: timedelta = FENCE,
        budget: Budget | None = None,
    ) -> BlobSweep:
        """One step of the walk over every project's blobs (the whole walk, without a budget): marks
        what is listed, then condemns the unlisted blobs past `grace` and removes those condemned at
        least `fence` before the mark began and still unlisted."""
        return _BlobStep(self, grace, upload_ttl, fence, budget or Unlimited()).run()

    def recheck_remote_refs(self, budget: Budget | None = None) -> RemoteSweep:
        """One step of the walk that reads every pinned remote reference of every live version again."""
        step = walks.Step(
            walks.REMOTE, walks.RemoteCheckpoint, self.store, self.clock, budget or Unlimited(), self.save_every
        )
        walk = step.checkpoint.walk or walks.Walk(started=self.clock.now())
        step.checkpoint.walk = walk
        sweep = RemoteSweep()
        projects = sorted(self.store.projects())

        def visit(versions: list[StoredVersion]) -> None:
            nonlocal sweep
            sweep = self._recheck(versions, sweep)

        while (project := walk.project or walks.next_project(projects, walk.after_project)) is not None:
            walk.project = project
            if not walks.walk_versions(self.store, project, walk.versions, step.take, visit, self.page):
                step.save()
                return sweep
            walk.after_project, walk.project, walk.versions = project, None, walks.Cursor()
        step.complete()
        return sweep

    def walk_ages(self) -> dict[str, timedelta]:
        """How old each unfinished walk is (zero if none is unfinished): what the walk-age alarm watches."""
        now = self.clock.now()
        ages = {}
        for name, kind in ((walks.BLOBS, walks.BlobCheckpoint), (walks.REMOTE, walks.RemoteCheckpoint)):
            saved = self.store.get_checkpoint(name)
            ages[name] = walks.age(kind.model_validate_json(saved[0]).walk if saved else None, now)
        return ages

    def _recheck(self, versions: list[StoredVersion], sweep: RemoteSweep) -> RemoteSweep:
        now = self.clock.now()
        checked, changed, noted = sweep.checked, sweep.changed, sweep.noted
        for version in versions:
            for pinned in self._entries_of(version, RemoteEntry):
                if not pinned.verified:
                    continue  # nothing was pinned to compare with
                try:
                    change = self._remote_change(version, pinned, now)
                except Retryable:
                    continue  # unreadable just now: not a change; the next walk reads it again
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

    def _entries_of(self, version: StoredVersion, kind: type[E]) -> Iterator[E]:
        """The version's entries of one kind, from its record or, for a large manifest, its chunks."""
        return (e for e in manifests.entries(self.blobs, version) if isinstance(e, kind))


class _BlobStep:
    """One run's step of the walk over blobs: per project, in name order, the mark set (pending uploads,
    then live versions, saved in chunks), then its blobs page by page."""

    def __init__(self, janitor: Janitor, grace: timedelta, upload_ttl: timedelta, fence: timedelta, budget: Budget):
        self.janitor, self.grace, self.upload_ttl, self.fence = janitor, grace, upload_ttl, fence
        self.store, self.blobs, self.clock = janitor.store, janitor.blobs, janitor.clock
        self.step = walks.Step(walks.BLOBS, walks.BlobCheckpoint, self.store, self.clock, budget, janitor.save_every)
        self.walk = self.step.checkpoint.walk or walks.BlobWalk(started=self.clock.now())
        self.step.checkpoint.walk = self.walk
        self.marked: set[str] = set()  # digests gathered since the last saved chunk
        self.listed: set[str] | None = None  # while sweeping: the mark set, and uploads pending now
        self.read_at: datetime | None = None  # when pending uploads were last read
        self.sweep = BlobSweep()

    def run(self) -> BlobSweep:
        walk, projects = self.walk, sorted(self.blobs.projects())
        while (project := walk.project or walks.next_project(projects, walk.after_project)) is not None:
            if walk.project is None or (not walk.sweeping and walk.chunks == 0):
                if not self.step.take():
                    break
                self._begin_mark(project)  # again, if a killed step left it half done
            if not walk.sweeping and not self._mark(project):
                break
            if not self._sweep(project):
                break
            walk.after_project, walk.project, walk.sweeping, walk.after_blob = project, None, False, None
        else:
            self.step.complete()
            return self.sweep
        self._save()
        return self.sweep

    def _begin_mark(self, project: str) -> None:
        """The pending uploads first: one that commits while the versions are read is seen here. The
        checkpoint names the project before its chunk 0 replaces the last mark's (which a step resumed
        from an older checkpoint would read), and counts that chunk once written."""
        walk = self.walk
        walk.project, walk.mark_started, walk.chunks, walk.versions = project, self.clock.now(), 0, walks.Cursor()
        self.step.save()
        self.marked = self._pending(project)
        self._save(chunk=True)

    def _mark(self, project: str) -> bool:
        def visit(versions: list[StoredVersion]) -> None:
            self.marked |= walks.file_digests(self.blobs, versions)
            if len(self.marked) >= walks.MARK_CHUNK:
                self._save()

        if not walks.walk_versions(self.store, project, self.walk.versions, self._take, visit, self.janitor.page):
            return False
        self._save()  # the last chunk, counted while still marking
        self.walk.sweeping, self.walk.after_blob = True, None
        self.step.save()
        return True

    def _sweep(self, project: str) -> bool:
        walk = self.walk
        assert walk.mark_started is not None
        if self.listed is None:
            self.listed = set().union(*map(walks.unpack, self.store.mark_chunks(walks.BLOBS, walk.chunks)))
            self.listed |= self._pending(project, since=walk.mark_started)  # chunk 0 holds those pending then
        while self._take():
            page, last = self.blobs.unlisted_page(project, self.listed, walk.after_blob, self.janitor.page)
            acted = False  # the page's item pays for its first action; each further one is an item
            for blob in page:
                due = self._due(blob, walk.mark_started)
                if due and acted and not self._take():
                    return False  # out of budget within the page: it goes on after the last blob handled
                if due:
                    self._act(project, blob)
                    acted = True
                walk.after_blob = blob.sha256
            walk.after_blob = last
            if last is None:
                self.listed = None
                return True
        return False

    def _due(self, blob: StoredBlob, mark_started: datetime) -> bool:
        if blob.condemned_at is None:
            return blob.modified <= mark_started - self.grace
        return blob.condemned_at <= mark_started - self.fence

    def _act(self, project: str, blob: StoredBlob) -> None:
        if blob.condemned_at is None:
            self.blobs.condemn(project, blob, self.clock.now())
            self.sweep = replace(self.sweep, condemned=self.sweep.condemned + 1)
        elif self.blobs.reclaim(project, blob):
            s = self.sweep
            self.sweep = replace(s, reclaimed=s.reclaimed + 1, reclaimed_bytes=s.reclaimed_bytes + blob.size)

    def _take(self) -> bool:
        if not self.step.budget.take():
            return False
        self.step.items += 1
        if self.step.items % self.step.save_every == 0:
            self._save()
            if self.listed is not None and self.walk.project is not None:
                self.listed |= self._pending(self.walk.project, since=self.read_at)  # before acting
        return True

    def _save(self, chunk: bool = False) -> None:
        """The digests gathered since the last save become chunks of the mark set first, then the
        checkpoint that counts them: a step killed between the two leaves chunks that are never read."""
        if (self.marked or chunk) and self.walk.project is not None and not self.walk.sweeping:
            for packed in walks.pack(self.marked):
                self.store.put_mark_chunk(walks.BLOBS, self.walk.chunks, packed)
                self.walk.chunks += 1
            self.marked = set()
        self.step.save()

    def _pending(self, project: str, since: datetime | None = None) -> set[str]:
        """What the project's pending uploads list; with `since` (the time of a read whose answer is held
        already: the mark's first, in its chunk 0, or the sweep's last), only those begun after it. An
        upload's expiry is set once, when it begins, `upload_ttl` later (so the janitor's `upload_ttl`
        must be the uploads'): one begun after `since` expires after `since` plus `upload_ttl`, where the
        store need read only the newest hours of its index."""
        now = self.clock.now()
        expiring_from = since - _READ_OVERLAP + self.upload_ttl if since is not None else None
        self.read_at = now
        return {
            e.sha256
            for upload in self.store.pending_uploads(project, now, self.upload_ttl, expiring_from)
            for e in upload.entries
            if isinstance(e, FileEntry)
        }
