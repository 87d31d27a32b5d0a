"""Logging a version's files (what `Registry.log_artifact` does once its arguments are checked): the
files are walked, hashed and offered in batches as they come, and each batch's missing blobs are
PUT while the next batch is offered, and the one after it walked and hashed on a thread of its own,
so that memory holds a few batches whatever the number of files, and each batch's presigned answers
are dropped once used.

With the manifest cache (`client.manifests`, on with the download cache), for an artifact whose
manifest it keeps some version of, `latest` is read first (one GET) and the files are walked once,
writing nothing, beside the kept manifest of `latest` if there is one (a file whose kept row holds
the stat it has now is read nothing of, nor looked up in the hash cache): an unchanged folder with
`if_changed` is then answered by that GET, and a version of more than one request of files that
differs from it by at most one request of changes is logged as an upload from that base (API.md):
the changes, the blobs they lack, the commit, then the base's kept rows copied in SQLite with the
changes applied. Otherwise the files are offered as above, written into the cache's staging as they
are hashed; a refused base falls back to that once.

Per-file memory that remains: none; a folder's listing while it is walked, and the SQLite pages of
the hash cache."""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from artreg.client import progress as bars
from artreg.client import staging
from artreg.client.artifact import Artifact
from artreg.client.common import segment, wire
from artreg.client.errors import Conflict, NotFound
from artreg.client.files import HashedFile, Hasher, hash_stream, stream_batches
from artreg.client.logged import LoggedArtifact
from artreg.client.manifests import Changes, ManifestCache, Staged, artifact_of, compare, key_of, remember
from artreg.client.progress import Progress
from artreg.client.staging import Known
from artreg.client.transfer import upload_blobs
from artreg.model.manifest import Digest
from artreg.model.wire import (
    MAX_FILES_PER_REQUEST,
    AddFiles,
    BaseRef,
    Bundle,
    CompleteBlob,
    FileEntry,
    FilesAdded,
    MissingBlob,
    Part,
    Producer,
    RemoteSpec,
    StartUpload,
    UploadStarted,
)

if TYPE_CHECKING:
    from artreg.client.registry import Registry

log = logging.getLogger("artreg")
VERIFYING = "blobs_verifying"  # a 409 of commit: stored blobs whose SHA-256 the registry is still checking
Pair = tuple[HashedFile, FileEntry]
Batch = tuple[list[Pair], list[RemoteSpec]]
_REFUSED_BASE = frozenset({"base_mismatch", "upload_state"})  # a 409 after which a full upload is sent


def log_files(
    reg: Registry,
    artifact: Artifact,
    *,
    version: str | None,
    bump: str | None,
    producer: Producer | None,
    if_changed: bool,
    shown: bool | None,
    links: dict[str, str] | None = None,
) -> LoggedArtifact:
    """Logs `artifact` as a new version, streaming: batches of files offered and their missing blobs
    sent one after the other, then the commit. `links` (role -> `name@ref`) are made at commit."""
    request: dict[str, Any] = {
        "type": artifact.type,
        "metadata": artifact.metadata,
        "tags": sorted(artifact.tags),
        "aliases": sorted(artifact.aliases),
        "version": version,
        "bump": bump,
        "producer": producer,
        **({"links": links} if links else {}),
        "if_changed": if_changed,
    }
    # large new files are sent first, hashed as they go, where the server offers it; not when the files
    # are expected unchanged (if_changed): hashing first then sends nothing
    read = {} if if_changed else staging.stage(reg, artifact.iter_files(), f"upload {artifact.name}", shown)
    if not artifact.remote and reg.manifests is not None:
        logged = _log_known(reg, artifact, reg.manifests, request, shown, read)
        if logged is not None:
            return logged
        with reg.manifests.staging() as staged:
            if staged is not None:
                return _log_staged(reg, artifact, staged, request, shown, read)
    if if_changed and not artifact.remote:
        # over one request of files, ask first: one GET instead of a request per thousand files. The
        # digest is taken on a walk of its own (the hash cache makes it read nothing), then another sends.
        digest, count = _digest(reg, artifact, read)
        if count > MAX_FILES_PER_REQUEST:
            unchanged = _latest_if_digest(reg, artifact.name, digest)
            if unchanged is not None:
                return unchanged
    hashed = _hashed(reg, artifact, read)
    return _upload(reg, artifact, request, _batches(hashed, artifact.remote), shown)


def _log_known(
    reg: Registry,
    artifact: Artifact,
    manifests: ManifestCache,
    request: dict[str, Any],
    shown: bool | None,
    read: Known,
) -> LoggedArtifact | None:
    """`latest` if the files are its (if_changed), or the version logged from it as a base when the
    cache keeps its manifest and the files differ from it by at most one request of changes: one walk
    that writes nothing, compared with the kept rows as it goes, then (for a new version) the base's
    rows copied in SQLite while the upload goes. None when neither holds: the caller logs in full."""
    whose = artifact_of(reg.url, reg.project, artifact.name)
    known = manifests.knows_artifact(whose)
    if not known and not request["if_changed"]:
        return None
    # one GET: the base must be latest's manifest, known before the walk to compare as it goes
    latest = _latest(reg, artifact.name) if known else None
    base = manifests.kept(_key(reg, latest)) if latest is not None else None
    with Hasher(cache=reg.hashes, workers=reg.workers, known=read) as hasher:
        kept = (base, latest.digest) if base is not None and latest is not None else None
        walked = compare(manifests, kept, artifact.iter_files(), hasher, MAX_FILES_PER_REQUEST)
    if walked is None or walked.count <= MAX_FILES_PER_REQUEST:  # smaller: one request in full, nothing to gain
        return None
    if request["if_changed"]:
        latest = latest if known else _latest(reg, artifact.name)
        if latest is not None and latest.digest == walked.digest:
            return latest
    if latest is None or base is None or walked.changes is None:
        return None
    # the new version's manifest is copied in the cache on a thread as the upload goes (SQLite's work and
    # the copy's digest overlap the registry's): kept if the registry's digest is the copy's
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artreg-cache") as pool:
        copying = pool.submit(_copy, manifests, base, walked.changes)
        logged: LoggedArtifact | None = None
        try:
            logged = _log_from_base(reg, artifact, request, latest, walked.changes, shown)
        finally:
            copy, digest = copying.result()
            if copy is not None and logged is not None and logged.digest == digest:
                manifests.keep_copy(copy, walked.count, _key(reg, logged), whose)
            elif copy is not None:
                manifests.drop_copy(copy)
    return logged


def _copy(manifests: ManifestCache, base: str, changes: Changes) -> tuple[str | None, str | None]:
    """The base's manifest copied with the changes applied, and the copy's digest (None, None if the cache failed)."""
    copy = manifests.copy_from(base, changes)
    return copy, manifests.digest(copy) if copy is not None else None


def _log_staged(
    reg: Registry, artifact: Artifact, staged: Staged, request: dict[str, Any], shown: bool | None, read: Known
) -> LoggedArtifact:
    """Logs the files in full, writing them into the manifest cache as they are hashed (in path
    order), and keeps the manifest of the version made."""

    def hashed() -> Iterator[HashedFile]:
        for file in _hashed(reg, artifact, read):
            staged.add(file)
            yield file

    logged = _upload(reg, artifact, request, _batches(hashed(), []), shown)
    remember(reg, staged, artifact.name, logged.version, logged.digest)
    return logged


def _log_from_base(
    reg: Registry,
    artifact: Artifact,
    request: dict[str, Any],
    base: LoggedArtifact,
    changes: Changes,
    shown: bool | None,
) -> LoggedArtifact | None:
    """The upload from `base` of the changes; None if the registry refused the base (gone, or not
    the manifest the cache holds): the caller then sends the full upload, once."""
    extra = {"base": wire(BaseRef, version=base.version, digest=base.digest), "remove": changes.removed}
    try:
        return _upload(reg, artifact, request, _batches(iter(changes.files), []), shown, extra)
    except NotFound as error:
        log.info("base %s of %s is gone (%s); logging in full", base.version, artifact.name, error)
    except Conflict as error:
        if error.code not in _REFUSED_BASE:
            raise
        log.info("the registry refused base %s of %s (%s); logging in full", base.version, artifact.name, error)
    return None


def _hashed(reg: Registry, artifact: Artifact, read: Known) -> Iterator[HashedFile]:
    """The artifact's files hashed, those in `read` (sent by `staging.stage`) without reading them again."""
    return hash_stream(artifact.iter_files(), cache=reg.hashes, workers=reg.workers, known=read)


def _key(reg: Registry, version: LoggedArtifact) -> str:
    return key_of(reg.url, reg.project, version.name, version.version, version.digest)


def _latest(reg: Registry, name: str) -> LoggedArtifact | None:
    """`latest`, in one request (none is no error here: a first version)."""
    try:
        latest = reg._bind(reg._call("GET", reg._version(name, "latest")), created=False)
    except NotFound:
        return None
    return latest


def _upload(
    reg: Registry,
    artifact: Artifact,
    request: dict[str, Any],
    parts: Generator[Batch],
    shown: bool | None,
    extra: dict[str, Any] | None = None,
) -> LoggedArtifact:
    """Starts the upload with the first batch (and `extra`: a base), adds the others, sends what is
    missing, commits; the batches are made (walked, hashed) one ahead, on a thread of their own."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artreg-walk") as walker:
        ahead = _made_ahead(parts, walker)
        try:
            return _upload_batches(reg, artifact, request, ahead, shown, extra)
        finally:
            ahead.close()


def _made_ahead(items: Generator[Batch], walker: ThreadPoolExecutor) -> Generator[Batch]:
    """`items`, each next one made on `walker` while the caller uses this one (the walk and hashing of
    a batch overlap the requests of the one before). Every step runs on that one thread, in turn;
    leaving early closes `items` there, once the step under way is done."""
    ahead = walker.submit(next, items, None)
    try:
        while (item := ahead.result()) is not None:
            ahead = walker.submit(next, items, None)
            yield item
    finally:
        walker.submit(items.close).result()


def _upload_batches(
    reg: Registry,
    artifact: Artifact,
    request: dict[str, Any],
    parts: Generator[Batch],
    shown: bool | None,
    extra: dict[str, Any] | None,
) -> LoggedArtifact:
    first = next(parts)
    second = next(parts, None)
    start = wire(
        StartUpload,
        **request,
        **(extra or {}),
        files=[entry for _, entry in first[0]],
        remote=first[1],
        commit=second is None,
    )
    base = f"{reg._artifact(artifact.name)}/uploads"
    status, answer = reg._call_status("POST", base, start)
    if isinstance(answer, dict) and answer.get("state") == "committed":
        return reg._bind(answer, created=status == 201)
    started = UploadStarted.model_validate(answer)
    upload = f"{base}/{segment(started.upload_id)}"
    with _Sender(reg, upload, f"upload {artifact.name}", shown) as sender:
        sender.send(started.missing, first[0], started.bundles)
        del first, answer, started
        for files, remote in itertools.chain([second] if second is not None else [], parts):
            body = wire(AddFiles, files=[entry for _, entry in files], remote=remote)
            added = FilesAdded.model_validate(reg._call("POST", f"{upload}/files", body))
            sender.send(added.missing, files, added.bundles)
    status, answer = _commit(reg, f"{upload}/commit")
    return reg._bind(answer, created=status == 201)


def _commit(reg: Registry, path: str) -> tuple[int, Any]:
    """Commits, waiting while the registry verifies large blobs (`409 blobs_verifying`, after its
    `Retry-After`), at most `verify_wait` seconds in all; one logical call, so one Idempotency-Key."""
    key = uuid.uuid4().hex
    policy = reg.transport.retry
    until = policy.clock() + reg.settings.verify_wait
    while True:
        try:
            answer = reg.transport.api("POST", path, idempotency_key=key)
        except Conflict as error:
            left = until - policy.clock()
            if error.code != VERIFYING or left <= 0:
                raise
            delay = min(left, max(1.0, error.retry_after or 5.0))
            log.info(
                "the registry is verifying %d blob(s); committing again in %.0f s",
                len(error.details.get("verifying", [])),
                delay,
            )
            policy.sleep(delay)
            continue
        return answer.status, answer.json()


def _batches(hashed: Iterable[HashedFile], remote: list[RemoteSpec]) -> Generator[Batch]:
    pairs = (
        (
            file,
            wire(
                FileEntry,
                path=file.path,
                size=file.size,
                sha256=file.sha256,
                **({"metadata": dict(file.metadata)} if file.metadata else {}),
            ),
        )
        for file in hashed
    )
    # each blob counted as missing: no batch needs more upload URLs than one answer may carry
    return stream_batches(pairs, remote, weigh=_weight, blob_size=lambda pair: pair[0].size)


def _weight(item: Pair | RemoteSpec) -> int:
    """An entry's serialised size; a plain file entry's is known without serialising it."""
    entry = item[1] if isinstance(item, tuple) else item
    if isinstance(entry, FileEntry) and not entry.metadata and entry.path.isascii() and '"' not in entry.path:
        return len(entry.path) + len(entry.sha256) + 80
    return len(entry.model_dump_json())


def _digest(reg: Registry, artifact: Artifact, read: Known) -> tuple[str, int]:
    """The manifest digest of the artifact's files, and their count."""
    digest = Digest()
    count = 0
    for file in _hashed(reg, artifact, read):
        digest.add(file.path, file.sha256, file.size, file.metadata)
        count += 1
    return digest.hexdigest(), count


def _latest_if_digest(reg: Registry, name: str, digest: str) -> LoggedArtifact | None:
    """`latest` if its manifest digest is `digest`, as the server answers `if_changed`. Only for
    stored files: the digest of a remote entry holds what the server pins of it."""
    latest = _latest(reg, name)
    return latest if latest is not None and latest.digest == digest else None


class _Sender:
    """PUTs each batch's missing blobs on a background thread, one batch behind the requests that
    offer the next: at most two batches' answers are held. The first failure is raised at the next
    `send` or on leaving."""

    def __init__(self, reg: Registry, upload: str, desc: str, shown: bool | None) -> None:
        self.reg = reg
        self.upload = upload
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artreg-send")
        self.running: Future[None] | None = None
        self.bar: Progress = bars.unsized(desc, shown)

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.running is not None and exc[0] is None:
                self.running.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.bar.close()

    def send(self, missing: list[MissingBlob], files: list[Pair], bundles: list[Bundle]) -> None:
        if self.running is not None:
            self.running.result()
            self.running = None
        if not missing:
            return
        sources: dict[str, HashedFile] = {}
        for file, _ in files:
            sources.setdefault(file.sha256, file)
        self.running = self.pool.submit(self._put, missing, sources, bundles)

    def _put(self, missing: list[MissingBlob], sources: dict[str, HashedFile], bundles: list[Bundle]) -> None:
        # the last target of a blob wins: the answer may list it twice
        targets = list({m.sha256: m for m in missing}.values())
        upload_blobs(
            self.reg.transport,
            targets,
            sources,
            complete=self._complete,
            workers=self.reg.workers,
            progress=self.bar,
            bundles=bundles,
        )

    def _complete(self, sha256: str, blob_parts: list[Part]) -> None:
        try:
            self.reg._call("POST", f"{self.upload}/blobs/{sha256}/complete", wire(CompleteBlob, parts=blob_parts))
        except NotFound:
            # a completion retried after it succeeded finds no multipart upload; commit checks the blob
            log.debug("multipart upload of %s is already completed", sha256)
