"""Local files of an artifact being logged: walking what was added into logical POSIX paths, hashing
in parallel with flat memory, batching manifest entries, and the bounded thread pool that every
parallel step of the SDK runs in."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

from artreg.client.hashcache import HashCache, Stat, trusted
from artreg.model import multipart
from artreg.model.errors import Invalid
from artreg.model.names import check_path, plain_paths
from artreg.model.wire import MAX_FILES_PER_REQUEST

log = logging.getLogger("artreg")
T = TypeVar("T")
U = TypeVar("U")
CHUNK = 1024 * 1024
_INLINE = 64 * 1024  # files up to this size are hashed by the thread that walks them
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def default_workers() -> int:
    return min(8, (os.cpu_count() or 1) * 2)


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: str  # the logical path in the artifact: relative POSIX, checked
    source: str  # the file on disk to read
    metadata: Mapping[str, Any] | None = None  # the file's own, as given to Artifact.add


@dataclass(frozen=True, slots=True)
class HashedFile:
    path: str
    source: str
    sha256: str
    size: int
    metadata: Mapping[str, Any] | None = None
    # what the file system said of `source` when its SHA-256 was known, where that stat may stand for
    # the SHA-256 (`hashcache.trusted`): what the manifest cache keeps to skip the file next time
    stat: Stat | None = None


# ---------------------------------------------------------------- walking


def _inside(root: str, path: str) -> bool:
    return path == root or os.path.commonpath([root, path]) == root


def walk(source: str | os.PathLike[str], path: str | None = None) -> list[LocalFile]:
    """`iter_walk` as a list."""
    return list(iter_walk(source, path))


def iter_walk(source: str | os.PathLike[str], path: str | None = None) -> Iterator[LocalFile]:
    """The files under `source`, lazily, in logical path order (one folder's listing in memory at a
    time). A file is logged as `path`, or as its own name; a directory's files keep their paths
    relative to it, under `path` when given. Inside a directory a symlink is followed only if its
    target stays inside that directory (a link that leaves it, dangles, or loops back to an ancestor
    is skipped with a warning); special files are skipped. `source` itself may be a link: it was
    named explicitly."""
    source = os.fspath(source)
    prefix = path.strip("/") if path else None
    if prefix is not None:
        check_path(prefix)
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise FileNotFoundError(f"{source}: no such file or directory") from None
    if stat.S_ISREG(info.st_mode):
        yield LocalFile(prefix or check_path(os.path.basename(os.path.abspath(source))), os.path.abspath(source))
        return
    if not stat.S_ISDIR(info.st_mode):
        raise Invalid(f"{source} is neither a file nor a directory", details={"path": source})
    root = os.path.realpath(source)
    yield from _walk_folder(source, root, prefix or "", os.path.abspath(source), frozenset({root}))


def _walk_folder(source: str, root: str, base: str, folder: str, ancestors: frozenset[str]) -> Iterator[LocalFile]:
    """The files under `folder`, whose logical path is `base` ("" for the top without a prefix)."""
    # (sort key, path on disk, the real folders down to it for a folder, None for a file): a folder sorts
    # as `name/`, so that walking the sorted listing depth first gives path order; names are unique, so
    # the keys alone order the listing
    listing: list[tuple[str, str, frozenset[str] | None]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not _inside(root, target):
                    log.warning("skipping %s: the link leads outside %s", entry.path, source)
                elif os.path.isdir(target):
                    if target in ancestors:
                        log.warning("skipping %s: the link loops back to a folder above it", entry.path)
                    else:
                        listing.append((entry.name + "/", entry.path, ancestors | {target}))
                elif os.path.isfile(target):
                    listing.append((entry.name, entry.path, None))
                else:
                    log.warning("skipping %s: the link leads nowhere", entry.path)
            elif entry.is_dir(follow_symlinks=False):
                listing.append((entry.name + "/", entry.path, ancestors | {os.path.realpath(entry.path)}))
            elif entry.is_file(follow_symlinks=False):
                listing.append((entry.name, entry.path, None))
            else:
                log.warning("skipping %s: not a regular file", entry.path)
    listing.sort()
    # the folder's file paths checked at once where they all pass the rule's first test, else one by one
    plain = plain_paths(base, [name for name, _, below in listing if below is None])
    above = f"{base}/" if base else ""
    for name, on_disk, below in listing:
        if below is None:
            yield LocalFile(above + name if plain else check_path(above + name), on_disk)
        else:
            yield from _walk_folder(source, root, above + name[:-1], on_disk, below)


# ---------------------------------------------------------------- hashing


def hash_file(
    source: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None, *, follow: bool = True
) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB chunks into one buffer: memory stays flat
    whatever the size. With `follow=False` a symlink at `source` is refused (OSError)."""
    digest = hashlib.sha256()
    size = 0
    # a small buffer first, 1 MiB once it fills: making (and zeroing) 1 MiB costs most of a small file's hashing
    buffer = bytearray(_INLINE)
    view = memoryview(buffer)
    fd = os.open(source, os.O_RDONLY | _BINARY | (0 if follow else _NOFOLLOW))
    with open(fd, "rb", buffering=0) as file:
        while n := file.readinto(buffer):
            digest.update(view[:n])
            size += n
            if on_bytes is not None:
                on_bytes(n)
            if n == len(buffer) < CHUNK:
                buffer = bytearray(CHUNK)
                view = memoryview(buffer)
    return digest.hexdigest(), size


def hash_files(
    files: Sequence[LocalFile], *, workers: int | None = None, on_bytes: Callable[[int], None] | None = None
) -> list[HashedFile]:
    """Hashes in a bounded thread pool (hashlib releases the GIL on large updates), in input order."""

    def one(file: LocalFile) -> HashedFile:
        sha256, size = hash_file(file.source, on_bytes)
        return HashedFile(file.path, file.source, sha256, size)

    return run_parallel([partial(one, f) for f in files], workers or default_workers())


def hash_stream(
    files: Iterable[LocalFile],
    *,
    cache: HashCache | None = None,
    workers: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    block: int = MAX_FILES_PER_REQUEST,
    known: Mapping[Stat, str] | None = None,
) -> Iterator[HashedFile]:
    """The files hashed, in input order, `block` at a time (memory: one block), by a `Hasher`."""
    pending = iter(files)
    with Hasher(cache=cache, workers=workers, on_bytes=on_bytes, known=known) as hasher:
        while chunk := list(itertools.islice(pending, block)):
            yield from hasher.hash(chunk)


class Hasher:
    """Hashes blocks of files, each in input order: each block is stat'ed, the files whose stat the
    `cache` or `known` (SHA-256 by stat, of files read meanwhile) knows are not read, the others are
    hashed (a large one in a bounded pool, open while the hasher is) and remembered."""

    def __init__(
        self,
        *,
        cache: HashCache | None = None,
        workers: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
        known: Mapping[Stat, str] | None = None,
    ) -> None:
        self.cache = cache
        self.on_bytes = on_bytes
        self.read = known or {}
        self.pool = ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="artreg-hash")

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def hash(self, chunk: Sequence[LocalFile], stats: Sequence[Stat] | None = None) -> list[HashedFile]:
        """The block's files hashed, in order; `stats`, when given, are theirs, just taken."""
        if stats is None:
            stats = [Stat.of(file.source) for file in chunk]  # follows links: a source may be a link kept inside
        cached = self.cache.lookup(stats) if self.cache is not None else [None] * len(chunk)
        # a SHA-256 of the hash cache stands for its stat (it was stored under the same rule); one of
        # `read`, learnt while the file was sent, is not noted as such
        trust = [sha256 is not None for sha256 in cached]
        known = [sha256 or self.read.get(stat) for sha256, stat in zip(cached, stats, strict=True)]
        sizes = [s.size for s in stats]
        todo = [i for i, sha256 in enumerate(known) if sha256 is None]
        read_at = time.time_ns()
        on_bytes = self.on_bytes
        if on_bytes is not None:
            on_bytes(sum(size for size, sha256 in zip(sizes, known, strict=True) if sha256 is not None))
        # a small file is hashed here, as it comes: handing it to a thread would cost more than reading it
        large = {i: self.pool.submit(hash_file, chunk[i].source, on_bytes) for i in todo if stats[i].size > _INLINE}
        hashed = (large[i].result() if i in large else hash_file(chunk[i].source, on_bytes) for i in todo)
        fresh: list[tuple[Stat, str]] = []
        for i, (digest, size) in zip(todo, hashed, strict=True):
            known[i], sizes[i] = digest, size
            if size == stats[i].size:  # else it changed between stat and read: not remembered
                fresh.append((stats[i], digest))
                trust[i] = trusted(stats[i], read_at)
        if self.cache is not None:
            self.cache.store(fresh, read_at)
        done = cast(list[str], known)  # every one found or hashed by now
        return [
            HashedFile(file.path, file.source, found, size, file.metadata, stat if sure else None)
            for file, found, size, stat, sure in zip(chunk, done, sizes, stats, trust, strict=True)
        ]


# ---------------------------------------------------------------- batching


# the serialised entries of one request, at most: a registry on DynamoDB stores a request's entries
# in one item (at most 350 kB compressed), which per-file metadata could otherwise overrun
BATCH_BYTES = 320_000


def _cut(items: Sequence[T], size: int, limits: Sequence[tuple[int, Callable[[T], int]]]) -> list[list[T]]:
    """`items` in order, cut into lists of at most `size` items and at most each limit's budget by its weigh."""
    cut: list[list[T]] = []
    used = [0] * len(limits)
    for item in items:
        weights = [weigh(item) for _, weigh in limits]
        if (
            not cut
            or len(cut[-1]) >= size
            or any(u + w > b for u, w, (b, _) in zip(used, weights, limits, strict=True))
        ):
            cut.append([])
            used = [0] * len(limits)
        cut[-1].append(item)
        used = [u + w for u, w in zip(used, weights, strict=True)]
    return cut


def stream_batches(
    files: Iterable[T],
    remote: Sequence[U],
    size: int = MAX_FILES_PER_REQUEST,
    *,
    budget: int = BATCH_BYTES,
    weigh: Callable[[Any], int] = lambda _: 0,
    blob_size: Callable[[T], int] | None = None,
) -> Generator[tuple[list[T], list[U]]]:
    """Manifest entries cut into requests of at most `size` files and `size` remote entries each,
    and of at most `budget` bytes of each kind by `weigh` (an entry's serialised size), cutting `files`
    as they come (one batch of them in memory at a time); always at least one batch (an upload may
    list nothing). Given each file's `blob_size`, a batch's files also need at most
    `multipart.MAX_URLS` upload URLs in the answer, counted as if every blob were missing and the store
    cut parts as small as any can (the client knows neither), so the registry never refuses a batch
    as too large for one answer."""
    limits: list[tuple[int, Callable[[T], int]]] = [(budget, weigh)]
    if blob_size is not None:
        limits.append((multipart.MAX_URLS, lambda f: multipart.most_urls(blob_size(f))))
    remote_cuts = iter(_cut(remote, size, [(budget, weigh)]))
    count = 0
    batch: list[T] = []
    used = [0] * len(limits)
    for item in files:
        weights = [weigh_of(item) for _, weigh_of in limits]
        if batch and (len(batch) >= size or any(u + w > b for u, w, (b, _) in zip(used, weights, limits, strict=True))):
            yield batch, next(remote_cuts, [])
            count += 1
            batch, used = [], [0] * len(limits)
        batch.append(item)
        used = [u + w for u, w in zip(used, weights, strict=True)]
    if batch or count == 0:
        yield batch, next(remote_cuts, [])
    for rest in remote_cuts:
        yield [], rest


def batches(
    files: Sequence[T],
    remote: Sequence[U],
    size: int = MAX_FILES_PER_REQUEST,
    *,
    budget: int = BATCH_BYTES,
    weigh: Callable[[Any], int] = lambda _: 0,
    blob_size: Callable[[T], int] | None = None,
) -> list[tuple[list[T], list[U]]]:
    """`stream_batches`, all at once."""
    return list(stream_batches(files, remote, size, budget=budget, weigh=weigh, blob_size=blob_size))


# ---------------------------------------------------------------- a bounded pool


def run_parallel(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Runs the tasks on at most `workers` threads and answers their results in order; the first
    failure cancels what has not started and is raised once the running ones finish."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks)), thread_name_prefix="artreg") as pool:
        futures: list[Future[T]] = [pool.submit(task) for task in tasks]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in pending:
                future.cancel()
            error = failed.exception()
            assert error is not None
            raise error
        return [future.result() for future in futures]
