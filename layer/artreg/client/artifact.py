"""`Artifact`: what to log, before it is logged: files and folders, references to data elsewhere,
metadata, aliases and tags."""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from artreg.client.common import renamed, wire
from artreg.client.errors import Invalid
from artreg.client.files import LocalFile, iter_walk, walk
from artreg.client.version import Version
from artreg.model.names import MAX_FILE_METADATA_BYTES, check_metadata, check_name, check_path, check_type, check_uri
from artreg.model.wire import RemoteSpec


class Artifact:
    """A version to log: files and folders (`add`), references to data elsewhere (`add_remote`),
    metadata, aliases to point at it and tags. `version`, when set (here or as the attribute, say
    `art.version = logged.version.next_minor()`), is the version it is logged as; by default the
    registry bumps the highest release."""

    def __init__(
        self,
        name: str,
        type: str = "artifact",
        *,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        tags: Iterable[str] = (),
        version: str | None = None,
    ) -> None:
        self.name = check_name(name)
        self.type = check_type(type)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.aliases: set[str] = set(aliases)
        self.tags: set[str] = set(tags)
        self.version = version
        # (file or folder on disk, its logical path or None, the metadata of each file it gives)
        self.sources: list[tuple[str, str | None, dict[str, Any]]] = []
        self.remote: list[RemoteSpec] = []

    @property
    def version(self) -> Version | None:
        return self._version

    @version.setter
    def version(self, value: str | None) -> None:
        self._version = None if value is None else Version(value)

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, sources={len(self.sources)}, remote={len(self.remote)})"

    def add(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        path: str | None = None,
    ) -> Artifact:
        """Adds a file (logged as `name`, its logical path in the artifact, or under its own name) or
        a folder (its files recursively, with their paths relative to it, under `name` when given).
        `metadata` is each such file's own (a JSON object of at most 4 KiB), kept in the version's
        record and covered by its digest. Read when the artifact is logged. (`path=` is the
        deprecated name of `name`.)"""
        name = renamed("path", "name", path, name)
        source = os.path.abspath(os.fspath(local_path))
        if not os.path.exists(source):
            raise FileNotFoundError(f"{local_path}: no such file or directory")
        logical = name.strip("/") if name else None
        own = check_metadata(dict(metadata or {}), "file metadata", MAX_FILE_METADATA_BYTES)
        self.sources.append((source, check_path(logical) if logical else None, own))
        return self

    def add_remote(
        self,
        uri: str,
        name: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        path: str | None = None,
    ) -> Artifact:
        """Adds a reference to data that stays where it is (`s3://...`, `https://...`, any URI),
        logged as `name`, its logical path (by default the last segment of the URI's path), with its
        own `metadata`. (`path=` is the deprecated name of `name`.)"""
        path = renamed("path", "name", path, name)
        check_uri(uri)
        if path is None:
            path = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
            if not path:
                raise Invalid(f"cannot name remote entry {uri!r} from its URI: give path=", details={"field": "path"})
        self.remote.append(wire(RemoteSpec, uri=uri, path=check_path(path), metadata=dict(metadata or {})))
        return self

    def file_metadata(self) -> dict[str, dict[str, Any]]:
        """The metadata given to `add`, by logical path, for the files that have some."""
        return {f.path: meta for source, path, meta in self.sources if meta for f in walk(source, path)}

    def local_files(self) -> list[LocalFile]:
        """`iter_files()` as a list."""
        return list(self.iter_files())

    def iter_files(self) -> Iterator[LocalFile]:
        """Every file that `add` named, each with its own metadata, walked lazily in path order (one
        folder's listing in memory at a time). A path given twice (file or remote) is refused before
        the first file is given: with more than one source, a first pass over the paths alone."""
        if len(self.sources) + min(1, len(self.remote)) > 1:
            self._check_unique()
        walks = [
            _with_metadata(iter_walk(source, path), meta) if meta else iter_walk(source, path)
            for source, path, meta in self.sources
        ]
        if not walks:
            return
        yield from walks[0] if len(walks) == 1 else heapq.merge(*walks, key=lambda f: f.path)

    def _check_unique(self) -> None:
        walks = [(f.path for f in iter_walk(source, path)) for source, path, _ in self.sources]
        twice: list[str] = []
        count = 0
        for before, after in itertools.pairwise(heapq.merge(*walks, sorted(r.path for r in self.remote))):
            if before == after and (not twice or twice[-1] != after):
                count += 1
                if len(twice) < 20:
                    twice.append(after)
        if twice:
            raise Invalid(
                f"path {twice[0][:200]!r} is added twice" + (f" (and {count - 1} more)" if count > 1 else ""),
                details={"field": "path", "paths": twice},
            )


def _with_metadata(files: Iterator[LocalFile], metadata: Mapping[str, Any] | None) -> Iterator[LocalFile]:
    for file in files:
        yield LocalFile(file.path, file.source, metadata)
