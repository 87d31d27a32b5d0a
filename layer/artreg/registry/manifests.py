"""A stored version's manifest, read from its record or, when it is too large for the record, from
its chunks in the blob store: the registry's pages of files and the janitor's walks read it here."""

from __future__ import annotations

import bisect
import itertools
import tempfile
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from artreg.model.manifest import ENTRIES, Digest, Entry, sort_entries
from artreg.model.wire import FileEntry, RemoteEntry
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
    return next(found_entries(blobs, version, [path]))


def found_entries(blobs: BlobStore, version: StoredVersion, paths: Iterable[str]) -> Iterator[Entry | None]:
    """The entry at each of `paths` (in path order), or None where there is none: each chunk they
    fall in is read once."""
    if version.manifest is None:
        inline: list[Entry] = [*version.files, *version.remote]
        held = {e.path: e for e in inline}
        yield from (held.get(path) for path in paths)
        return
    loaded = -1
    for path in paths:
        index = bisect.bisect_right(version.manifest.first_paths, path) - 1
        if index < 0:
            yield None
            continue
        if index != loaded:
            held = {e.path: e for e in blobs.get_manifest_chunk(version.project, version.digest, index)}
            loaded = index
        yield held.get(path)


class Chunks:
    """A manifest in path order as the chunks the blob store keeps (`ENTRIES` JSON), written as the
    summary's pass goes into a temporary file that stays in memory up to `_SPOOLED` bytes: the store
    is given them under the digest, known only once the pass ends, without a second pass over the
    manifest (whose entries come from the upload's batches or its base's chunks: read, parsed and
    merged once)."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOLED)  # noqa: SIM115 (closed by close())
        self._ends: list[int] = []
        self._pending: list[Entry] = []

    def add(self, entry: Entry) -> None:
        self._pending.append(entry)
        if len(self._pending) == self.chunk_size:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._file.write(ENTRIES.dump_json(self._pending))
            self._ends.append(self._file.tell())
            self._pending.clear()

    def __iter__(self) -> Iterator[bytes]:
        """Each chunk, one at a time."""
        self._flush()
        start = 0
        for end in self._ends:
            self._file.seek(start)
            yield self._file.read(end - start)
            start = end

    def close(self) -> None:
        self._file.close()


_SPOOLED = 16 * 1024 * 1024  # a manifest of ~120,000 small files; a larger one goes to a file


@dataclass
class Summary:
    """What a commit records of a manifest, gathered in one pass over it in path order: the digest,
    the counts, the inline part of the record, the first path of each chunk and, when asked for, the
    chunks themselves."""

    digest: str = ""
    count: int = 0
    file_count: int = 0
    size: int = 0
    files: list[FileEntry] = field(default_factory=list)
    remote: list[RemoteEntry] = field(default_factory=list)
    first_paths: list[str] = field(default_factory=list)
    chunks: Chunks | None = None


def summarise(ordered: Iterable[Entry], inline: int, chunk_size: int, *, chunks: bool = False) -> Summary:
    """The summary of a manifest that comes in path order, without holding it: what is held is the
    inline part and the remote entries (the digest closes over them; a manifest has few), and with
    `chunks` the manifest's chunks, serialised (the caller closes them)."""
    summary, digest, remote = Summary(), Digest(), []
    spool = summary.chunks = Chunks(chunk_size) if chunks else None
    try:
        for entry in ordered:
            if summary.count % chunk_size == 0:
                summary.first_paths.append(entry.path)
            summary.count += 1
            if spool is not None:
                spool.add(entry)
            if isinstance(entry, FileEntry):
                digest.add(entry.path, entry.sha256, entry.size, entry.metadata)
                summary.file_count += 1
                summary.size += entry.size
                if len(summary.files) < inline:
                    summary.files.append(entry)
            else:
                remote.append(entry)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    summary.remote = remote[:inline]
    summary.digest = digest.hexdigest(remote)
    return summary


def in_path_order(
    parts: Sequence[Callable[[], list[Entry]]], missing: Container[str]
) -> tuple[Callable[[], Iterator[Entry]], dict[str, int]]:
    """An upload's entries in path order from the readers of its requests, and the size of each of
    its `missing` blobs. When the requests hold ranges of paths that do not overlap (as the SDK sends
    them: walked in path order), they are read one at a time, in the order of their ranges, at each
    pass: memory holds one request's entries. Otherwise they are held whole and sorted. A path listed
    twice is `Invalid` either way."""
    ranges: list[tuple[str, str, int]] = []
    sizes: dict[str, int] = {}
    for index, read in enumerate(parts):
        batch = sort_entries(read())
        if batch:
            ranges.append((batch[0].path, batch[-1].path, index))
        sizes.update((e.sha256, e.size) for e in batch if isinstance(e, FileEntry) and e.sha256 in missing)
    ranges.sort()
    if all(before[1] < after[0] for before, after in itertools.pairwise(ranges)):
        order = [index for _, _, index in ranges]
        return (lambda: (e for index in order for e in sort_entries(parts[index]()))), sizes
    everything = sort_entries([e for read in parts for e in read()])
    return (lambda: iter(everything)), sizes
