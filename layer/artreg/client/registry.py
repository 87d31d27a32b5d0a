"""The SDK: `Registry`, a client of one project of a registry (local or deployed); `Artifact`, what to
log; `LoggedArtifact`, a committed version (its record) with what can be done with it.

    reg = Registry("http://127.0.0.1:8080", project="vision")
    art = Artifact("resnet", type="model", metadata={"framework": "pytorch"}, aliases={"staging"})
    art.add("./model.pt")
    logged = reg.log_artifact(art, bump="minor", run_id="run-42")
    reg.get_artifact("resnet", "production").download("./model-dir")
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, PrivateAttr, ValidationError

from artreg.client import progress as bars
from artreg.client.errors import Invalid, NotFound
from artreg.client.files import HashedFile, LocalFile, batches, default_workers, hash_files, walk
from artreg.client.http import RetryPolicy, Transport
from artreg.client.sigv4 import SigV4Signer, region_of, wants_sigv4
from artreg.client.transfer import BlobCache, Downloader, DownloadStats, upload_blobs
from artreg.model import manifest
from artreg.model.names import check_name, check_path, check_project, check_type, check_uri, metadata_scalar
from artreg.model.wire import (
    MAX_FILES_PER_REQUEST,
    AddFiles,
    AliasHistory,
    AliasMove,
    ArtifactPage,
    ArtifactSummary,
    CompleteBlob,
    DownloadPage,
    FileEntry,
    FilePage,
    FilesAdded,
    GraphEdge,
    GraphNode,
    LineageGraph,
    MissingBlob,
    MoveAlias,
    Part,
    PatchVersion,
    Producer,
    RemoteEntry,
    RemoteSpec,
    RunLineage,
    StartUpload,
    UploadStarted,
    Usage,
    VersionPage,
    VersionRecord,
)

log = logging.getLogger("artreg")
DEFAULT_URL = "http://127.0.0.1:8080"
LATEST = "latest"
W = TypeVar("W", bound=BaseModel)
P = TypeVar("P", ArtifactPage, VersionPage, FilePage, AliasHistory, DownloadPage, RunLineage)
Bump = Literal["major", "minor", "patch"]
_RENEW_BEFORE = timedelta(seconds=60)  # refetch a download page whose URLs expire sooner than this


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


def _q(segment: str) -> str:
    # '+' stays as is: it is a legal path character, and a version's build metadata holds it
    return quote(segment, safe="+")


def _wire(cls: type[W], **fields: Any) -> W:
    """A wire model built here, its validation errors raised as `Invalid` before anything is sent."""
    try:
        return cls(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "not valid")).removeprefix("Value error, ")
        raise Invalid(f"{where}: {message}" if where else message, details={"field": where}) from None


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: an optional field left out is not sent as null."""
    return {k: v for k, v in fields.items() if v is not None}


def _dump(model: BaseModel) -> dict[str, Any]:
    # unset fields stay out: for MoveAlias an absent expected_version is not a null one
    return model.model_dump(mode="json", exclude_unset=True)


def split_ref(name: str, ref: str | None = None) -> tuple[str, str]:
    """`("resnet@production", None)` and `("resnet", "production")` both give ("resnet", "production");
    no ref means `latest`."""
    if ref is None and "@" in name:
        name, _, ref = name.partition("@")
    return check_name(name), ref or LATEST


def _env_flag(name: str, default: bool = True) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    version: str
    digest: str
    downloaded: int  # files written from bytes fetched
    from_cache: int  # files taken from the local cache
    skipped: int  # files already in place
    bytes: int  # bytes fetched
    remote: list[RemoteEntry] = field(default_factory=list)  # references, never downloaded


# ---------------------------------------------------------------- what to log


class Artifact:
    """A version to log: files and folders (`add`), references to data elsewhere (`add_remote`),
    metadata, aliases to point at it and tags."""

    def __init__(
        self,
        name: str,
        type: str = "artifact",
        *,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> None:
        self.name = check_name(name)
        self.type = check_type(type)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.aliases: set[str] = set(aliases)
        self.tags: set[str] = set(tags)
        self.sources: list[tuple[str, str | None]] = []
        self.remote: list[RemoteSpec] = []

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, sources={len(self.sources)}, remote={len(self.remote)})"

    def add(self, local_path: str | os.PathLike[str], path: str | None = None) -> Artifact:
        """Adds a file (logged as `path`, or under its own name) or a folder (its files recursively,
        with their paths relative to it, under `path` when given). Read when the artifact is logged."""
        source = os.path.abspath(os.fspath(local_path))
        if not os.path.exists(source):
            raise FileNotFoundError(f"{local_path}: no such file or directory")
        logical = path.strip("/") if path else None
        self.sources.append((source, check_path(logical) if logical else None))
        return self

    def add_remote(self, uri: str, path: str | None = None, *, metadata: Mapping[str, Any] | None = None) -> Artifact:
        """Adds a reference to data that stays where it is (`s3://...`, `https://...`, any URI),
        logged as `path` (by default the last segment of the URI's path)."""
        check_uri(uri)
        if path is None:
            path = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
            if not path:
                raise Invalid(f"cannot name remote entry {uri!r} from its URI: give path=", details={"field": "path"})
        self.remote.append(_wire(RemoteSpec, uri=uri, path=check_path(path), metadata=dict(metadata or {})))
        return self

    def local_files(self) -> list[LocalFile]:
        """Every file that `add` named, walked now; a path given twice (file or remote) is refused."""
        files = [file for source, path in self.sources for file in walk(source, path)]
        counts = Counter([f.path for f in files] + [r.path for r in self.remote])
        twice = sorted(p for p, n in counts.items() if n > 1)
        if twice:
            raise Invalid(
                f"path {twice[0][:200]!r} is added twice" + (f" (and {len(twice) - 1} more)" if len(twice) > 1 else ""),
                details={"field": "path", "paths": twice[:20]},
            )
        return files


# ---------------------------------------------------------------- the client


class Registry:
    """A client of one project of a registry. `url` is the local server's (`artreg server`) or a
    deployed stack's API URL, ARTREG_URL by default; requests to a host under `.amazonaws.com` (or
    with `sigv4=True`) are signed with SigV4 from the ordinary AWS credential chain. Thread-safe."""

    def __init__(
        self,
        url: str | None = None,
        project: str | None = None,
        *,
        sigv4: bool | None = None,
        region: str | None = None,
        credentials: Any = None,
        workers: int | None = None,
        progress: bool | None = None,
        cache: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        transport: Transport | None = None,
    ) -> None:
        url = url or os.environ.get("ARTREG_URL") or DEFAULT_URL
        project = project or os.environ.get("ARTREG_PROJECT")
        if not project:
            raise Invalid("no project: pass project= or set ARTREG_PROJECT", details={"field": "project"})
        self.url = url.rstrip("/")
        self.project = check_project(project)
        self.workers = max(1, workers or default_workers())
        self.progress = progress
        if transport is None:
            signer = None
            if sigv4 or (sigv4 is None and wants_sigv4(url)):
                signer = SigV4Signer(region or region_of(url), credentials)
            transport = Transport(url, signer=signer, retry=retry, maxsize=max(10, self.workers), timeout=timeout)
        self.transport = transport
        use_cache = _env_flag("ARTREG_CACHE") if cache is None else cache
        self.cache = BlobCache(cache_dir or BlobCache.default_dir()) if use_cache else None

    def __repr__(self) -> str:
        return f"Registry({self.url!r}, project={self.project!r})"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ paths and calls

    def _artifacts(self) -> str:
        return f"/v1/projects/{_q(self.project)}/artifacts"

    def _artifact(self, name: str) -> str:
        return f"{self._artifacts()}/{_q(check_name(name))}"

    def _version(self, name: str, ref: str) -> str:
        return f"{self._artifact(name)}/versions/{_q(ref)}"

    def _call(
        self, method: str, path: str, body: BaseModel | None = None, query: Sequence[tuple[str, str]] | None = None
    ) -> Any:
        return self.transport.json(method, path, body=None if body is None else _dump(body), query=query)

    def _bind(self, data: Any) -> LoggedArtifact:
        logged = LoggedArtifact.model_validate(data)
        logged._registry = self
        return logged

    def _pages(
        self, kind: type[P], path: str, query: Sequence[tuple[str, str]] = (), page_size: int | None = None
    ) -> Iterator[P]:
        cursor: str | None = None
        while True:
            params = list(query)
            if page_size:
                params.append(("limit", str(page_size)))
            if cursor:
                params.append(("cursor", cursor))
            page = kind.model_validate(self._call("GET", path, query=params))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # ------------------------------------------------------------ reading

    def list_artifacts(self, type: str | None = None, *, page_size: int | None = None) -> Iterator[ArtifactSummary]:
        """The project's artifacts, every page."""
        query = [("type", type)] if type else []
        for page in self._pages(ArtifactPage, self._artifacts(), query, page_size):
            yield from page.items

    def artifact(self, name: str) -> ArtifactSummary:
        """An artifact's summary: type, latest version, version count, aliases."""
        return ArtifactSummary.model_validate(self._call("GET", self._artifact(name)))

    def versions(
        self,
        name: str,
        *,
        tag: str | None = None,
        alias: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        page_size: int | None = None,
    ) -> Iterator[LoggedArtifact]:
        """Versions, highest precedence first, every page; `metadata` keeps those whose top-level
        key equals the value (compared as API.md says: a non-string as its JSON text)."""
        query = [("tag", tag)] if tag else []
        query += [("alias", alias)] if alias else []
        query += [(f"metadata.{k}", metadata_scalar(v)) for k, v in (metadata or {}).items()]
        for page in self._pages(VersionPage, f"{self._artifact(name)}/versions", query, page_size):
            for item in page.items:
                yield self._bind(item.model_dump())

    def get_artifact(self, name: str, version_or_alias: str | None = None) -> LoggedArtifact:
        """A version by version or alias (`latest` by default); `name` may be `name@ref`."""
        name, ref = split_ref(name, version_or_alias)
        return self._bind(self._call("GET", self._version(name, ref)))

    def files(
        self, name: str, ref: str | None = None, *, page_size: int | None = None
    ) -> Iterator[FileEntry | RemoteEntry]:
        """A version's file and remote entries in path order, every page."""
        name, ref = split_ref(name, ref)
        for page in self._pages(FilePage, f"{self._version(name, ref)}/files", (), page_size):
            yield from page.items

    def alias_history(self, name: str, alias: str, *, page_size: int | None = None) -> Iterator[AliasMove]:
        """Every move of an alias, newest first."""
        path = f"{self._artifact(name)}/aliases/{_q(alias)}/history"
        for page in self._pages(AliasHistory, path, (), page_size):
            yield from page.items

    def lineage(
        self,
        name: str,
        version_or_alias: str | None = None,
        *,
        direction: Literal["upstream", "downstream", "both"] = "both",
        depth: int | None = None,
        limit: int | None = None,
    ) -> LineageGraph:
        """The runs and versions around a version (`name` may be `name@ref`): upstream, the run that
        produced it and what that run used, and so on; downstream, the runs that used it and what they
        produced. `depth` counts runs away (3 by default, at most 10). Every page of the version's own
        neighbours is fetched; a deeper node with more neighbours than `limit` says `truncated`."""
        name, ref = split_ref(name, version_or_alias)
        query: list[tuple[str, str]] = [("direction", direction)]
        query += [("depth", str(depth))] if depth is not None else []
        query += [("limit", str(limit))] if limit is not None else []
        nodes: dict[str, GraphNode] = {}
        edges: dict[tuple[str, str, str], GraphEdge] = {}
        root = ""
        cursor: str | None = None
        while True:
            page = LineageGraph.model_validate(
                self._call(
                    "GET", f"{self._version(name, ref)}/lineage", query=query + ([("cursor", cursor)] if cursor else [])
                )
            )
            root = page.root
            for node in page.nodes:
                nodes[node.id] = node if node.truncated or node.id not in nodes else nodes[node.id]
            edges.update(((e.from_, e.to, e.kind), e) for e in page.edges)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
            ref = root.rpartition("@")[2]  # the later pages of the version the first resolved to
        if cursor:  # every neighbour of the root is in now
            nodes[root] = nodes[root].model_copy(update={"truncated": False})
        return LineageGraph(root=root, nodes=list(nodes.values()), edges=list(edges.values()))

    def run(self, run_id: str, *, page_size: int | None = None) -> RunLineage:
        """What a run produced and used (`name@version` refs), every page."""
        produced: list[str] = []
        used: list[str] = []
        path = f"/v1/projects/{_q(self.project)}/runs/{quote(run_id, safe='')}"
        for page in self._pages(RunLineage, path, (), page_size):
            produced += page.produced
            used += page.used
        return RunLineage(run_id=run_id, produced=produced, used=used)

    # ------------------------------------------------------------ changing

    def set_alias(
        self, name: str, alias: str, version: str, *, expected_version: str | _Unset | None = UNSET
    ) -> LoggedArtifact:
        """Points `alias` at `version`. With `expected_version` the move happens only if the alias
        still points there (`PreconditionFailed` otherwise); `expected_version=None`: only if the
        alias does not exist yet."""
        fields: dict[str, Any] = {"version": version}
        if not isinstance(expected_version, _Unset):
            fields["expected_version"] = expected_version
        body = _wire(MoveAlias, **fields)
        return self._bind(self._call("PUT", f"{self._artifact(name)}/aliases/{_q(alias)}", body))

    def remove_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", f"{self._artifact(name)}/aliases/{_q(alias)}")

    def update(
        self,
        name: str,
        ref: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        tags_add: Iterable[str] = (),
        tags_remove: Iterable[str] = (),
    ) -> LoggedArtifact:
        """One PATCH: merges `metadata` (a key set to None is removed), adds and removes tags."""
        name, ref = split_ref(name, ref)
        fields: dict[str, Any] = {"tags_add": list(tags_add), "tags_remove": list(tags_remove)}
        if metadata is not None:
            fields["metadata"] = dict(metadata)
        return self._bind(self._call("PATCH", self._version(name, ref), _wire(PatchVersion, **fields)))

    def tag(self, name: str, ref: str | None, *tags: str) -> LoggedArtifact:
        return self.update(name, ref, tags_add=tags)

    def untag(self, name: str, ref: str | None, *tags: str) -> LoggedArtifact:
        return self.update(name, ref, tags_remove=tags)

    def update_metadata(self, name: str, ref: str | None, metadata: Mapping[str, Any]) -> LoggedArtifact:
        return self.update(name, ref, metadata=metadata)

    def delete_version(self, name: str, version: str, force: bool = False) -> LoggedArtifact:
        """Marks a version deleted; `Conflict` while an alias other than `latest` holds it, unless
        `force` (which removes those aliases)."""
        query = [("force", "true")] if force else None
        return self._bind(self._call("DELETE", self._version(name, version), query=query))

    def use_artifact(
        self,
        ref: str,
        version_or_alias: str | None = None,
        *,
        run_id: str | None = None,
        pipeline: str | None = None,
        step: str | None = None,
    ) -> LoggedArtifact:
        """Resolves `name@ref` and records that the run used that version (lineage). `run_id`
        defaults to ARTREG_RUN_ID."""
        name, ref = split_ref(ref, version_or_alias)
        run_id = run_id or os.environ.get("ARTREG_RUN_ID")
        if not run_id:
            raise Invalid("use_artifact needs a run_id (or ARTREG_RUN_ID)", details={"field": "run_id"})
        usage = _wire(Usage, **_given(run_id=run_id, pipeline=pipeline, step=step))
        logged = self.get_artifact(name, ref)
        self._call("POST", f"{self._version(name, logged.version)}/usages", usage)
        return logged

    # ------------------------------------------------------------ logging

    def log_artifact(
        self,
        artifact: Artifact,
        *,
        version: str | None = None,
        bump: Bump | None = None,
        run_id: str | None = None,
        pipeline: str | None = None,
        step: str | None = None,
        inputs: Iterable[str | LoggedArtifact] = (),
        if_changed: bool = False,
        progress: bool | None = None,
    ) -> LoggedArtifact:
        """Logs a new version: hashes the files, offers them in batches of 1,000, uploads the blobs
        the registry lacks (each distinct content once), commits. Content the registry already holds
        logs in one request with no bytes sent. `run_id` defaults to ARTREG_RUN_ID; `inputs` are
        the `name@version` refs the run consumed."""
        shown = self.progress if progress is None else progress
        run_id = run_id or os.environ.get("ARTREG_RUN_ID")
        used = [item.ref if isinstance(item, LoggedArtifact) else str(item) for item in inputs]
        producer = None
        if run_id:
            producer = _wire(Producer, **_given(run_id=run_id, pipeline=pipeline, step=step, inputs=used))
        elif pipeline or step or used:
            raise Invalid("pipeline, step and inputs describe a run: give run_id too", details={"field": "run_id"})
        if version is not None and bump is not None:
            raise Invalid("give either version or bump, not both", details={"field": "version"})

        local = artifact.local_files()
        hashed = self._hash(local, shown)
        entries = [_wire(FileEntry, path=f.path, size=f.size, sha256=f.sha256) for f in hashed]
        parts = batches(entries, artifact.remote)
        if if_changed and len(parts) > 1 and not artifact.remote:
            # over one request of files, ask first: one GET instead of a batch a thousand files
            unchanged = self._latest_if_digest(artifact.name, manifest.digest(entries))
            if unchanged is not None:
                return unchanged
        first_files, first_remote = parts[0]
        start = _wire(
            StartUpload,
            type=artifact.type,
            files=first_files,
            remote=first_remote,
            metadata=artifact.metadata,
            tags=sorted(artifact.tags),
            aliases=sorted(artifact.aliases),
            version=version,
            bump=bump,
            producer=producer,
            commit=len(parts) == 1,
            if_changed=if_changed,
        )
        base = f"{self._artifact(artifact.name)}/uploads"
        answer = self._call("POST", base, start)
        if isinstance(answer, dict) and answer.get("state") == "committed":
            return self._bind(answer)
        started = UploadStarted.model_validate(answer)
        upload = f"{base}/{_q(started.upload_id)}"
        # the last target of a blob wins: a later batch may have opened a new multipart upload for it
        missing: dict[str, MissingBlob] = {m.sha256: m for m in started.missing}
        for files, remote in parts[1:]:
            added = FilesAdded.model_validate(
                self._call("POST", f"{upload}/files", _wire(AddFiles, files=files, remote=remote))
            )
            missing.update((m.sha256, m) for m in added.missing)

        if missing:
            sources: dict[str, HashedFile] = {}
            for file in hashed:
                sources.setdefault(file.sha256, file)

            def complete(sha256: str, blob_parts: list[Part]) -> None:
                try:
                    self._call("POST", f"{upload}/blobs/{sha256}/complete", _wire(CompleteBlob, parts=blob_parts))
                except NotFound:
                    # a completion retried after it succeeded finds no multipart upload; commit checks the blob
                    log.debug("multipart upload of %s is already completed", sha256)

            bar = bars.bar(sum(m.size for m in missing.values()), f"upload {artifact.name}", shown)
            try:
                upload_blobs(
                    self.transport,
                    list(missing.values()),
                    sources,
                    complete=complete,
                    workers=self.workers,
                    progress=bar,
                )
            finally:
                bar.close()
        return self._bind(self._call("POST", f"{upload}/commit"))

    def _latest_if_digest(self, name: str, digest: str) -> LoggedArtifact | None:
        """`latest` if its manifest digest is `digest`, as the server answers `if_changed`. Only for
        stored files: the digest of a remote entry holds what the server pins of it."""
        try:
            latest = self.get_artifact(name, "latest")
        except NotFound:
            return None
        return latest if latest.digest == digest else None

    def _hash(self, files: Sequence[LocalFile], shown: bool | None) -> list[HashedFile]:
        if not bars.enabled(shown):
            return hash_files(files, workers=self.workers)
        total = 0
        for file in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(file.source)
        bar = bars.bar(total, "hash", shown)
        try:
            return hash_files(files, workers=self.workers, on_bytes=bar.update)
        finally:
            bar.close()

    # ------------------------------------------------------------ downloading

    def download(
        self,
        name: str,
        ref: str | None = None,
        root: str | os.PathLike[str] = ".",
        *,
        workers: int | None = None,
        cache: bool | None = None,
        progress: bool | None = None,
    ) -> DownloadResult:
        """Downloads a version's stored files into the folder `root` (remote entries are listed in
        the result, not fetched). Pages of up to 1,000 files (one API call each), all checked before
        a byte is written; files fetched in parallel, verified, through the local cache."""
        name, ref = split_ref(name, ref)
        page_size = [("limit", str(MAX_FILES_PER_REQUEST))]
        first = DownloadPage.model_validate(self._call("GET", f"{self._version(name, ref)}/download", query=page_size))
        # the later pages of the version the first resolved to, should the alias move meanwhile
        path = f"{self._version(name, first.version)}/download"
        pages: list[tuple[str | None, DownloadPage]] = [(None, first)]
        cursor = first.next_cursor
        while cursor:
            page = DownloadPage.model_validate(self._call("GET", path, query=[*page_size, ("cursor", cursor)]))
            if page.digest != first.digest:
                raise Invalid(f"{name}@{first.version} changed while it was listed", code="version_changed")
            pages.append((cursor, page))
            cursor = page.next_cursor

        use_cache = self.cache is not None if cache is None else cache
        downloader = Downloader(
            self.transport.get_blob,
            cache=(self.cache or BlobCache(BlobCache.default_dir())) if use_cache else None,
            workers=workers or self.workers,
            retry=self.transport.retry,
        )
        for _, page in pages:
            downloader.plan(root, page.files)  # every path checked before anything is written
        total = sum(f.size for _, page in pages for f in page.files)
        stats = DownloadStats()
        bar = bars.bar(total, f"download {name}@{first.version}", self.progress if progress is None else progress)
        try:
            for page_cursor, page in pages:
                expires = page.expires_at if page.expires_at.tzinfo else page.expires_at.replace(tzinfo=UTC)
                if expires - datetime.now(UTC) < _RENEW_BEFORE:
                    query = [*page_size, *([("cursor", page_cursor)] if page_cursor else [])]
                    page = DownloadPage.model_validate(self._call("GET", path, query=query))
                    downloader.plan(root, page.files)
                done = downloader.download(root, page.files, bar)
                stats.downloaded += done.downloaded
                stats.from_cache += done.from_cache
                stats.skipped += done.skipped
                stats.bytes += done.bytes
        finally:
            bar.close()
        return DownloadResult(
            path=Path(os.path.realpath(root)),
            version=first.version,
            digest=first.digest,
            downloaded=stats.downloaded,
            from_cache=stats.from_cache,
            skipped=stats.skipped,
            bytes=stats.bytes,
            remote=[entry for _, page in pages for entry in page.remote],
        )


# ---------------------------------------------------------------- a logged version


class LoggedArtifact(VersionRecord):
    """A committed version: its record (API.md, Version record) and what can be done with it. Up to
    1,000 files and remote entries are inline (`files`, `remote`); `iter_files()` pages through all."""

    _registry: Registry | None = PrivateAttr(default=None)

    def __repr__(self) -> str:
        return f"LoggedArtifact({self.ref!r}, type={self.type!r}, files={self.file_count}, digest={self.digest[:12]!r})"

    def __str__(self) -> str:
        return repr(self)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise Invalid("this version record is not bound to a Registry")
        return self._registry

    def iter_files(self) -> Iterator[FileEntry | RemoteEntry]:
        if not self.files_truncated:
            entries: list[FileEntry | RemoteEntry] = [*self.files, *self.remote]
            yield from sorted(entries, key=lambda e: e.path)
        else:
            yield from self.registry.files(self.name, self.version)

    def download(
        self,
        root: str | os.PathLike[str] = ".",
        *,
        workers: int | None = None,
        cache: bool | None = None,
        progress: bool | None = None,
    ) -> DownloadResult:
        """Downloads this version's stored files into `root`; remote entries stay in `self.remote`."""
        return self.registry.download(self.name, self.version, root, workers=workers, cache=cache, progress=progress)

    def use(self, run_id: str | None = None, *, pipeline: str | None = None, step: str | None = None) -> LoggedArtifact:
        return self.registry.use_artifact(self.name, self.version, run_id=run_id, pipeline=pipeline, step=step)

    def set_alias(self, alias: str, *, expected_version: str | _Unset | None = UNSET) -> LoggedArtifact:
        return self.registry.set_alias(self.name, alias, self.version, expected_version=expected_version)

    def tag(self, *tags: str) -> LoggedArtifact:
        return self.registry.tag(self.name, self.version, *tags)

    def untag(self, *tags: str) -> LoggedArtifact:
        return self.registry.untag(self.name, self.version, *tags)

    def update_metadata(self, metadata: Mapping[str, Any]) -> LoggedArtifact:
        return self.registry.update_metadata(self.name, self.version, metadata)

    def delete(self, force: bool = False) -> LoggedArtifact:
        return self.registry.delete_version(self.name, self.version, force=force)

    def refresh(self) -> LoggedArtifact:
        return self.registry.get_artifact(self.name, self.version)
