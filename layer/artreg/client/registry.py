"""The SDK's client: `Registry`, a client of one project of a registry (local or deployed).

    reg = Registry("http://127.0.0.1:8080", project="vision")
    art = Artifact("resnet", type="model", metadata={"framework": "pytorch"}, aliases={"staging"})
    art.add("./model.pt")
    logged = reg.log_artifact(art, bump="minor", run_id="run-42")
    reg.get_artifact("resnet", "production").download("./model-dir")

Names: `ref` is a version or an alias (`latest` when left out), and `name` may carry it as
`name@ref`, or be an `artreg://PROJECT/NAME@REF` URI (of this project or another); `version` is a
version only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from artreg.client import fetch, lineage, objects, upload
from artreg.client import links as links_api
from artreg.client.artifact import Artifact
from artreg.client.common import UNSET, _Unset, given, renamed, segment, split_ref, wire
from artreg.client.errors import Invalid, NotFound
from artreg.client.files import default_workers
from artreg.client.hashcache import HashCache
from artreg.client.http import RetryPolicy, Transport
from artreg.client.links import RunSummary, split_links
from artreg.client.logged import DownloadResult, LoggedArtifact
from artreg.client.manifests import ManifestCache
from artreg.client.model_version import ModelVersion, for_role, model_version
from artreg.client.settings import ClientSettings, load_settings
from artreg.client.sigv4 import SigV4Signer, region_of, wants_sigv4
from artreg.client.transfer import BlobCache
from artreg.client.uris import is_uri, parse_uri
from artreg.model.names import check_name, check_project, metadata_scalar
from artreg.model.wire import (
    MAX_COMMIT_LINKS,
    AliasHistory,
    AliasMove,
    ArtifactPage,
    ArtifactSummary,
    DownloadPage,
    FileEntry,
    FilePage,
    LineageGraph,
    LinkedByPage,
    LinkPage,
    MoveAlias,
    PatchVersion,
    Producer,
    RemoteEntry,
    RunLineage,
    RunPage,
    Usage,
    VersionPage,
)

log = logging.getLogger("artreg")
P = TypeVar(
    "P", ArtifactPage, VersionPage, FilePage, AliasHistory, DownloadPage, RunLineage, LinkPage, LinkedByPage, RunPage
)
Bump = Literal["major", "minor", "patch"]


def _dump(model: BaseModel) -> dict[str, Any]:
    # unset fields stay out: for MoveAlias an absent expected_version is not a null one
    return model.model_dump(mode="json", exclude_unset=True)


# ---------------------------------------------------------------- the client


class Registry:
    """A client of one project of a registry. `url` is the local server's (`artreg server`) or a
    deployed stack's API URL; requests to a host under `.amazonaws.com` (or with `sigv4=True`) are
    signed with SigV4 from the ordinary AWS credential chain. Thread-safe.

    What is not given here comes from `settings`, by default `load_settings()`: the `ARTREG_*`
    environment variables, then the config file (see `artreg.client.settings`)."""

    def __init__(
        self,
        url: str | None = None,
        project: str | None = None,
        *,
        settings: ClientSettings | None = None,
        sigv4: bool | None = None,
        region: str | None = None,
        credentials: Any = None,
        workers: int | None = None,
        progress: bool | None = None,
        cache: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        transport: Transport | None = None,
    ) -> None:
        explicit: dict[str, Any] = {
            "url": url,
            "project": project,
            "workers": workers,
            "progress": progress,
            "cache": cache,
            "cache_dir": cache_dir,
            "timeout": timeout,
        }
        self.settings = settings.updated(**explicit) if settings is not None else load_settings(**explicit)
        if not self.settings.project:
            raise Invalid("no project: pass project= or set ARTREG_PROJECT", details={"field": "project"})
        self.url = self.settings.url.rstrip("/")
        self.project = check_project(self.settings.project)
        self.workers = self.settings.workers or default_workers()
        self.progress = self.settings.progress
        if transport is None:
            signer = None
            if sigv4 or (sigv4 is None and wants_sigv4(self.url)):
                signer = SigV4Signer(region or region_of(self.url), credentials)
            retry = retry or RetryPolicy(attempts=self.settings.retry_attempts, deadline=self.settings.retry_deadline)
            transport = Transport(
                self.url,
                signer=signer,
                retry=retry,
                maxsize=max(10, self.workers),
                timeout=self.settings.timeout,
                connect_timeout=self.settings.connect_timeout,
            )
        self.transport = transport
        self.cache = BlobCache(self.settings.cache_dir) if self.settings.cache else None
        # beside the download cache, and on with it: the SHA-256 of local files by their stat
        self.hashes = HashCache(self.settings.cache_dir) if self.settings.cache else None
        # and the manifests of large versions logged here, to log the next from one (an upload's base)
        self.manifests = ManifestCache(self.settings.cache_dir) if self.settings.cache else None
        self._siblings: dict[str, Registry] = {self.project: self}

    def __repr__(self) -> str:
        return f"Registry({self.url!r}, project={self.project!r})"

    def close(self) -> None:
        self.transport.close()
        if self.hashes is not None:
            self.hashes.close()
        if self.manifests is not None:
            self.manifests.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ paths and calls

    def _artifacts(self) -> str:
        return f"/v1/projects/{segment(self.project)}/artifacts"

    def _artifact(self, name: str) -> str:
        return f"{self._artifacts()}/{segment(check_name(name))}"

    def _version(self, name: str, ref: str) -> str:
        return f"{self._artifact(name)}/versions/{segment(ref)}"

    def _call(
        self, method: str, path: str, body: BaseModel | None = None, query: Sequence[tuple[str, str]] | None = None
    ) -> Any:
        return self.transport.json(method, path, body=None if body is None else _dump(body), query=query)

    def _bind(self, data: Any, *, created: bool | None = None) -> LoggedArtifact:
        logged = LoggedArtifact.model_validate(data)
        logged._registry = self
        logged._created = created
        return logged

    def _in(self, project: str) -> Registry:
        """The client of another project of the same registry (an `artreg://` URI's), sharing this
        one's connections and settings."""
        if project not in self._siblings:
            settings = self.settings.updated(project=project)
            self._siblings[project] = Registry(settings=settings, transport=self.transport)
        return self._siblings[project]

    def _target(self, name: str, ref: str | None, *, file: bool = False) -> tuple[Registry, str, str, str | None]:
        """(the project's client, name, ref, path) of `name[@ref]` or of an `artreg://` URI; a URI
        that names a file only where `file` says a file may be named."""
        if not is_uri(name):
            return (self, *split_ref(name, ref), None)
        uri = parse_uri(name)
        if ref is not None:
            raise TypeError("give the ref inside the artreg:// URI, not also as ref=")
        if uri.path and not file:
            raise Invalid(f"{name[:200]!r} names a file; give the version, {uri.version_uri}", details={"field": "ref"})
        return self._in(uri.project), uri.name, uri.ref, uri.path

    @contextlib.contextmanager
    def _explained(self, name: str, ref: str) -> Iterator[None]:
        """A 404 for `latest` of an artifact that does not exist (or of a project that has none) said
        as such, not as a missing alias: one more GET, on the error path only."""
        try:
            yield
        except NotFound as error:
            if ref != "latest":
                raise
            try:
                self.summary(name)
            except NotFound:
                raise NotFound(
                    f"artifact {name!r} does not exist in project {self.project!r}",
                    details={"project": self.project, "name": name},
                ) from error
            raise

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

    def summary(self, name: str) -> ArtifactSummary:
        """An artifact's summary (as `list_artifacts` yields them): type, latest version, version
        count, aliases. For a version of it, `get_artifact`."""
        reg, name, _, _ = self._target(name, None)
        return ArtifactSummary.model_validate(reg._call("GET", reg._artifact(name)))

    def artifact(self, name: str) -> ArtifactSummary:
        """Deprecated: `summary`."""
        warnings.warn("Registry.artifact() is deprecated: use Registry.summary()", DeprecationWarning, stacklevel=2)
        return self.summary(name)

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
        reg, name, _, _ = self._target(name, None)
        for page in reg._pages(VersionPage, f"{reg._artifact(name)}/versions", query, page_size):
            for item in page.items:
                yield reg._bind(item.model_dump())

    def get_artifact(self, name: str, ref: str | None = None, *, version_or_alias: str | None = None) -> LoggedArtifact:
        """A version of an artifact by `ref`, a version or an alias (`latest` by default); `name` may
        be `name@ref`. (`version_or_alias=` is the deprecated name of `ref`.)"""
        reg, name, ref, _ = self._target(name, renamed("version_or_alias", "ref", version_or_alias, ref))
        with reg._explained(name, ref):
            return reg._bind(reg._call("GET", reg._version(name, ref)))

    def files(
        self, name: str, ref: str | None = None, *, page_size: int | None = None
    ) -> Iterator[FileEntry | RemoteEntry]:
        """A version's file and remote entries in path order, every page."""
        reg, name, ref, _ = self._target(name, ref)
        with reg._explained(name, ref):
            for page in reg._pages(FilePage, f"{reg._version(name, ref)}/files", (), page_size):
                yield from page.items

    def alias_history(self, name: str, alias: str, *, page_size: int | None = None) -> Iterator[AliasMove]:
        """Every move of an alias, newest first."""
        path = f"{self._artifact(name)}/aliases/{segment(alias)}/history"
        for page in self._pages(AliasHistory, path, (), page_size):
            yield from page.items

    def lineage(
        self,
        name: str,
        ref: str | None = None,
        *,
        direction: Literal["upstream", "downstream", "both"] = "both",
        depth: int | None = None,
        limit: int | None = None,
        version_or_alias: str | None = None,
    ) -> LineageGraph:
        """The runs and versions around a version (`name` may be `name@ref`): upstream, the run that
        produced it and what that run used, and so on; downstream, the runs that used it and what they
        produced. `depth` counts runs away (3 by default, at most 10). Every page of the version's own
        neighbours is fetched; a deeper node with more neighbours than `limit` says `truncated`."""
        reg, name, ref, _ = self._target(name, renamed("version_or_alias", "ref", version_or_alias, ref))
        if reg is not self:
            return reg.lineage(name, ref, direction=direction, depth=depth, limit=limit)
        query: list[tuple[str, str]] = [("direction", direction)]
        query += [("depth", str(depth))] if depth is not None else []
        query += [("limit", str(limit))] if limit is not None else []

        def page(at: str, cursor: str | None) -> LineageGraph:
            paged = query + ([("cursor", cursor)] if cursor else [])
            return LineageGraph.model_validate(self._call("GET", f"{self._version(name, at)}/lineage", query=paged))

        with self._explained(name, ref):
            return lineage.merged(page, ref)

    def run(self, run_id: str, *, page_size: int | None = None) -> RunLineage:
        """What a run produced and used (`name@version` refs), every page."""
        produced: list[str] = []
        used: list[str] = []
        path = f"/v1/projects/{segment(self.project)}/runs/{quote(run_id, safe='')}"
        for page in self._pages(RunLineage, path, (), page_size):
            produced += page.produced
            used += page.used
        return RunLineage(run_id=run_id, produced=produced, used=used)

    def runs(self, *, page_size: int | None = None) -> Iterator[RunSummary]:
        """The runs the registry has heard of (`run_id`, `first_seen`, `last_seen`, `produced`, `used`),
        most recently seen first, every page."""
        return links_api.runs(self, page_size=page_size)

    def model_version(self, name: str, **options: Any) -> contextlib.AbstractContextManager[ModelVersion]:
        """A model version gathered while training, committed at the end of the block with the links
        made in it: see `artreg.client.model_version`."""
        return model_version(self, name, **options)

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
        body = wire(MoveAlias, **fields)
        return self._bind(self._call("PUT", f"{self._artifact(name)}/aliases/{segment(alias)}", body))

    def remove_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", f"{self._artifact(name)}/aliases/{segment(alias)}")

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
        reg, name, ref, _ = self._target(name, ref)
        fields: dict[str, Any] = {"tags_add": list(tags_add), "tags_remove": list(tags_remove)}
        if metadata is not None:
            fields["metadata"] = dict(metadata)
        return reg._bind(reg._call("PATCH", reg._version(name, ref), wire(PatchVersion, **fields)))

    def tag(self, name: str, ref: str | None, *tags: str) -> LoggedArtifact:
        return self.update(name, ref, tags_add=tags)

    def untag(self, name: str, ref: str | None, *tags: str) -> LoggedArtifact:
        return self.update(name, ref, tags_remove=tags)

    def update_metadata(self, name: str, ref: str | None, metadata: Mapping[str, Any]) -> LoggedArtifact:
        return self.update(name, ref, metadata=metadata)

    def delete_version(self, name: str, version: str | None = None, force: bool = False) -> LoggedArtifact:
        """Marks a version deleted (`name, version`, or an `artreg://` URI that names the version);
        `Conflict` while an alias other than `latest` holds it, unless `force` (which removes those aliases)."""
        reg, at = self, version
        if is_uri(name) and "@" in name:
            reg, name, at, _ = self._target(name, version)
        if at is None:
            raise Invalid(
                "delete_version needs the version (in an artreg:// URI: @VERSION)", details={"field": "version"}
            )
        query = [("force", "true")] if force else None
        return reg._bind(reg._call("DELETE", reg._version(name, at), query=query))

    def use_artifact(
        self,
        name: str,
        ref: str | None = None,
        *,
        run_id: str | None = None,
        pipeline: str | None = None,
        step: str | None = None,
        version_or_alias: str | None = None,
    ) -> LoggedArtifact:
        """Resolves `name@ref` and records that the run used that version (lineage). `run_id`
        defaults to the `run_id` setting (ARTREG_RUN_ID)."""
        reg, name, ref, _ = self._target(name, renamed("version_or_alias", "ref", version_or_alias, ref))
        run_id = run_id or self.settings.run_id
        if not run_id:
            raise Invalid("use_artifact needs a run_id (or ARTREG_RUN_ID)", details={"field": "run_id"})
        logged = reg.get_artifact(name, ref)
        reg._record_use(name, logged.version, run_id, pipeline, step)
        return logged

    def _record_use(self, name: str, version: str, run_id: str, pipeline: str | None, step: str | None) -> None:
        usage = wire(Usage, **given(run_id=run_id, pipeline=pipeline, step=step))
        self._call("POST", f"{self._version(name, version)}/usages", usage)

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
        links: Mapping[str, str | LoggedArtifact] | None = None,
        role: str | None = None,
    ) -> LoggedArtifact:
        """Logs a new version: hashes the files, offers them in batches of 1,000, uploads the blobs
        the registry lacks (each distinct content once), commits. Content the registry already holds
        logs in one request with no bytes sent. `run_id` defaults to the `run_id` setting; `inputs` are
        the `name@version` refs the run consumed. `version` defaults to `artifact.version`. The answer's
        `created` is False when `if_changed` found the content unchanged and logged nothing. `links`
        (role -> `name@ref`) link the new version to others, pinned at commit (beyond 8, right after it);
        `role` links it to the model version open on this registry (`model_version`) under that role."""
        if version is not None and artifact.version is not None and version != artifact.version:
            raise Invalid(
                f"version={version!r} differs from the artifact's version {artifact.version!r}: give one",
                details={"field": "version"},
            )
        version = version or artifact.version
        at_commit, after = split_links(links or {}, MAX_COMMIT_LINKS)
        gathering = for_role(self, role)
        logged = self._log(artifact, version, bump, run_id, pipeline, step, inputs, if_changed, progress, at_commit)
        for link_role, target in after.items():
            links_api.link(self, logged.name, logged.version, link_role, target)
        if after:
            logged = logged.refresh()
        if gathering is not None and role is not None:
            gathering.links[role] = logged.qualified_name
        return logged

    def _log(
        self,
        artifact: Artifact,
        version: str | None,
        bump: Bump | None,
        run_id: str | None,
        pipeline: str | None,
        step: str | None,
        inputs: Iterable[str | LoggedArtifact],
        if_changed: bool,
        progress: bool | None,
        links: dict[str, str],
    ) -> LoggedArtifact:
        shown = self.progress if progress is None else progress
        run_id = run_id or self.settings.run_id
        used = [item.qualified_name if isinstance(item, LoggedArtifact) else str(item) for item in inputs]
        producer = None
        if run_id:
            producer = wire(Producer, **given(run_id=run_id, pipeline=pipeline, step=step, inputs=used))
        elif pipeline or step or used:
            raise Invalid("pipeline, step and inputs describe a run: give run_id too", details={"field": "run_id"})
        if version is not None and bump is not None:
            raise Invalid("give either version or bump, not both", details={"field": "version"})

        return upload.log_files(
            self,
            artifact,
            version=version,
            bump=bump,
            producer=producer,
            if_changed=if_changed,
            shown=shown,
            links=links,
        )

    def _call_status(self, method: str, path: str, body: BaseModel | None = None) -> tuple[int, Any]:
        """An API call's status (201 made something, 200 found it made) and its JSON."""
        data = None if body is None else _dump(body)
        encoded = None if data is None else json.dumps(data, separators=(",", ":")).encode()
        answer = self.transport.api(method, path, body=encoded)
        return answer.status, answer.json()

    # ------------------------------------------------------------ downloading

    def download(
        self,
        name: str,
        ref: str | None = None,
        root: str | os.PathLike[str] = ".",
        *,
        run_id: str | None = None,
        pipeline: str | None = None,
        step: str | None = None,
        workers: int | None = None,
        cache: bool | None = None,
        progress: bool | None = None,
    ) -> DownloadResult:
        """Downloads a version's stored files into the folder `root` (remote entries are listed in
        the result, not fetched); an `artreg://` URI of a file downloads that file alone. Pages of up
        to 1,000 files (one API call each), all checked before a byte is written; files fetched in
        parallel, verified, through the local cache. With a `run_id` (by default the `run_id`
        setting, ARTREG_RUN_ID) the download is recorded as that run's use of the version."""
        reg, name, ref, only = self._target(name, ref, file=True)
        with reg._explained(name, ref):
            result = fetch.download(reg, name, ref, root, only=only, workers=workers, cache=cache, progress=progress)
        run_id = run_id or self.settings.run_id
        if run_id:
            reg._record_use(name, result.version, run_id, pipeline, step)
        elif pipeline or step:
            raise Invalid("pipeline and step describe a run: give run_id too", details={"field": "run_id"})
        return result

    def open(self, uri: str, path: str | None = None, *, ref: str | None = None) -> IO[bytes]:
        """A file of a version, open for reading, its bytes checked against the manifest's SHA-256
        before any is handed out (served from the local cache when it holds them): `uri` is
        `artreg://PROJECT/NAME@REF/PATH`, or a name (`name@ref`) with `path`."""
        reg, name, ref, in_uri = self._target(uri, ref, file=True)
        path = path or in_uri
        if not path:
            raise Invalid("open needs a file: artreg://PROJECT/NAME@REF/PATH, or path=", details={"field": "path"})
        with reg._explained(name, ref):
            return fetch.open_file(reg, name, ref, path)

    # ------------------------------------------------------------ Python objects

    def save(self, obj: Any, name: str, **options: Any) -> LoggedArtifact:
        """Logs a Python object as a new version of `name`, written by the materializer of its type
        (recorded in the version's metadata, so that `load` needs no hint); the options are
        `log_artifact`'s and `Artifact`'s, plus `materializer=` (a name, to choose one) and
        `allow_pickle=True` (to store an object no other materializer takes, as a pickle). See
        `artreg.client.materializers`."""
        return objects.save(self, obj, name, **options)

    def load(self, name: str, ref: str | None = None, *, allow_pickle: bool = False, **options: Any) -> Any:
        """The object a version holds (`name@ref` or `artreg://...`), read back by the materializer
        that wrote it. A pickle is loaded only with `allow_pickle=True`: unpickling runs code."""
        return self.get_artifact(name, ref).load(allow_pickle=allow_pickle, **options)
