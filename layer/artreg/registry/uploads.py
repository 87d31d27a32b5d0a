"""Logging a version: an upload is started with its manifest, given more files in batches, its
multipart blobs completed, then committed as the next version (or the one asked for)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from artreg.model import manifest, multipart, names, versions
from artreg.model.errors import Conflict, Forbidden, Invalid, Retryable, TooLarge
from artreg.model.manifest import Entry
from artreg.model.wire import (
    AddFiles,
    AliasMove,
    CompleteBlob,
    FileEntry,
    FilesAdded,
    LinkTarget,
    MissingBlob,
    Producer,
    RemoteSpec,
    Stage,
    Staging,
    StartUpload,
    UploadStarted,
    VersionRecord,
)
from artreg.registry import manifests, rebase
from artreg.registry.changes import Retrier
from artreg.registry.context import Context, not_found
from artreg.registry.links import Links, check_links, target_gone
from artreg.registry.ports import TargetGone, UploadNotPending, VersionTaken
from artreg.registry.records import (
    ArtifactChange,
    Head,
    ManifestRef,
    StoredLink,
    StoredVersion,
    UnsettledBlob,
    Upload,
    VersionDelta,
    version_id,
)
from artreg.registry.verifying import check_stored

LATEST = names.LATEST
_VERIFY_BATCH = 1000


@dataclass(frozen=True)
class Committed:
    record: VersionRecord
    created: bool  # False when the answer is an earlier commit (a retry, or if_changed)


class Uploads:
    def __init__(self, context: Context, retrier: Retrier, links: Links):
        self.c = context
        self.retrier = retrier
        self.links = links

    def start_upload(
        self, project: str, name: str, request: StartUpload, caller: str | None = None
    ) -> UploadStarted | Committed:
        names.check_project(project)
        names.check_name(name)
        for ref in request.producer.inputs if request.producer else []:
            _input_ref(ref)
        self._check_protected(request.aliases)
        if request.version is not None:  # before any byte is sent
            self._check_version_free(project, name, request.version)
        check_links(request.links)
        for ref in request.links.values():  # 404 before anything is written; pinned again at commit
            self.links.pin(project, ref)
        entries = self._entries_of(request.files, request.remote)
        ordered = manifest.sort_entries(entries)  # a path listed twice is refused before anything is written
        base = None
        if request.base is not None:
            base = rebase.base_version(self.c.store, project, name, request.base)
            rebase.check_changes(self.c.blobs, base, request.remove, ordered)
        if request.commit and request.if_changed:  # unchanged content: answer the version we have
            unchanged = self._unchanged_upload(project, name, base, request.remove, ordered)
            if unchanged:
                return Committed(unchanged, created=False)
        self._check_batch(entries)
        missing, targets = self._missing_blobs(project, request.files)
        now = self.c.clock.now()
        upload = Upload(
            project=project,
            name=name,
            upload_id=self.c.ids.new_id(),
            type=request.type,
            created_at=now,
            expires_at=now + self.c.policy.upload_ttl,
            created_by=caller,
            metadata=request.metadata,
            tags=names.check_tags(request.tags),
            aliases=sorted(set(request.aliases)),
            version=request.version,
            bump=request.bump,
            producer=request.producer,
            links=dict(request.links),
            if_changed=request.if_changed,
            base=request.base,
            remove=sorted(request.remove),
            entries=entries,
            missing=[sha for sha, _ in missing],
            multipart={t.sha256: t.multipart.upload_id for t in targets if t.multipart},
        )
        if request.commit and not missing:
            self.c.store.create_upload(upload)
            return self.commit(project, name, upload.upload_id, caller)
        self.c.store.create_upload(upload)
        return UploadStarted(
            upload_id=upload.upload_id,
            expires_at=upload.expires_at,
            missing=targets,
            bundles=self.c.blobs.upload_bundles(project, missing),
        )

    def add_files(self, project: str, name: str, upload_id: str, request: AddFiles) -> FilesAdded:
        upload = self._pending_upload(project, name, upload_id, with_entries=False)
        entries = self._entries_of(request.files, request.remote)
        manifest.sort_entries(entries)
        rebase.check_disjoint(set(upload.remove), entries)
        self._check_batch(entries)
        missing, targets = self._missing_blobs(project, request.files)
        multipart = {t.sha256: t.multipart.upload_id for t in targets if t.multipart}
        try:
            # a batch is named by its content: a retried request replaces itself instead of adding its paths twice
            batch_id = manifest.digest(entries)
            self.c.store.add_upload_batch(
                project, upload.upload_id, batch_id, entries, [sha for sha, _ in missing], multipart
            )
        except UploadNotPending:
            raise Conflict(f"upload {upload_id} is no longer pending", code="upload_state") from None
        return FilesAdded(upload_id=upload_id, missing=targets, bundles=self.c.blobs.upload_bundles(project, missing))

    def stage(self, project: str, request: Stage) -> Staging:
        """URLs to send files before their SHA-256 is known, where the store offers them (see `local.staging`)."""
        names.check_project(project)
        return Staging(staging=self.c.blobs.staging_targets(project, request.sizes))

    def complete_blob(self, project: str, name: str, upload_id: str, sha256: str, request: CompleteBlob) -> bool:
        """Completes a multipart blob; True if it is verified now, False if its verification goes on
        after this answer (the commit waits for it: `blobs_verifying`)."""
        names.check_sha256(sha256)
        upload = self._pending_upload(project, name, upload_id, with_entries=True)
        multipart_id = upload.multipart.get(sha256)
        if multipart_id is None:
            raise not_found(f"multipart upload of blob {sha256} in upload {upload_id}", sha256=sha256)
        return self.c.blobs.complete_multipart(project, sha256, multipart_id, request.parts)

    def commit(self, project: str, name: str, upload_id: str, caller: str | None = None) -> Committed:
        upload, parts = self._upload_parts(project, name, upload_id)
        if upload.state == "committed":
            return Committed(self._committed_version(upload), created=False)
        if upload.expires_at <= self.c.clock.now():
            raise Conflict(
                f"upload {upload_id} expired at {upload.expires_at.isoformat()}; start a new upload",
                code="upload_state",
            )
        self._check_protected(upload.aliases)  # the setting may have changed since the upload started
        if upload.version is not None:  # taken meanwhile: that, not the blobs, is what the caller must fix
            self._check_version_free(project, name, upload.version)
        missing = set(upload.missing)
        upload = upload.model_copy(update={"missing": []})  # the one list of them is `missing` from here
        try:
            source, sizes = manifests.in_path_order(parts, missing)
        except Invalid as error:  # two batches listed one path: the stored upload, not this request, is at fault
            raise Conflict(f"{error.message} (in two batches); start a new upload", code="upload_state") from None
        if upload.base:  # the changes are few enough to hold (at most what the client sent)
            base = rebase.committable(self.c.store, project, name, upload.base)
            source = self._source(base, upload.remove, list(source()))
        check_stored(self._verify(project, missing, sizes), self.c.clock.now(), self.c.policy.verify_window)
        del missing, sizes  # a blob a file: not held through the pass over the manifest
        summary = self._summary(source, chunks=True)
        digest = summary.digest
        try:
            draft = self._draft_version(upload, summary, caller)
        finally:
            assert summary.chunks is not None
            summary.chunks.close()
        targets = {role: self.links.pin(project, ref) for role, ref in sorted(upload.links.items())}

        def attempt(head: Head | None) -> Committed:
            if upload.if_changed and head and head.latest_digest == digest:
                unchanged = self._unchanged(project, name, digest)
                if unchanged:
                    return Committed(unchanged, created=False)
            change = self._commit_change(head, upload, draft, targets)
            try:
                self.c.store.apply(change)
            except TargetGone as gone:
                raise target_gone(gone) from None
            except VersionTaken:
                raise _version_exists(name, change.new_version.version if change.new_version else None) from None
            except UploadNotPending:  # a concurrent retry of this same commit won
                return Committed(self._committed_version(self._upload(project, name, upload_id)), created=False)
            assert change.new_version is not None
            return Committed(change.new_version.to_record(), created=True)

        return self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    # ------------------------------------------------------------ helpers

    def _check_protected(self, aliases: Sequence[str]) -> None:
        """The one rule of protected aliases: an upload never moves one (the alias routes do)."""
        protected = sorted(set(aliases) & self.c.policy.protected_aliases)
        if protected:
            raise Forbidden(
                f"alias {protected[0]!r} is protected: an upload may not move it; log the version, then "
                f"PUT .../aliases/{protected[0]} with a role allowed to",
                details={"aliases": protected},
            )

    def _check_version_free(self, project: str, name: str, version: str) -> None:
        """An explicit version that exists (deleted or not; build metadata aside) is refused at once."""
        if self.c.store.get_version(project, name, version) is not None:
            raise _version_exists(name, version)

    def _commit_change(
        self, head: Head | None, upload: Upload, draft: StoredVersion, targets: dict[str, LinkTarget]
    ) -> ArtifactChange:
        now = draft.created_at
        max_aliases = self.c.limits.max_aliases
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
        if len(set(head.aliases) | set(moving)) > max_aliases:
            raise Conflict(f"an artifact may have at most {max_aliases} aliases", code="alias_conflict")
        deltas: dict[str, VersionDelta] = {}
        for alias in moving:
            previous = head.aliases.get(alias)
            if previous and previous != number:
                deltas.setdefault(previous, VersionDelta(previous)).aliases_remove.add(alias)
        links = [
            StoredLink(
                project=upload.project,
                name=upload.name,
                version=number,
                digest=draft.digest,
                role=role,
                target=target,
                at=now,
                by=draft.created_by,
                revision=head.revision + 1,
            )
            for role, target in targets.items()
        ]
        new_version = draft.model_copy(
            update={
                "version": number,
                "aliases": sorted(moving),
                "links": [link.to_wire() for link in links],  # a few (MAX_COMMIT_LINKS): all inline
                "link_count": len(links),
            }
        )
        highest = versions.higher(head.highest_release, number) if versions.is_release(number) else head.highest_release
        return ArtifactChange(
            head=head.next(
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
            links_set=links,
        )

    def _source(self, base: StoredVersion | None, remove: Sequence[str], ordered: list[Entry]) -> rebase.Source:
        """The new version's manifest in path order: the upload's entries, or those merged into its base."""
        if base is None:
            return lambda: iter(ordered)
        return rebase.merged(self.c.blobs, base, remove, ordered)

    def _summary(self, source: rebase.Source, *, chunks: bool = False) -> manifests.Summary:
        return manifests.summarise(source(), self.c.policy.inline_entries, self.c.policy.chunk_entries, chunks=chunks)

    def _draft_version(self, upload: Upload, summary: manifests.Summary, caller: str | None) -> StoredVersion:
        """The version record of an upload, all but its number; a manifest too large for the record
        goes to the blob store in the summary's chunks, under its digest."""
        digest = summary.digest
        inline_files, inline_remote = summary.files, summary.remote
        while len(json.dumps([e.model_dump() for e in inline_files + inline_remote])) > self.c.limits.record_bytes:
            inline_files, inline_remote = (
                inline_files[: len(inline_files) // 2],
                inline_remote[: len(inline_remote) // 2],
            )
        remote_count = summary.count - summary.file_count
        truncated = len(inline_files) < summary.file_count or len(inline_remote) < remote_count
        external: ManifestRef | None = None
        if truncated:
            assert summary.chunks is not None
            self.c.blobs.put_manifest(upload.project, digest, summary.chunks)
            external = ManifestRef(
                chunk_size=summary.chunks.chunk_size, count=summary.count, first_paths=summary.first_paths
            )
        return StoredVersion(
            project=upload.project,
            name=upload.name,
            type=upload.type,
            version="0.0.0",
            created_at=self.c.clock.now(),
            created_by=caller,
            tags=upload.tags,
            metadata=upload.metadata,
            producer=self._producer_record(upload.project, upload.producer),
            files=inline_files,
            remote=inline_remote,
            files_truncated=truncated,
            size=summary.size,
            file_count=summary.file_count,
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
                found = self.c.store.get_version(project, input_name, at)  # a deleted version was still used
            else:
                found = self.c.store.get_alias(project, input_name, at)
            if found is None:
                raise Invalid(
                    f"producer.inputs: {ref!r} names no version of {project}/{input_name}",
                    details={"field": "producer.inputs", "input": ref},
                )
            resolved[version_id(found.name, found.version)] = None
        return {**producer.model_dump(), "inputs": list(resolved)}

    def _check_batch(self, entries: Sequence[Entry]) -> None:
        """The entries of one request, as a store keeps them, within what the store holds."""
        size, limit = len(manifest.pack(entries)), self.c.limits.batch_bytes
        if size > limit:
            raise TooLarge(
                f"this batch of {len(entries)} entries is too large to store ({size} bytes compressed); "
                "send the files in smaller batches",
                details={"limit": limit},
            )

    def _entries_of(self, files: Sequence[FileEntry], remote: Sequence[RemoteSpec]) -> list[Entry]:
        sizes: dict[str, int] = {}
        for f in files:
            if sizes.setdefault(f.sha256, f.size) != f.size:
                raise Invalid(f"blob {f.sha256} is listed with two sizes", details={"sha256": f.sha256})
        return [*files, *(self.c.blobs.pin_remote(spec) for spec in remote)]

    def _missing_blobs(
        self, project: str, files: Sequence[FileEntry]
    ) -> tuple[list[tuple[str, int]], list[MissingBlob]]:
        blobs = sorted({(f.sha256, f.size) for f in files})
        missing = self.c.blobs.find_missing(project, blobs) if blobs else []
        self._check_urls(missing)
        return missing, self.c.blobs.upload_targets(project, missing) if missing else []

    def _check_urls(self, missing: Sequence[tuple[str, int]]) -> None:
        """An answer lists every URL of every missing blob: past `MAX_URLS` it would not fit in what a
        Lambda returns (a 5xx), so such a request is refused before a multipart upload is opened."""
        count, limit = sum(self.c.blobs.url_count(size) for _, size in missing), multipart.MAX_URLS
        if count > limit:
            raise TooLarge(
                f"the missing blobs of this request need {count} upload URLs, more than one answer carries "
                f"({limit}); offer fewer large files per request",
                details={"limit": limit, "count": count},
            )

    def _upload(self, project: str, name: str, upload_id: str, with_entries: bool = True) -> Upload:
        names.check_project(project)
        names.check_name(name)
        upload = self.c.store.get_upload(project, upload_id, with_entries) if _looks_like_id(upload_id) else None
        if upload is None or upload.name != name:
            raise not_found(f"upload {upload_id[:64]!r} of {project}/{name}", upload_id=upload_id[:64])
        return upload

    def _verify(self, project: str, missing: set[str], sizes: dict[str, int]) -> list[UnsettledBlob]:
        """The upload's blobs not stored as stated, asked a thousand at a time (a first log of 100,000
        files has as many)."""
        ordered = sorted(missing)
        unsettled: list[UnsettledBlob] = []
        for start in range(0, len(ordered), _VERIFY_BATCH):
            shas = ordered[start : start + _VERIFY_BATCH]
            unsettled += self.c.blobs.verify(project, [(sha, sizes[sha]) for sha in shas if sha in sizes])
        return unsettled

    def _upload_parts(self, project: str, name: str, upload_id: str) -> tuple[Upload, list[Callable[[], list[Entry]]]]:
        names.check_project(project)
        names.check_name(name)
        found = self.c.store.get_upload_parts(project, upload_id) if _looks_like_id(upload_id) else None
        if found is None or found[0].name != name:
            raise not_found(f"upload {upload_id[:64]!r} of {project}/{name}", upload_id=upload_id[:64])
        return found

    def _pending_upload(self, project: str, name: str, upload_id: str, with_entries: bool) -> Upload:
        upload = self._upload(project, name, upload_id, with_entries)
        if upload.state != "pending" or upload.expires_at <= self.c.clock.now():
            raise Conflict(
                f"upload {upload_id} is {upload.state if upload.state != 'pending' else 'expired'}",
                code="upload_state",
            )
        return upload

    def _committed_version(self, upload: Upload) -> VersionRecord:
        assert upload.version is not None
        found = self.c.store.get_version(upload.project, upload.name, upload.version)
        if found is None:  # committed items are written in one transaction with the upload's state
            raise Retryable(f"version {upload.version} of upload {upload.upload_id} is not readable yet")
        return found.to_record()

    def _unchanged_upload(
        self, project: str, name: str, base: StoredVersion | None, remove: Sequence[str], ordered: list[Entry]
    ) -> VersionRecord | None:
        """`latest` if the manifest of an upload that holds all its entries is latest's. From a base,
        a pass over the base's manifest is made only when the base is not latest and the changes alter
        it: else the digest is the base's (no change), or differs from latest's (the base's)."""
        latest = self.c.store.get_alias(project, name, LATEST)
        if latest is None:
            return None
        if base is None:
            digest = manifest.digest(ordered)
        elif not rebase.alters(self.c.blobs, base, remove, ordered):
            digest = base.digest
        elif latest.digest == base.digest:
            return None
        else:
            digest = self._summary(self._source(base, remove, ordered)).digest
        return latest.to_record() if latest.digest == digest else None

    def _unchanged(self, project: str, name: str, digest: str) -> VersionRecord | None:
        latest = self.c.store.get_alias(project, name, LATEST)
        return latest.to_record() if latest and latest.digest == digest else None


def _version_exists(name: str, version: str | None) -> Conflict:
    return Conflict(f"version {version} of {name} exists already", code="version_exists", details={"version": version})


def _looks_like_id(value: str) -> bool:
    return 1 <= len(value) <= 64 and value.isalnum()


def _input_ref(ref: str) -> tuple[str, str]:
    """A producer's input, `NAME@VERSION` or `NAME@ALIAS` (`NAME` alone: `latest`) of the same project."""
    return names.check_ref(ref, what="producer.inputs:", field="producer.inputs", key="input")
