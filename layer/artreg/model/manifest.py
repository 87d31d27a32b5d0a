"""A version's manifest: its stored files and remote references, kept in path order, and the
digest of its canonical form, which does not depend on the order the entries were listed in."""

from __future__ import annotations

import hashlib
import itertools
import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from artreg.model.errors import Invalid
from artreg.model.wire import FileEntry, RemoteEntry

Entry = FileEntry | RemoteEntry
# built on first use, not at import (the API function's cold start)
ENTRIES: TypeAdapter[list[Entry]] = TypeAdapter(list[Entry], config=ConfigDict(defer_build=True))


def sort_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Path order, as the files route pages them; refuses a path that appears twice."""
    ordered = sorted(entries, key=lambda e: e.path)
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            raise Invalid(
                f"path {after.path[:200]!r} is listed twice in this upload",
                details={"field": "path", "path": after.path[:200]},
            )
    return ordered


def _canonical(entry: Entry) -> dict[str, Any]:
    if isinstance(entry, FileEntry):
        canonical: dict[str, Any] = {"path": entry.path, "sha256": entry.sha256, "size": entry.size}
        if entry.metadata:  # only when set: a file without metadata keeps the digest it always had
            canonical["metadata"] = entry.metadata
        return canonical
    # what is pinned of a remote object is part of its identity; whether we could read it is not
    return {
        "path": entry.path,
        "uri": entry.uri,
        "size": entry.size,
        "etag": entry.etag,
        "version_id": entry.version_id,
        "metadata": entry.metadata,
    }


def digest(entries: Sequence[Entry]) -> str:
    ordered = sorted(entries, key=lambda e: e.path)
    files = [_canonical(e) for e in ordered if isinstance(e, FileEntry)]
    remote = [_canonical(e) for e in ordered if isinstance(e, RemoteEntry)]
    text = json.dumps(
        {"files": files, "remote": remote},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def pack(entries: Sequence[Entry]) -> bytes:
    """Entries as a store keeps a batch of them: compressed JSON, whose size the stores' limit counts."""
    return zlib.compress(ENTRIES.dump_json(list(entries)), 6)


def unpack(packed: bytes) -> list[Entry]:
    return ENTRIES.validate_json(zlib.decompress(packed))
