"""Reading the registry: resolving a reference, the lists of artifacts, versions and files, a
version's download, and an alias's history. Nothing here writes."""

from __future__ import annotations

from datetime import datetime

from artreg.model import names, versions
from artreg.model.errors import Invalid, NotFound
from artreg.model.wire import (
    AliasHistory,
    ArtifactPage,
    ArtifactSummary,
    DownloadFile,
    DownloadPage,
    FileEntry,
    FilePage,
    ProjectPage,
    ProjectSummary,
    RemoteEntry,
    VersionPage,
)
from artreg.registry import cursors, manifests, paging
from artreg.registry.context import Context, existing, not_found
from artreg.registry.keys import MovePosition
from artreg.registry.records import Head, StoredVersion

LATEST = names.LATEST


class Queries:
    def __init__(self, context: Context):
        self.c = context

    def resolve(self, project: str, name: str, ref: str, at: datetime | None = None) -> StoredVersion:
        """A version from a version string or an alias (`latest` included); with `at`, an alias as it
        stood then. One store read, except for `at`."""
        names.check_project(project)
        names.check_name(name)
        store = self.c.store
        if versions.is_version(ref):
            found = store.get_version(project, name, ref)
            what = f"version {ref} of {project}/{name}"
        else:
            names.check_alias(ref)
            what = f"alias {ref!r} of {project}/{name}"
            if at is None:
                found = store.get_alias(project, name, ref)
            else:
                move = store.alias_at(project, name, ref, at)
                if move is None or move.version is None:
                    raise not_found(f"{what} at {at.isoformat()}", alias=ref)
                found = store.get_version(project, name, move.version)
        if found is None:
            raise not_found(what, ref=ref)
        if found.state == "deleted":
            raise NotFound(f"{what} was deleted", details={"ref": ref, "version": found.version})
        return found

    def get_artifact(self, project: str, name: str) -> ArtifactSummary:
        return _summary(self.head(project, name))

    def list_projects(self, *, limit: int | None = None, cursor: str | None = None) -> ProjectPage:
        """The projects that hold an artifact, in name order (beyond API.md: the web UI lists them)."""
        after = cursors.decode(cursor, cursors.AfterProject).after
        if after is not None and not isinstance(after, str):
            raise Invalid("cursor is not one this API handed out; start again without it", details={"field": "cursor"})
        limit = paging.limit(self.c.policy, limit)
        projects = self.c.store.list_projects(after, limit)
        next_cursor = cursors.encode({"after": projects[-1]}) if len(projects) == limit else None
        return ProjectPage(items=[ProjectSummary(project=p) for p in projects], next_cursor=next_cursor)

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
        after = cursors.decode(cursor, cursors.AfterName).after
        limit = paging.limit(self.c.policy, limit)
        pages = paging.scan(
            lambda after_name, n: self.c.store.list_heads(project, after_name, n),
            lambda h: h.name,
            after,
            limit,
        )
        items = [h for h in paging.take(pages, limit, lambda h: type is None or h.type == type)]
        next_cursor = cursors.encode({"after": items[-1].name}) if len(items) == limit else None
        return ArtifactPage(items=[_summary(h) for h in items], next_cursor=next_cursor)

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
        limit = paging.limit(self.c.policy, limit)
        if alias is not None:
            names.check_alias(alias)
            found = self.c.store.get_alias(project, name, alias)
            items = [found] if found and found.state == "committed" and _matches(found, tag, metadata) else []
            if not items:
                self.head(project, name)
            return VersionPage(items=[v.to_record() for v in items], next_cursor=None)
        before = cursors.decode(cursor, cursors.BeforeVersion).before
        pages = paging.scan(
            lambda key, n: self.c.store.list_versions(project, name, key, n),
            lambda v: v.sort_key,
            before,
            limit,
        )
        found_versions = list(
            paging.take(pages, limit, lambda v: v.state == "committed" and _matches(v, tag, metadata))
        )
        if not found_versions and before is None:
            self.head(project, name)  # 404 for an artifact that does not exist
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
        offset = paging.offset(cursor)
        entries, more = manifests.entry_slice(self.c.blobs, version, offset, paging.limit(self.c.policy, limit))
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
        offset = paging.offset(cursor)
        policy = self.c.policy
        size = min(paging.limit(policy, limit or policy.max_page), 1000)
        entries, more = manifests.entry_slice(self.c.blobs, version, offset, size)
        files = [
            DownloadFile(
                path=e.path,
                size=e.size,
                sha256=e.sha256,
                url=self.c.blobs.download_url(project, e.sha256, e.path, e.size),
            )
            for e in entries
            if isinstance(e, FileEntry)
        ]
        return DownloadPage(
            version=version.version,
            digest=version.digest,
            expires_at=self.c.clock.now() + policy.presign_ttl,
            files=files,
            remote=[e for e in entries if isinstance(e, RemoteEntry)],
            next_cursor=cursors.encode({"offset": offset + len(entries)}) if more else None,
            bundles=self.c.blobs.download_bundles(project, [(f.sha256, f.size) for f in files]),
        )

    def file_target(self, project: str, name: str, ref: str, path: str) -> tuple[StoredVersion, str | RemoteEntry]:
        """Where a file's bytes are: a URL to redirect to, or (for a non-HTTP remote entry) the entry."""
        names.check_path(path)
        version = self.resolve(project, name, ref)
        entry = manifests.find_entry(self.c.blobs, version, path)
        if entry is None:
            raise not_found(f"file {path!r} in version {version.version} of {project}/{name}", path=path)
        if isinstance(entry, FileEntry):
            return version, self.c.blobs.download_url(project, entry.sha256, entry.path, entry.size)
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
        before = cursors.decode(cursor, cursors.BeforeMove).before
        items, next_before = self.c.store.alias_history(
            project, name, alias, MovePosition.parse(before) if before else None, paging.limit(self.c.policy, limit)
        )
        if not items and before is None:
            self.head(project, name)
        return AliasHistory(
            items=items,
            next_cursor=cursors.encode({"before": next_before.text()}) if next_before else None,
        )

    # ------------------------------------------------------------ reads the writers share

    def head(self, project: str, name: str) -> Head:
        names.check_project(project)
        names.check_name(name)
        return existing(self.c.store.get_head(project, name), project, name)

    def highest_live(self, project: str, name: str, exclude: str) -> StoredVersion | None:
        pages = paging.scan(
            lambda key, n: self.c.store.list_versions(project, name, key, n),
            lambda v: v.sort_key,
            None,
            10,  # the next version down is nearly always live
        )
        return next(paging.take(pages, 1, lambda v: v.state == "committed" and v.version != exclude), None)


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


def _matches(version: StoredVersion, tag: str | None, metadata: dict[str, str] | None) -> bool:
    if tag is not None and tag not in version.tags:
        return False
    return all(
        key in version.metadata and names.metadata_scalar(version.metadata[key]) == value
        for key, value in (metadata or {}).items()
    )
