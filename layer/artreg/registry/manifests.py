"""A stored version's manifest, read from its record or, when it is too large for the record, from
its chunks in the blob store: the registry's pages of files and the janitor's walks read it here."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from artreg.model.manifest import Entry
from artreg.registry.ports import BlobStore
from artreg.registry.records import StoredVersion


def entries(blobs: BlobStore, version: StoredVersion) -> Iterator[Entry]:
    """Every entry, in path order, one chunk read at a time."""
    if version.manifest is None:
        inline: list[Entry] = [*version.files, *version.remote]
        yield from sorted(inline, key=lambda e: e.path)
        return
    chunks = -(-version.manifest.count // version.manifest.chunk_size)
    for index in range(chunks):
        yield from blobs.get_manifest_chunk(version.project, version.digest, index)


def entry_slice(blobs: BlobStore, version: StoredVersion, offset: int, limit: int) -> tuple[list[Entry], bool]:
    """Entries [offset, offset+limit) in path order, and whether any come after them."""
    if version.manifest is None:
        everything = list(entries(blobs, version))
        return everything[offset : offset + limit], offset + limit < len(everything)
    chunk_size, total = version.manifest.chunk_size, version.manifest.count
    page: list[Entry] = []
    position = offset
    while len(page) < limit and position < total:
        chunk = blobs.get_manifest_chunk(version.project, version.digest, position // chunk_size)
        taken = chunk[position % chunk_size :][: limit - len(page)]
        if not taken:
            break
        page += taken
        position += len(taken)
    return page, position < total


def find_entry(blobs: BlobStore, version: StoredVersion, path: str) -> Entry | None:
    if version.manifest is None:
        candidates: Sequence[Entry] = [*version.files, *version.remote]
    else:
        index = bisect.bisect_right(version.manifest.first_paths, path) - 1
        if index < 0:
            return None
        candidates = blobs.get_manifest_chunk(version.project, version.digest, index)
    return next((e for e in candidates if e.path == path), None)
