"""The registry's use cases. Each reads what it needs through the ports, decides, and writes one
`ArtifactChange` guarded by the artifact head's revision, retried from the current head when a
concurrent writer got there first."""

from __future__ import annotations

import bisect
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from artreg.backoff import jittered
from artreg.model import manifest, names, versions
from artreg.model.errors import Conflict, Invalid, NotFound, PreconditionFailed, Retryable
from artreg.model.manifest import Entry
from artreg.model.wire import (
    AddFiles,
    AliasHistory,
    AliasMove,
    ArtifactPage,
    ArtifactSummary,
    CompleteBlob,
    DownloadFile,
    DownloadPage,
    FileEntry,
    FilePage,
    FilesAdded,
    GraphEdge,
    GraphNode,
    LineageGraph,
    MissingBlob,
    MoveAlias,
    PatchVersion,
    Producer,
    RemoteEntry,
    RemoteSpec,
    RunLineage,
    StartUpload,
    UploadStarted,
    Usage,
    UsageRecord,
    VersionPage,
    VersionRecord,
)
from artreg.registry import cursors
from artreg.registry.ports import (
    ArtifactChange,
    BlobStore,
    Clock,
    Head,
    HeadMoved,
    IdSource,
    LineageEdge,
    ManifestRef,
    MetadataStore,
    StoredVersion,
    Upload,
    UploadNotPending,
    VersionDelta,
    VersionTaken,
)

LATEST = names.LATEST
T = TypeVar("T")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    def new_id(self) -> str:
        return uuid.uuid4().hex


@dataclass(frozen=True)
class Policy:
    upload_ttl: timedelta = timedelta(hours=24)
    presign_ttl: timedelta = timedelta(minutes=15)
    commit_deadline_s: float = 20.0  # how long a commit keeps retrying a lost race
    backoff_base_s: float = 0.004
    backoff_cap_s: float = 0.25
    inline_entries: int = 1000  # files (and, separately, remote entries) a version record carries
    inline_bytes: int = 256 * 1024  # what the inline manifest may take of a 400 KB DynamoDB item
    chunk_entries: int = 1000  # entries per manifest chunk in the blob store: one chunk, one page
    # per artifact, `latest` included. It bounds the items one change writes: a forced delete writes
    # 5 + 2 * max_aliases at most, a commit 36 + max_aliases, under DynamoDB's 100 per transaction
    max_aliases: int = 40
    default_page: int = 100
    max_page: int = 1000
    lineage_depth: int = 3  # runs away from a version that a lineage query goes, by default
    max_lineage_depth: int = 10
    max_lineage_nodes: int = 2000  # a lineage walk expands no node past this many, marking it truncated


@dataclass(frozen=True)
class Committed:
    record: VersionRecord
    created: bool  # False when the answer is an earlier commit (a retry, or if_changed)


def _not_found(what: str, **details: str) -> NotFound:
    return NotFound(f"{what} not found", details=details)


class Registry:
    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
        lineage_catch_up: Callable[[], None] | None = None,
    ):
        self.store = store
        self.blobs = blobs
        self.policy = policy or Policy()
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self._sleep = sleep
        self._on_retry = on_retry
        # lineage is recorded from events; the local server hands in a way to record what is pending
        # first, so that a lineage query there sees every write made before it
        self._lineage_catch_up = lineage_catch_up

    # ------------------------------------------------------------ logging a version

    def start_upload(
        self, project: str, name: str, request: StartUpload, caller: str | None = None
    ) -> UploadStarted | Committed:
        names.check_project(project)
        names.check_name(name)
        for ref in request.producer.inputs if request.producer else []:
            _input_ref(ref)
        entries = self._entries_of(request.files, request.remote)
        manifest.sort_entries(entries)  # a path listed twice is refused before anything is written
        if request.commit and request.if_changed:  # unchanged content: answer the version we have, one read
            unchanged = self._unchanged(project, name, manifest.digest(entries))
            if unchanged:
                return Committed(unchanged, created=False)
        missing, targets = self._missing_blobs(project, request.files)
        now = self.clock.now()
        upload = Upload(
            project=project,
            name=name,
            upload_id=self.ids.new_id(),
            type=request.type,
            created_at=now,
            expires_at=now + self.policy.upload_ttl,
            created_by=caller,
            metadata=request.metadata,
            tags=names.check_tags(request.tags),
            aliases=sorted(set(request.aliases)),
            version=request.version,
            bump=request.bump,
            producer=request.producer,
            if_changed=request.if_changed,
            entries=entries,
            missing=[sha for sha, _ in missing],
            multipart={t.sha256: t.multipart.upload_id for t in targets if t.multipart},
        )
        if request.commit and not missing:
            self.store.create_upload(upload)
            return self.commit(project, name, upload.upload_id, caller)
        self.store.create_upload(upload)
        return UploadStarted(upload_id=upload.upload_id, expires_at=upload.expires_at, missing=targets)

    def add_files(self, project: str, name: str, upload_id: str, request: AddFiles) -> FilesAdded:
        upload = self._pending_upload(project, name, upload_id, with_entries=False)
        entries = self._entries_of(request.files, request.remote)
        manifest.sort_entries(entries)
        missing, targets = self._missing_blobs(project, request.files)
        multipart = {t.sha256: t.multipart.upload_id for t in targets if t.multipart}
        try:
            # a batch is named by its content: a retried request replaces itself instead of adding its paths twice
            batch_id = manifest.digest(entries)
            self.store.add_upload_batch(
                project, upload.upload_id, batch_id, entries, [sha for sha, _ in missing], multipart
            )
        except UploadNotPending:
            raise Conflict(f"upload {upload_id} is no longer pending", code="upload_state") from None
        return FilesAdded(upload_id=upload_id, missing=targets)

    def complete_blob(self, project: str, name: str, upload_id: str, sha256: str, request: CompleteBlob) -> None:
        names.check_sha256(sha256)
        upload = self._pending_upload(project, name, upload_id, with_entries=True)
        multipart_id = upload.multipart.get(sha256)
        if multipart_id is None:
            raise _not_found(f"multipart upload of blob {sha256} in upload {upload_id}", sha256=sha256)
        self.blobs.complete_multipart(project, sha256, multipart_id, request.parts)

    def commit(self, project: str, name: str, upload_id: str, caller: str | None = None) -> Committed:
        upload = self._upload(project, name, upload_id, with_entries=True)
        if upload.state == "committed":
            return Committed(self._committed_version(upload), created=False)
        if upload.expires_at <= self.clock.now():
            raise Conflict(
                f"upload {upload_id} expired at {upload.expires_at.isoformat()}; start a new upload",
                code="upload_state",
            )
        entries = manifest.sort_entries(upload.entries)
        sizes = {e.sha256: e.size for e in entries if isinstance(e, FileEntry)}
        absent = self.blobs.verify(project, [(sha, sizes[sha]) for sha in sorted(set(upload.missing)) if sha in sizes])
        if absent:
            raise Conflict(
                f"{len(absent)} blob(s) are not stored with the stated size and SHA-256; upload them and commit again",
                code="blobs_missing",
                details={"missing": [{"sha256": sha, "size": size} for sha, size in absent]},
            )
        digest = manifest.digest(entries)
        draft = self._draft_version(upload, entries, digest, caller)

        def attempt(head: Head | None) -> Committed:
            if upload.if_changed and head and head.latest_digest == digest:
                unchanged = self._unchanged(project, name, digest)
                if unchanged:
                    return Committed(unchanged, created=False)
            change = self._commit_change(head, upload, draft)
            try:
                self.store.apply(change)
            except VersionTaken:
                raise Conflict(
                    f"version {change.new_version and change.new_version.version} of {name} exists already",
                    code="version_exists",
                    details={"version": change.new_version.version if change.new_version else None},
                ) from None
            except UploadNotPending:  # a concurrent retry of this same commit won
                return Committed(self._committed_version(self._upload(project, name, upload_id)), created=False)
            assert change.new_version is not None
            return Committed(change.new_version.to_record(), created=True)

        return self._with_retries(lambda: self.store.get_head(project, name), attempt)

    # ------------------------------------------------------------ reading

    def resolve(self, project: str, name: str, ref: str, at: datetime | None = None) -> StoredVersion:
        """A version from a version string or an alias (`latest` included); with `at`, an alias as it
        stood then. One store read, except for `at`."""
        names.check_project(project)
        names.check_name(name)
        if versions.is_version(ref):
            found = self.store.get_version(project, name, ref)
            what = f"version {ref} of {project}/{name}"
        else:
            names.check_alias(ref)
            what = f"alias {ref!r} of {project}/{name}"
            if at is None:
                found = self.store.get_alias(project, name, ref)
            else:
                move = self.store.alias_at(project, name, ref, at)
                if move is None or move.version is None:
                    raise _not_found(f"{what} at {at.isoformat()}", alias=ref)
                found = self.store.get_version(project, name, move.version)
        if found is None:
            raise _not_found(what, ref=ref)
        if found.state == "deleted":
            raise NotFound(f"{what} was deleted", details={"ref": ref, "version": found.version})
        return found

    def get_artifact(self, project: str, name: str) -> ArtifactSummary:
        return self._summary(self._head(project, name))

    def list_artifacts(
        self,
        project: str,
        *,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ArtifactPage:
        names.check_project(project)
        if type is not None:
            names.check_type(type)
        after = cursors.decode(cursor).get("after")
        limit = self._limit(limit)
        pages = self._scan(
            lambda after_name, n: self.store.list_heads(project, after_name, n),
            lambda h: h.name,
            after,
            limit,
        )
        items = [h for h in self._take(pages, limit, lambda h: type is None or h.type == type)]
        next_cursor = cursors.encode({"after": items[-1].name}) if len(items) == limit else None
        return ArtifactPage(items=[self._summary(h) for h in items], next_cursor=next_cursor)

    def list_versions(
        self,
        project: str,
        name: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        tag: str | None = None,
        alias: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> VersionPage:
        names.check_project(project)
        names.check_name(name)
        limit = self._limit(limit)
        if alias is not None:
            names.check_alias(alias)
            found = self.store.get_alias(project, name, alias)
            items = [found] if found and found.state == "committed" and self._matches(found, tag, metadata) else []
            if not items:
                self._head(project, name)
            return VersionPage(items=[v.to_record() for v in items], next_cursor=None)
        before = cursors.decode(cursor).get("before")
        pages = self._scan(
            lambda key, n: self.store.list_versions(project, name, key, n),
            lambda v: v.sort_key,
            before,
            limit,
        )
        found_versions = list(
            self._take(pages, limit, lambda v: v.state == "committed" and self._matches(v, tag, metadata))
        )
        if not found_versions and before is None:
            self._head(project, name)  # 404 for an artifact that does not exist
        next_cursor = cursors.encode({"before": found_versions[-1].sort_key}) if len(found_versions) == limit else None
        return VersionPage(items=[v.to_record() for v in found_versions], next_cursor=next_cursor)

    def list_files(
        self,
        project: str,
        name: str,
        ref: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> FilePage:
        version = self.resolve(project, name, ref)
        offset = self._offset(cursor)
        entries, more = self._entry_slice(version, offset, self._limit(limit))
        return FilePage(
            items=entries,
            next_cursor=cursors.encode({"offset": offset + len(entries)}) if more else None,
        )

    def download(
        self,
        project: str,
        name: str,
        ref: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DownloadPage:
        version = self.resolve(project, name, ref)
        offset = self._offset(cursor)
        entries, more = self._entry_slice(version, offset, min(self._limit(limit or self.policy.max_page), 1000))
        files = [
            DownloadFile(
                path=e.path,
                size=e.size,
                sha256=e.sha256,
                url=self.blobs.download_url(project, e.sha256, e.path),
            )
            for e in entries
            if isinstance(e, FileEntry)
        ]
        return DownloadPage(
            version=version.version,
            digest=version.digest,
            expires_at=self.clock.now() + self.policy.presign_ttl,
            files=files,
            remote=[e for e in entries if isinstance(e, RemoteEntry)],
            next_cursor=cursors.encode({"offset": offset + len(entries)}) if more else None,
        )

    def file_target(self, project: str, name: str, ref: str, path: str) -> tuple[StoredVersion, str | RemoteEntry]:
        """Where a file's bytes are: a URL to redirect to, or (for a non-HTTP remote entry) the entry."""
        names.check_path(path)
        version = self.resolve(project, name, ref)
        entry = self._find_entry(version, path)
        if entry is None:
            raise _not_found(f"file {path!r} in version {version.version} of {project}/{name}", path=path)
        if isinstance(entry, FileEntry):
            return version, self.blobs.download_url(project, entry.sha256, entry.path)
        if entry.uri.startswith(("http://", "https://")):
            return version, entry.uri
        return version, entry

    def alias_history(
        self,
        project: str,
        name: str,
        alias: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AliasHistory:
        names.check_project(project)
        names.check_name(name)
        names.check_alias(alias)
        before = cursors.decode(cursor).get("before")
        items, next_before = self.store.alias_history(project, name, alias, before, self._limit(limit))
        if not items and before is None:
            self._head(project, name)
        return AliasHistory(
            items=items,
            next_cursor=cursors.encode({"before": next_before}) if next_before else None,
        )

    # ------------------------------------------------------------ changing

    def move_alias(
        self, project: str, name: str, alias: str, request: MoveAlias, caller: str | None = None
    ) -> VersionRecord:
        """Points `alias` at a version, compare-and-swap when `expected_version` is in the request."""
        names.check_alias(alias)
        if alias == LATEST:
            raise Conflict("alias 'latest' is kept by the registry and cannot be moved", code="alias_conflict")
        check_expected = "expected_version" in request.model_fields_set

        def attempt(head: Head | None) -> VersionRecord:
            head = self._existing(head, project, name)
            current = head.aliases.get(alias)
            if check_expected and not _same_version(current, request.expected_version):
                raise PreconditionFailed(
                    f"alias {alias!r} points at {current or 'nothing'}, not {request.expected_version or 'nothing'}",
                    details={"alias": alias, "current_version": current},
                )
            target = self.resolve(project, name, request.version)
            if current == target.version:
                return target.to_record()
            if alias not in head.aliases and len(head.aliases) >= self.policy.max_aliases:
                raise Conflict(
                    f"{name} has {len(head.aliases)} aliases, the most an artifact may have",
                    code="alias_conflict",
                )
            now = self.clock.now()
            moved = target.model_copy(update={"aliases": sorted({*target.aliases, alias})})
            change = ArtifactChange(
                head=self._next_head(head, now, aliases={**head.aliases, alias: target.version}),
                expected_revision=head.revision,
                deltas=[VersionDelta(target.version, aliases_add={alias})]
                + ([VersionDelta(current, aliases_remove={alias})] if current else []),
                alias_puts={alias: moved},
                history=[
                    AliasMove(
                        alias=alias,
                        version=target.version,
                        previous_version=current,
                        at=now,
                        by=caller,
                    )
                ],
            )
            self.store.apply(change)
            return moved.to_record()

        return self._with_retries(lambda: self.store.get_head(project, name), attempt)

    def remove_alias(self, project: str, name: str, alias: str, caller: str | None = None) -> None:
        names.check_alias(alias)
        if alias == LATEST:
            raise Conflict(
                "alias 'latest' is kept by the registry and cannot be removed",
                code="alias_conflict",
            )

        def attempt(head: Head | None) -> None:
            head = self._existing(head, project, name)
            current = head.aliases.get(alias)
            if current is None:
                raise _not_found(f"alias {alias!r} of {project}/{name}", alias=alias)
            now = self.clock.now()
            self.store.apply(
                ArtifactChange(
                    head=self._next_head(head, now, aliases={a: v for a, v in head.aliases.items() if a != alias}),
                    expected_revision=head.revision,
                    deltas=[VersionDelta(current, aliases_remove={alias})],
                    alias_deletes=[alias],
                    history=[AliasMove(alias=alias, version=None, previous_version=current, at=now, by=caller)],
                )
            )

        self._with_retries(lambda: self.store.get_head(project, name), attempt)

    def patch_version(self, project: str, name: str, ref: str, request: PatchVersion) -> VersionRecord:
        def attempt(head: Head | None) -> VersionRecord:
            head = self._existing(head, project, name)
            version = self.resolve(project, name, ref)
            metadata = dict(version.metadata)
            for key, value in (request.metadata or {}).items():
                if value is None:
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            names.check_metadata(metadata)
            tags = names.check_tags(sorted((set(version.tags) | set(request.tags_add)) - set(request.tags_remove)))
            self.store.apply(
                ArtifactChange(
                    head=self._next_head(head, self.clock.now()),
                    expected_revision=head.revision,
                    deltas=[VersionDelta(version.version, tags=tags, metadata=metadata)],
                )
            )
            return version.model_copy(update={"metadata": metadata, "tags": tags}).to_record()

        return self._with_retries(lambda: self.store.get_head(project, name), attempt)

    def delete_version(
        self, project: str, name: str, ref: str, *, force: bool = False, caller: str | None = None
    ) -> VersionRecord:
        """Marks a version deleted; `latest` moves down to the highest live version left."""

        def attempt(head: Head | None) -> VersionRecord:
            head = self._existing(head, project, name)
            version = self.resolve(project, name, ref)
            held_by = sorted(a for a, v in head.aliases.items() if v == version.version and a != LATEST)
            if held_by and not force:
                raise Conflict(
                    f"version {version.version} is held by alias(es) {', '.join(held_by)}; "
                    "move them first or delete with ?force=true",
                    code="alias_conflict",
                    details={"aliases": held_by},
                )
            now = self.clock.now()
            removed = [a for a, v in head.aliases.items() if v == version.version]
            aliases = {a: v for a, v in head.aliases.items() if v != version.version}
            history = [
                AliasMove(alias=a, version=None, previous_version=version.version, at=now, by=caller) for a in removed
            ]
            deltas = [VersionDelta(version.version, aliases_remove=set(removed), deleted_at=now)]
            alias_puts: dict[str, StoredVersion] = {}
            latest, latest_digest = head.latest, head.latest_digest
            if head.latest == version.version:
                successor = self._highest_live(project, name, exclude=version.version)
                latest = successor.version if successor else None
                latest_digest = successor.digest if successor else None
                if successor:
                    aliases[LATEST] = successor.version
                    history[removed.index(LATEST)] = AliasMove(
                        alias=LATEST,
                        version=successor.version,
                        previous_version=version.version,
                        at=now,
                        by=caller,
                    )
                    deltas.append(VersionDelta(successor.version, aliases_add={LATEST}))
                    alias_puts[LATEST] = successor.model_copy(update={"aliases": sorted({*successor.aliases, LATEST})})
            self.store.apply(
                ArtifactChange(
                    head=self._next_head(
                        head,
                        now,
                        aliases=aliases,
                        latest=latest,
                        latest_digest=latest_digest,
                        version_count=head.version_count - 1,
                    ),
                    expected_revision=head.revision,
                    deltas=deltas,
                    alias_puts=alias_puts,
                    alias_deletes=[a for a in removed if a not in alias_puts],
                    history=history,
                )
            )
            return version.model_copy(update={"state": "deleted", "deleted_at": now, "aliases": []}).to_record()

        return self._with_retries(lambda: self.store.get_head(project, name), attempt)

    def record_usage(self, project: str, name: str, ref: str, request: Usage) -> UsageRecord:
        version = self.resolve(project, name, ref)
        usage = UsageRecord(
            project=project,
            name=name,
            version=version.version,
            run_id=request.run_id,
            pipeline=request.pipeline,
            step=request.step,
            at=self.clock.now(),
            digest=version.digest,
        )
        self.store.put_usage(usage)
        return usage

    # ------------------------------------------------------------ lineage

    def lineage(
        self,
        project: str,
        name: str,
        ref: str,
        *,
        direction: str = "both",
        depth: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> LineageGraph:
        """The runs and versions around a version: upstream, the run that produced it and the versions
        that run used, and so on; downstream, the runs that used it and the versions they produced.
        `depth` counts runs away from the version; `limit` bounds the neighbours taken of each node (a
        node with more is `truncated`); `cursor` pages through the neighbours of the version itself."""
        if direction not in ("upstream", "downstream", "both"):
            raise Invalid("direction is upstream, downstream or both", details={"field": "direction"})
        depth = self.policy.lineage_depth if depth is None else depth
        if not 1 <= depth <= self.policy.max_lineage_depth:
            raise Invalid(f"depth must be between 1 and {self.policy.max_lineage_depth}", details={"field": "depth"})
        fan_out = self._limit(limit)
        position = cursors.decode(cursor)
        if self._lineage_catch_up:
            self._lineage_catch_up()
        root = self.resolve(project, name, ref)
        graph = _Graph(self.store, project, fan_out, self.policy.max_lineage_nodes)
        graph.version(root.name, root.version)
        following: dict[str, str] = {}
        for way in ("upstream", "downstream"):
            if direction not in (way, "both") or (position and way not in position):
                continue  # not asked for, or the root's neighbours that way ended on an earlier page
            after = position.get(way)
            more = graph.walk(root.name, root.version, way, depth, after if isinstance(after, str) else None)
            if more:
                following[way] = more
        return LineageGraph(
            root=_version_id(root.name, root.version),
            nodes=list(graph.nodes.values()),
            edges=list(graph.edges.values()),
            next_cursor=cursors.encode(following) if following else None,
        )

    def run(self, project: str, run_id: str, *, limit: int | None = None, cursor: str | None = None) -> RunLineage:
        """What a run produced and used, `name@version` each, a page of up to `limit` of them together."""
        names.check_project(project)
        names.check_run_id(run_id)
        after = cursors.decode(cursor).get("after")
        if self._lineage_catch_up:
            self._lineage_catch_up()
        edges, more = self.store.run_edges(project, run_id, None, after, self._limit(limit))
        if not edges and not after:
            raise _not_found(f"run {run_id!r} of project {project}", run_id=run_id)
        return RunLineage(
            run_id=run_id,
            produced=[_version_id(e.name, e.version) for e in edges if e.kind == "produced"],
            used=[_version_id(e.name, e.version) for e in edges if e.kind == "used"],
            next_cursor=cursors.encode({"after": more}) if more else None,
        )

    # ------------------------------------------------------------ helpers

    def _with_retries(self, read_head: Callable[[], Head | None], attempt: Callable[[Head | None], T]) -> T:
        """Runs `attempt` from a fresh head until it is not beaten to the write by another writer.
        A lost race hands back the current head, so a retry reads nothing again (full jitter)."""
        deadline = time.monotonic() + self.policy.commit_deadline_s
        head = read_head()
        for tries in range(1_000_000):
            try:
                return attempt(head)
            except HeadMoved as moved:
                head = moved.current
            if self._on_retry:
                self._on_retry()
            if time.monotonic() >= deadline:
                break
            self._sleep(jittered(tries, self.policy.backoff_base_s, self.policy.backoff_cap_s))
        raise Retryable("too many concurrent changes to this artifact; retry shortly")

    def _commit_change(self, head: Head | None, upload: Upload, draft: StoredVersion) -> ArtifactChange:
        now = draft.created_at
        if head is None:
            head = Head(
                project=upload.project,
                name=upload.name,
                type=upload.type,
                created_at=now,
                updated_at=now,
            )
        elif head.type != upload.type:
            raise Conflict(
                f"{upload.project}/{upload.name} is of type {head.type!r}, not {upload.type!r}",
                code="type_mismatch",
                details={"type": head.type},
            )
        number = upload.version or versions.bump(head.highest_release, upload.bump or "major")
        moving = list(upload.aliases)
        latest = versions.higher(head.latest, number)
        if latest == number:
            moving.append(LATEST)
        if len(set(head.aliases) | set(moving)) > self.policy.max_aliases:
            raise Conflict(
                f"an artifact may have at most {self.policy.max_aliases} aliases",
                code="alias_conflict",
            )
        deltas: dict[str, VersionDelta] = {}
        for alias in moving:
            previous = head.aliases.get(alias)
            if previous and previous != number:
                deltas.setdefault(previous, VersionDelta(previous)).aliases_remove.add(alias)
        new_version = draft.model_copy(update={"version": number, "aliases": sorted(moving)})
        highest = versions.higher(head.highest_release, number) if versions.is_release(number) else head.highest_release
        return ArtifactChange(
            head=self._next_head(
                head,
                now,
                aliases={**head.aliases, **dict.fromkeys(moving, number)},
                latest=latest,
                latest_digest=draft.digest if latest == number else head.latest_digest,
                highest_release=highest,
                version_count=head.version_count + 1,
            ),
            expected_revision=head.revision,
            new_version=new_version,
            deltas=list(deltas.values()),
            alias_puts=dict.fromkeys(moving, new_version),
            history=[
                AliasMove(
                    alias=a,
                    version=number,
                    previous_version=head.aliases.get(a),
                    at=now,
                    by=draft.created_by,
                )
                for a in moving
            ],
            commit_upload=upload.upload_id,
        )

    @staticmethod
    def _next_head(head: Head, now: datetime, **changes: Any) -> Head:
        return head.model_copy(update={"revision": head.revision + 1, "updated_at": now, **changes})

    def _draft_version(self, upload: Upload, entries: list[Entry], digest: str, caller: str | None) -> StoredVersion:
        """The version record of an upload, all but its number; a manifest too large for the record
        goes to the blob store in chunks, under its digest."""
        files = [e for e in entries if isinstance(e, FileEntry)]
        remote = [e for e in entries if isinstance(e, RemoteEntry)]
        inline_files, inline_remote = (
            files[: self.policy.inline_entries],
            remote[: self.policy.inline_entries],
        )
        while len(json.dumps([e.model_dump() for e in inline_files + inline_remote])) > self.policy.inline_bytes:
            inline_files, inline_remote = (
                inline_files[: len(inline_files) // 2],
                inline_remote[: len(inline_remote) // 2],
            )
        truncated = len(inline_files) < len(files) or len(inline_remote) < len(remote)
        external: ManifestRef | None = None
        if truncated:
            size = self.policy.chunk_entries
            parts = [entries[i : i + size] for i in range(0, len(entries), size)]
            self.blobs.put_manifest(upload.project, digest, parts)
            external = ManifestRef(chunk_size=size, count=len(entries), first_paths=[part[0].path for part in parts])
        return StoredVersion(
            project=upload.project,
            name=upload.name,
            type=upload.type,
            version="0.0.0",
            created_at=self.clock.now(),
            created_by=caller,
            tags=upload.tags,
            metadata=upload.metadata,
            producer=self._producer_record(upload.project, upload.producer),
            files=inline_files,
            remote=inline_remote,
            files_truncated=truncated,
            size=sum(e.size for e in files),
            file_count=len(files),
            digest=digest,
            manifest=external,
        )

    def _producer_record(self, project: str, producer: Producer | None) -> dict[str, Any] | None:
        """The producer of a version as it is recorded: its inputs resolved to `name@version` now, at
        commit, so that lineage says which versions the run used, wherever their aliases move later."""
        if producer is None:
            return None
        resolved: dict[str, None] = {}
        for ref in producer.inputs:
            input_name, at = _input_ref(ref)
            if versions.is_version(at):
                found = self.store.get_version(project, input_name, at)  # a deleted version was still used
            else:
                found = self.store.get_alias(project, input_name, at)
            if found is None:
                raise Invalid(
                    f"producer.inputs: {ref!r} names no version of {project}/{input_name}",
                    details={"field": "producer.inputs", "input": ref},
                )
            resolved[_version_id(found.name, found.version)] = None
        return {**producer.model_dump(), "inputs": list(resolved)}

    def _entries_of(self, files: Sequence[FileEntry], remote: Sequence[RemoteSpec]) -> list[Entry]:
        sizes: dict[str, int] = {}
        for f in files:
            if sizes.setdefault(f.sha256, f.size) != f.size:
                raise Invalid(f"blob {f.sha256} is listed with two sizes", details={"sha256": f.sha256})
        return [*files, *(self.blobs.pin_remote(spec) for spec in remote)]

    def _missing_blobs(
        self, project: str, files: Sequence[FileEntry]
    ) -> tuple[list[tuple[str, int]], list[MissingBlob]]:
        blobs = sorted({(f.sha256, f.size) for f in files})
        missing = self.blobs.find_missing(project, blobs) if blobs else []
        return missing, self.blobs.upload_targets(project, missing) if missing else []

    def _upload(self, project: str, name: str, upload_id: str, with_entries: bool = True) -> Upload:
        names.check_project(project)
        names.check_name(name)
        upload = self.store.get_upload(project, upload_id, with_entries) if _looks_like_id(upload_id) else None
        if upload is None or upload.name != name:
            raise _not_found(f"upload {upload_id[:64]!r} of {project}/{name}", upload_id=upload_id[:64])
        return upload

    def _pending_upload(self, project: str, name: str, upload_id: str, with_entries: bool) -> Upload:
        upload = self._upload(project, name, upload_id, with_entries)
        if upload.state != "pending" or upload.expires_at <= self.clock.now():
            raise Conflict(
                f"upload {upload_id} is {upload.state if upload.state != 'pending' else 'expired'}",
                code="upload_state",
            )
        return upload

    def _committed_version(self, upload: Upload) -> VersionRecord:
        assert upload.version is not None
        found = self.store.get_version(upload.project, upload.name, upload.version)
        if found is None:  # committed items are written in one transaction with the upload's state
            raise Retryable(f"version {upload.version} of upload {upload.upload_id} is not readable yet")
        return found.to_record()

    def _unchanged(self, project: str, name: str, digest: str) -> VersionRecord | None:
        latest = self.store.get_alias(project, name, LATEST)
        return latest.to_record() if latest and latest.digest == digest else None

    def _head(self, project: str, name: str) -> Head:
        names.check_project(project)
        names.check_name(name)
        return self._existing(self.store.get_head(project, name), project, name)

    @staticmethod
    def _existing(head: Head | None, project: str, name: str) -> Head:
        if head is None:
            raise _not_found(f"artifact {project}/{name}", project=project, name=name)
        return head

    def _highest_live(self, project: str, name: str, exclude: str) -> StoredVersion | None:
        pages = self._scan(
            lambda key, n: self.store.list_versions(project, name, key, n),
            lambda v: v.sort_key,
            None,
            10,  # the next version down is nearly always live
        )
        return next(self._take(pages, 1, lambda v: v.state == "committed" and v.version != exclude), None)

    @staticmethod
    def _summary(head: Head) -> ArtifactSummary:
        return ArtifactSummary(
            project=head.project,
            name=head.name,
            type=head.type,
            latest=head.latest,
            version_count=head.version_count,
            aliases={a: v for a, v in sorted(head.aliases.items()) if a != LATEST},
            created_at=head.created_at,
            updated_at=head.updated_at,
        )

    @staticmethod
    def _matches(version: StoredVersion, tag: str | None, metadata: dict[str, str] | None) -> bool:
        if tag is not None and tag not in version.tags:
            return False
        return all(
            key in version.metadata and names.metadata_scalar(version.metadata[key]) == value
            for key, value in (metadata or {}).items()
        )

    def _limit(self, limit: int | None) -> int:
        if limit is None:
            return self.policy.default_page
        if not 1 <= limit <= self.policy.max_page:
            raise Invalid(f"limit must be between 1 and {self.policy.max_page}", details={"field": "limit"})
        return limit

    @staticmethod
    def _offset(cursor: str | None) -> int:
        offset = cursors.decode(cursor).get("offset", 0)
        if not isinstance(offset, int) or offset < 0:
            raise Invalid(
                "cursor is not one this API handed out; start again without it",
                details={"field": "cursor"},
            )
        return offset

    @staticmethod
    def _scan(
        fetch: Callable[[Any, int], list[T]],
        position: Callable[[T], Any],
        start: Any,
        first: int,
        batch: int = 100,
    ) -> Iterator[T]:
        """Every item of a store listing from `start` on: first the `first` a page needs when nothing is
        filtered out (a page of 10 reads 10 items, not a batch), then in batches."""
        size = first
        while True:
            items = fetch(start, size)
            yield from items
            if len(items) < size:
                return
            start = position(items[-1])
            size = max(first, batch)

    @staticmethod
    def _take(items: Iterator[T], limit: int, keep: Callable[[T], bool]) -> Iterator[T]:
        """The first `limit` items kept, reading no further than the last of them."""
        taken = 0
        for item in items:
            if keep(item):
                yield item
                taken += 1
                if taken == limit:
                    return

    def _entry_slice(self, version: StoredVersion, offset: int, limit: int) -> tuple[list[Entry], bool]:
        """Entries [offset, offset+limit) in path order, and whether any come after them."""
        if version.manifest is None:
            everything: list[Entry] = sorted([*version.files, *version.remote], key=lambda e: e.path)
            return everything[offset : offset + limit], offset + limit < len(everything)
        chunk_size, total = version.manifest.chunk_size, version.manifest.count
        page: list[Entry] = []
        position = offset
        while len(page) < limit and position < total:
            chunk = self.blobs.get_manifest_chunk(version.project, version.digest, position // chunk_size)
            taken = chunk[position % chunk_size :][: limit - len(page)]
            if not taken:
                break
            page += taken
            position += len(taken)
        return page, position < total

    def _find_entry(self, version: StoredVersion, path: str) -> Entry | None:
        if version.manifest is None:
            candidates: Sequence[Entry] = [*version.files, *version.remote]
        else:
            index = bisect.bisect_right(version.manifest.first_paths, path) - 1
            if index < 0:
                return None
            candidates = self.blobs.get_manifest_chunk(version.project, version.digest, index)
        return next((e for e in candidates if e.path == path), None)


def _same_version(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return versions.sort_key(a) == versions.sort_key(b)


def _looks_like_id(value: str) -> bool:
    return 1 <= len(value) <= 64 and value.isalnum()


def _input_ref(ref: str) -> tuple[str, str]:
    """A producer's input, `NAME@VERSION` or `NAME@ALIAS` (`NAME` alone: `latest`) of the same project."""
    input_name, _, at = ref.partition("@")
    try:
        names.check_name(input_name)
        if not versions.is_version(at or LATEST):
            names.check_alias(at or LATEST)
    except Invalid:
        raise Invalid(
            f"producer.inputs: {ref[:300]!r} is not NAME@VERSION or NAME@ALIAS of this project",
            details={"field": "producer.inputs", "input": ref[:300]},
        ) from None
    return input_name, at or LATEST


def _version_id(name: str, version: str) -> str:
    return f"{name}@{version}"


def _run_id(run_id: str) -> str:
    return f"run:{run_id}"


class _Graph:
    """A lineage graph as it is walked: nodes and edges by id, each node's neighbours read once."""

    def __init__(self, store: MetadataStore, project: str, fan_out: int, max_nodes: int):
        self.store = store
        self.project = project
        self.fan_out = fan_out
        self.max_nodes = max_nodes
        self.nodes: dict[str, GraphNode] = {}
        self.edges: dict[tuple[str, str, str], GraphEdge] = {}

    def version(self, name: str, version: str) -> str:
        node_id = _version_id(name, version)
        self.nodes.setdefault(node_id, GraphNode(id=node_id, kind="version", name=name, version=version))
        return node_id

    def run(self, edge: LineageEdge) -> str:
        """The run's node; its pipeline and step from the first of its edges that names them."""
        node_id = _run_id(edge.run_id)
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = GraphNode(id=node_id, kind="run", run_id=edge.run_id)
        if node.pipeline is None and node.step is None and (edge.pipeline or edge.step):
            self.nodes[node_id] = node.model_copy(update={"pipeline": edge.pipeline, "step": edge.step})
        return node_id

    def link(self, edge: LineageEdge) -> tuple[str, str]:
        run, version = self.run(edge), self.version(edge.name, edge.version)
        self.edges.setdefault((run, version, edge.kind), GraphEdge(from_=run, to=version, kind=edge.kind))
        return run, version

    def truncate(self, node_id: str) -> None:
        self.nodes[node_id] = self.nodes[node_id].model_copy(update={"truncated": True})

    def walk(self, name: str, version: str, way: str, depth: int, after: str | None) -> str | None:
        """Walks `depth` runs away from a version, upstream or downstream; answers the position after the
        version's own last neighbour taken, when it has more."""
        # upstream: version <- produced by run <- used by that run; downstream: the other way round
        into_version, out_of_run = ("produced", "used") if way == "upstream" else ("used", "produced")
        root = _version_id(name, version)
        frontier, seen, root_more = [(name, version)], {root}, None
        walked_runs: set[str] = set()
        for _ in range(depth):
            reached: list[tuple[str, str]] = []
            for at_name, at_version in frontier:
                at_id = _version_id(at_name, at_version)
                if len(self.nodes) >= self.max_nodes:
                    self.truncate(at_id)
                    continue
                start = after if at_id == root else None
                runs, more = self.store.version_edges(
                    self.project, at_name, at_version, into_version, start, self.fan_out
                )
                if more:
                    self.truncate(at_id)
                    root_more = more if at_id == root else root_more
                for run_edge in runs:
                    run_id, _ = self.link(run_edge)
                    if run_edge.run_id in walked_runs:
                        continue
                    walked_runs.add(run_edge.run_id)
                    made, run_more = self.store.run_edges(self.project, run_edge.run_id, out_of_run, None, self.fan_out)
                    if run_more:
                        self.truncate(run_id)
                    for edge in made:
                        _, reached_id = self.link(edge)
                        if reached_id not in seen:
                            seen.add(reached_id)
                            reached.append((edge.name, edge.version))
            frontier = reached
        return root_more
