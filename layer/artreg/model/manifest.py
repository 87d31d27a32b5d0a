"""A version's manifest: its stored files and remote references, kept in path order, and the
digest of its canonical form, which does not depend on the order the entries were listed in."""

from __future__ import annotations

import hashlib
import itertools
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
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


def canonical(entry: Entry) -> dict[str, Any]:
    """What the digest covers of an entry: two entries with the same canonical form are the same."""
    if isinstance(entry, FileEntry):
        form: dict[str, Any] = {"path": entry.path, "sha256": entry.sha256, "size": entry.size}
        if entry.metadata:  # only when set: a file without metadata keeps the digest it always had
            form["metadata"] = entry.metadata
        return form
    # what is pinned of a remote object is part of its identity; whether we could read it is not
    return {
        "path": entry.path,
        "uri": entry.uri,
        "size": entry.size,
        "etag": entry.etag,
        "version_id": entry.version_id,
        "metadata": entry.metadata,
    }


class Digest:
    """The manifest digest (see `digest`) fed one stored file at a time in path order, so that a
    client can compute it over any number of files without holding them: the canonical JSON is
    `{"files":[...],"remote":[...]}` with sorted keys and no spaces, written as it goes."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b'{"files":[')
        self._last: str | None = None
        self._pending: list[str] = []  # hashed a thousand entries at a time: one update, not one each

    def add(self, path: str, sha256: str, size: int, metadata: Mapping[str, Any] | None = None) -> None:
        if self._last is not None and path < self._last:
            raise ValueError(f"files must come in path order: {path!r} after {self._last!r}")
        if metadata:
            text = _dumps({"path": path, "sha256": sha256, "size": size, "metadata": metadata})
        else:  # the common case, formatted directly: keys in sorted order
            text = f'{{"path":{_dumps(path)},"sha256":{_dumps(sha256)},"size":{int(size)}}}'
        self._pending.append(text if self._last is None else "," + text)
        self._last = path
        if len(self._pending) >= 1000:
            self._flush()

    def _flush(self) -> None:
        self._hash.update("".join(self._pending).encode())
        self._pending.clear()

    def hexdigest(self, remote: Iterable[RemoteEntry] = ()) -> str:
        self._flush()
        closing = self._hash.copy()
        pinned = ",".join(_dumps(canonical(e)) for e in sorted(remote, key=lambda e: e.path))
        closing.update(f'],"remote":[{pinned}]}}'.encode())
        return closing.hexdigest()


# one encoder: json.dumps with options other than the defaults builds a new one at every call
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def digest(entries: Sequence[Entry]) -> str:
    """The SHA-256 of the canonical manifest: every entry by path, whatever order they are listed in."""
    ordered = sorted(entries, key=lambda e: e.path)
    stream = Digest()
    for entry in ordered:
        if isinstance(entry, FileEntry):
            stream.add(entry.path, entry.sha256, entry.size, entry.metadata)
    return stream.hexdigest(e for e in ordered if isinstance(e, RemoteEntry))


def stored(items: Iterable[dict[str, Any]]) -> list[Entry]:
    """Entries as a store kept them (`ENTRIES.dump_*` of entries the registry checked), built without
    checking each field again: a check costs ~20 µs an entry, seconds of a 100,000-file commit's
    reads. What `model_construct` does, less its per-field bookkeeping (four times as fast): a stored
    file carries every field, so its dict becomes the entry's as it is (no copy)."""
    out: list[Entry] = []
    for item in items:
        if "uri" in item:
            out.append(_trusted(RemoteEntry, {**_REMOTE, **item}))
        else:
            out.append(_trusted(FileEntry, item if "metadata" in item else {**_FILE, **item}))
    return out


_FILE: dict[str, Any] = {"metadata": {}}
_REMOTE: dict[str, Any] = {"size": None, "etag": None, "version_id": None, "verified": False, "metadata": {}}
_set_attr = object.__setattr__


def _trusted(cls: type[FileEntry] | type[RemoteEntry], values: dict[str, Any]) -> Any:
    entry = cls.__new__(cls)
    _set_attr(entry, "__dict__", values)
    _set_attr(entry, "__pydantic_fields_set__", set(values))
    _set_attr(entry, "__pydantic_extra__", None)
    _set_attr(entry, "__pydantic_private__", None)
    return entry


def stored_json(data: bytes | str) -> list[Entry]:
    return stored(json.loads(data))


def pack(entries: Sequence[Entry]) -> bytes:
    """Entries as a store keeps a batch of them: compressed JSON, whose size the stores' limit counts."""
    return zlib.compress(ENTRIES.dump_json(list(entries)), 6)


def unpack(packed: bytes) -> list[Entry]:
    return stored_json(zlib.decompress(packed))
