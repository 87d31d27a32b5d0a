"""Bundles: many small blobs in one request, where the registry offers them (`artreg server`'s folder
store; S3 offers none, and each blob goes to its own URL as before).

An upload's bundle is one PUT of its blobs' bytes concatenated in its order; a download page's is one
GET of them, split here by the sizes of the page's files, each blob's SHA-256 checked before a file of
it is written, as a blob fetched alone is. A bundle that fails (refused, or unreachable once its
retries are spent, which are those of any blob) is not fatal: what it did not carry goes blob by blob,
to each blob's own URL, which then reports any error as it always did."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TYPE_CHECKING

from artreg.client.errors import ArtregError, IntegrityError
from artreg.client.files import CHUNK, HashedFile, run_parallel
from artreg.client.http import Transport
from artreg.client.progress import NoProgress, Progress
from artreg.model.wire import Bundle, DownloadFile, MissingBlob
from artreg.small_files import read_small

if TYPE_CHECKING:
    from artreg.client.transfer import Downloader, DownloadStats

log = logging.getLogger("artreg")
PutOne = Callable[[Transport, MissingBlob, str, Progress], None]
Todo = list[tuple[DownloadFile, str]]  # a blob's destinations left to write
WRITERS = 16  # threads writing a download's bundled files: each mostly waits on the kernel creating one
SETTLE_SLICE = 64  # blobs of a page settled (held already? cached?) by one task
PLACE_SLICE = 8  # blobs of a bundle written by one task at least

# ---------------------------------------------------------------- uploads


class _Concatenation:
    """The bytes of the files, one after the other, read whole (they are small) and sent a MiB or so at
    a time; a file that is not the size it was hashed at stops the body (`file_changed`)."""

    def __init__(self, files: Sequence[tuple[str, int]], on_bytes: Callable[[int], None]) -> None:
        self.files = files
        self.on_bytes = on_bytes
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        pieces: list[bytes] = []
        held = 0
        for source, size in self.files:
            data = read_small(source, size)
            if len(data) != size:
                raise IntegrityError(f"{source} changed size after it was hashed", code="file_changed")
            pieces.append(data)
            held += size
            if held >= CHUNK:
                yield self._out(pieces, held)
                pieces, held = [], 0
        if pieces:
            yield self._out(pieces, held)

    def _out(self, pieces: list[bytes], held: int) -> bytes:
        self.sent += held
        self.on_bytes(held)
        return b"".join(pieces)


def bundle_puts(
    transport: Transport,
    bundles: Sequence[Bundle],
    missing: Sequence[MissingBlob],
    sources: Mapping[str, HashedFile],
    progress: Progress,
    put_one: PutOne,
) -> tuple[list[Callable[[], None]], set[str]]:
    """A task for each bundle this upload can fill (every blob of it asked for, with a URL of its own
    and a local file of its size, the sizes adding up), and the blobs those bundles carry."""
    asked = {m.sha256: m for m in missing if m.url is not None and m.multipart is None}
    tasks: list[Callable[[], None]] = []
    bundled: set[str] = set()
    for bundle in bundles:
        blobs = [asked.get(sha) for sha in bundle.blobs]
        chosen = [b for b in blobs if b is not None and b.sha256 not in bundled]
        files = [sources.get(b.sha256) for b in chosen]
        if (
            len(chosen) != len(bundle.blobs)
            or len(set(bundle.blobs)) != len(bundle.blobs)
            or sum(b.size for b in chosen) != bundle.size
            or any(f is None or f.size != b.size for f, b in zip(files, chosen, strict=True))
        ):
            continue  # not one this client can fill exactly: its blobs go to their own URLs
        bundled.update(bundle.blobs)
        tasks.append(partial(_put_bundle, transport, bundle, chosen, sources, progress, put_one))
    return tasks, bundled


def _put_bundle(
    transport: Transport,
    bundle: Bundle,
    blobs: list[MissingBlob],
    sources: Mapping[str, HashedFile],
    progress: Progress,
    put_one: PutOne,
) -> None:
    tries: list[_Concatenation] = []

    def body() -> _Concatenation:  # a fresh reader for each try, taking back what a failed one counted
        if tries:
            progress.update(-tries[-1].sent)
        tries.append(_Concatenation([(sources[b.sha256].source, b.size) for b in blobs], progress.update))
        return tries[-1]

    try:
        transport.put_blob(bundle.url, bundle.headers, bundle.size, body)
    except ArtregError as error:
        if tries:
            progress.update(-tries[-1].sent)
        named = error.details.get("blobs") if error.code == "bad_digest" else None
        if isinstance(named, list):  # the server stored the others: only the blobs it refused go again
            blobs = [b for b in blobs if b.sha256 in named]
            progress.update(bundle.size - sum(b.size for b in blobs))
        log.info("a bundle was not taken (%s); sending %d of its blobs one by one", error.message, len(blobs))
        run_parallel([partial(put_one, transport, b, sources[b.sha256].source, progress) for b in blobs], 4)


# ---------------------------------------------------------------- downloads


def download(
    dl: Downloader,
    root: str | os.PathLike[str],
    files: Sequence[DownloadFile],
    bundles: Sequence[Bundle],
    progress: Progress | None = None,
) -> DownloadStats:
    """`dl.download(root, files)`, the blobs left to fetch coming through the page's `bundles` where a
    bundle is mostly wanted (a blob held already, or in the cache, is not fetched again)."""
    if not bundles:
        return dl.download(root, files, progress)
    from artreg.client.transfer import DownloadStats  # (which imports this module)

    groups = dl.plan(root, files)
    os.makedirs(os.path.realpath(root), exist_ok=True)
    stats = DownloadStats()
    shown = progress or NoProgress()
    # a task per slice of blobs, not per blob: a future and a thread's wake-up cost as much as the
    # two failing lstat calls that settle most blobs of an empty folder
    listed_groups = list(groups.values())
    slices = [listed_groups[i : i + SETTLE_SLICE] for i in range(0, len(listed_groups), SETTLE_SLICE)]
    left = {
        todo[0][0].sha256: todo
        for settled in run_parallel([partial(_settle_all, dl, part, stats, shown) for part in slices], dl.workers)
        for todo in settled
    }
    tasks: list[Callable[[], None]] = []
    writers = ThreadPoolExecutor(WRITERS, thread_name_prefix="artreg-write")
    for bundle in bundles:
        listed = [groups[sha][0][0] for sha in bundle.blobs if sha in groups]
        wanted = sum(file.size for file in listed if file.sha256 in left)
        if len(listed) != len(bundle.blobs) or sum(f.size for f in listed) != bundle.size or wanted * 2 < bundle.size:
            continue  # not this page's blobs, or mostly held already: what is left comes blob by blob
        todos = {sha: left.pop(sha) for sha in bundle.blobs if sha in left}
        tasks.append(partial(_fetch_bundle, dl, bundle, listed, todos, stats, shown, writers))
    tasks += [partial(dl.fetch_group, todo, stats, shown) for todo in left.values()]
    try:
        run_parallel(tasks, dl.workers)
    finally:
        writers.shutdown(wait=True, cancel_futures=True)
    return stats


def _settle_all(dl: Downloader, part: Sequence[Todo], stats: DownloadStats, progress: Progress) -> list[Todo]:
    return [todo for group in part if (todo := dl.settle(group, stats, progress))]


def _place_all(dl: Downloader, blobs: Sequence[tuple[Todo, bytes]], stats: DownloadStats, progress: Progress) -> None:
    for todo, data in blobs:
        dl.place(todo, data, stats, progress)


def _fetch_bundle(
    dl: Downloader,
    bundle: Bundle,
    listed: list[DownloadFile],
    todos: dict[str, Todo],
    stats: DownloadStats,
    progress: Progress,
    writers: ThreadPoolExecutor,
) -> None:
    """Streams the bundle, cutting it by sizes; each blob whose SHA-256 holds is written to its
    destinations and the cache by the `writers` (creating a file is mostly the kernel's work, which
    runs in parallel) while the stream is read on. Whatever the bundle did not bring (broken off,
    refused, or wrong bytes) is fetched blob by blob, which raises as a lone blob's fetch does."""
    placed: dict[str, Future[None]] = {}
    try:
        buffer, at, index = b"", 0, 0
        chunks = dl.fetch(bundle.url)
        try:
            for chunk in chunks:
                buffer, at = buffer[at:] + chunk, 0
                checked: list[tuple[str, Todo, bytes]] = []
                while index < len(listed) and len(buffer) - at >= listed[index].size:
                    file = listed[index]
                    data, at, index = buffer[at : at + file.size], at + file.size, index + 1
                    todo = todos.get(file.sha256)
                    if todo is None or hashlib.sha256(data).hexdigest() != file.sha256:
                        continue  # not wanted, or not its bytes: fetched alone below
                    checked.append((file.sha256, todo, data))
                # the chunk's blobs in a few tasks, not one each: a future per 64-byte file cost more
                # than the file's write
                step = max(PLACE_SLICE, -(-len(checked) // WRITERS))
                for i in range(0, len(checked), step):
                    some = checked[i : i + step]
                    future = writers.submit(_place_all, dl, [(todo, data) for _, todo, data in some], stats, progress)
                    placed.update((sha, future) for sha, _, _ in some)
                if index == len(listed):
                    break  # never read past what the bundle lists
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    except ArtregError as error:  # refused, or unreachable after the retries, or broken off
        log.info("a bundle of %d blobs broke off (%s); fetching the rest one by one", len(listed), error.message)
    wait(placed.values())
    for sha, todo in todos.items():
        if sha not in placed:
            dl.fetch_group(todo, stats, progress)
    for future in placed.values():
        future.result()  # a file that could not be written fails the download, as a lone fetch's does
