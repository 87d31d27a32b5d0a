"""`Artifact`: what to log, before it is logged: files and folders, references to data elsewhere,
metadata, aliases and tags."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from artreg.client.common import wire
from artreg.client.errors import Invalid
from artreg.client.files import LocalFile, walk
from artreg.model.names import check_name, check_path, check_type, check_uri
from artreg.model.wire import RemoteSpec


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
        self.remote.append(wire(RemoteSpec, uri=uri, path=check_path(path), metadata=dict(metadata or {})))
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
