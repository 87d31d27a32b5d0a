"""`LoggedArtifact`: a committed version (its record) bound to the `Registry` that read it, with what
can be done with it; `DownloadResult`: what a download did."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import PrivateAttr

from artreg.client import links as links_api
from artreg.client.common import UNSET, _Unset
from artreg.client.errors import Invalid
from artreg.client.version import Version
from artreg.model.wire import FileEntry, LinkedBy, RemoteEntry, VersionLink, VersionRecord

if TYPE_CHECKING:
    from artreg.client.registry import Registry


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    version: Version
    digest: str
    downloaded: int  # files written from bytes fetched
    from_cache: int  # files taken from the local cache
    skipped: int  # files already in place
    bytes: int  # bytes fetched
    remote: list[RemoteEntry] = field(default_factory=list)  # references, never downloaded


class LoggedArtifact(VersionRecord):
    """A committed version: its record (API.md, Version record) and what can be done with it. Up to
    1,000 files and remote entries are inline (`files`, `remote`); `iter_files()` pages through all."""

    version: Version  # a str that compares by SemVer precedence: .next_minor() and so on
    _registry: Registry | None = PrivateAttr(default=None)
    _created: bool | None = PrivateAttr(default=None)

    def __repr__(self) -> str:
        shown = f"{self.qualified_name!r}, type={self.type!r}, files={self.file_count}, digest={self.digest[:12]!r}"
        return f"LoggedArtifact({shown})"

    def __str__(self) -> str:
        return repr(self)

    @property
    def qualified_name(self) -> str:
        """`name@version`, as `get_artifact` and `log_artifact(inputs=...)` take it (the project is the
        registry's)."""
        return f"{self.name}@{self.version}"

    @property
    def ref(self) -> str:
        """Deprecated: `qualified_name` (a ref is a version or an alias, not `name@version`)."""
        warnings.warn("LoggedArtifact.ref is deprecated: use .qualified_name", DeprecationWarning, stacklevel=2)
        return self.qualified_name

    @property
    def created(self) -> bool | None:
        """From `log_artifact`: True when this call made the version, False when `if_changed` found
        the content unchanged and answered the existing one; None for a version only read."""
        return self._created

    @property
    def uri(self) -> str:
        """`artreg://project/name@version`, as the SDK, the CLI and fsspec take it."""
        return f"artreg://{self.project}/{self.name}@{self.version}"

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
        run_id: str | None = None,
        workers: int | None = None,
        cache: bool | None = None,
        progress: bool | None = None,
    ) -> DownloadResult:
        """Downloads this version's stored files into `root`; remote entries stay in `self.remote`.
        With a `run_id` (by default ARTREG_RUN_ID), records the download as that run's use."""
        return self.registry.download(
            self.name, self.version, root, run_id=run_id, workers=workers, cache=cache, progress=progress
        )

    def open(self, path: str) -> IO[bytes]:
        """One stored file of this version, open for reading, verified against the manifest."""
        return self.registry.open(self.name, path, ref=self.version)

    def load(self, *, allow_pickle: bool = False, run_id: str | None = None) -> Any:
        """The Python object this version holds (logged with `Registry.save`), read by the
        materializer its metadata names. A pickle loads only with `allow_pickle=True`, since
        unpickling runs code. With a `run_id` (by default ARTREG_RUN_ID), records the use."""
        from artreg.client import objects

        return objects.load(self, allow_pickle=allow_pickle, run_id=run_id)

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

    # links (API.md, Links): `links` holds what the record carries inline; `iter_links()` pages them all

    def link(self, role: str, target: str | LoggedArtifact, *, if_match: str | None = None) -> VersionLink:
        """Links this version under `role` to the version `target` (`name@ref`) names now, pinned.
        With `if_match` (the digest of the role's current target): compare-and-swap."""
        made = links_api.link(self.registry, self.name, self.version, role, target, if_match=if_match)
        self.links = sorted([*(x for x in self.links if x.role != role), made], key=lambda x: x.role)
        return made

    def unlink(self, role: str, *, if_match: str | None = None) -> None:
        links_api.unlink(self.registry, self.name, self.version, role, if_match=if_match)
        self.links = [x for x in self.links if x.role != role]

    def iter_links(self, *, page_size: int | None = None) -> Iterator[VersionLink]:
        if not self.links_truncated:
            yield from self.links
        else:
            yield from links_api.links(self.registry, self.name, self.version, page_size=page_size)

    def linked_by(self, *, page_size: int | None = None) -> list[LinkedBy]:
        """The versions that link to this one (`.role`, `.source` with `.name`, `.version`, `.digest`)."""
        return list(links_api.linked_by(self.registry, self.name, self.version, page_size=page_size))
