"""Bundles: many small blobs in one request to the folder store's signed URLs, where each blob in its
own request spends more on the request (the client's and the server's HTTP work) than on its bytes.
An addition of the local store: S3 takes one object a request, and its store offers none.

    <root>/<project>/bundles/<id>.json      the (sha256, size) pairs a bundle carries, in its order

A bundle's URL is signed like a blob's, over its path (the id) and its total size; the id is an HMAC
of the record's list under the folder's key, so the URL names exactly those blobs and a record can be
no other list. No path comes from the request: the server reads back the record it wrote, and builds
every blob's path from a checked SHA-256 as for a single PUT.

An upload's bundle is the blobs' bytes concatenated in the record's order, read in one pass, never
past the signed total. Each blob is written, hashed and installed exactly as its own PUT would be (a
temporary file renamed into place once its size and SHA-256 are checked), from a small pool of
threads, a few blobs a task, so that the kernel's work of creating files (most of a small blob's cost)
runs in parallel.
A blob whose bytes are wrong is not stored, and the others are: they are checked content, stored
under their own SHA-256, which the client then need not send again; the request is refused (`400
bad_digest`) naming the wrong ones. A body that ends early stores the blobs it carried whole, and
nothing of the one it cut off. A download's bundle answers the blobs' bytes the same way round.
"""

from __future__ import annotations

import functools
import hmac
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import BinaryIO

from artreg.local.blob_files import write_atomically
from artreg.model.errors import Forbidden, Invalid, NotFound
from artreg.model.names import check_project, check_sha256
from artreg.model.wire import Bundle
from artreg.small_files import read_small

_MiB = 1024**2
SMALL = _MiB  # a blob up to this size goes in a bundle; a larger one is as quick in a request of its own
# A bundle's bounds. A batch of 1,000 missing blobs comes as 4 bundles, which the SDK sends at once.
MAX_BLOBS = 250
MAX_BYTES = 16 * _MiB
# what an upload's bundle holds in memory at most while its blobs are written (the read runs ahead)
_AHEAD_BYTES = 8 * _MiB
_AHEAD_TASKS = 8
# the blobs a writer's task stores in turn: for files of a few bytes, handing each on alone (a future,
# a wake-up, the GIL passed back and forth) cost more than writing it
_TASK_BLOBS = 16
_TASK_BYTES = 256 * 1024
WRITERS = 8  # threads creating files: they wait on the kernel, with the GIL let go


Blobs = Sequence[tuple[str, int]]
Sign = Callable[[str, str, int], str]  # (method, path, size) -> a signed URL


def cut(blobs: Blobs, small: int) -> list[list[tuple[str, int]]]:
    """The blobs of at most `small` bytes, each once, in bundles of even length within the bounds; a
    blob alone is left to its own URL (one request either way)."""
    fitting = list({sha: (sha, size) for sha, size in blobs if size <= small}.values())
    if len(fitting) < 2:
        return []
    per = math.ceil(len(fitting) / math.ceil(len(fitting) / MAX_BLOBS))
    groups: list[list[tuple[str, int]]] = [[]]
    total = 0
    for sha, size in fitting:
        if groups[-1] and (len(groups[-1]) >= per or total + size > MAX_BYTES):
            groups.append([])
            total = 0
        groups[-1].append((sha, size))
        total += size
    return [group for group in groups if len(group) > 1]


class FolderBundles:
    """The bundles of one folder store: their records, their URLs, and the bytes through them."""

    def __init__(self, root: Path, key: bytes, prefix: str, sign: Sign, path_of: Callable[[str, str], str]) -> None:
        self.root = root
        self.key = key
        self.prefix = prefix
        self.sign = sign
        self.path_of = path_of  # (project, sha256) -> the blob's path, from checked names only

    @functools.cached_property
    def pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(WRITERS, thread_name_prefix="artreg-bundle")

    # ------------------------------------------------------------ records

    def _record(self, project: str, bundle_id: str) -> Path:
        check_project(project)
        return self.root / project / "bundles" / f"{bundle_id}.json"

    def _id(self, project: str, blobs: Blobs) -> str:
        text = json.dumps(["bundle", project, [[sha, size] for sha, size in blobs]])
        return hmac.digest(self.key, text.encode(), "sha256").hex()[:32]

    def offer(self, method: str, project: str, blobs: Blobs, small: int) -> list[Bundle]:
        """URLs (PUT or GET) of bundles of the small ones of `blobs`, each with its record written."""
        offered = []
        for group in cut(blobs, small):
            bundle_id = self._id(project, group)
            record = self._record(project, bundle_id)
            try:
                os.utime(record)  # the same list again (a retried request, a download read twice): kept fresh
            except FileNotFoundError:
                record.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(record, json.dumps(group).encode())
            total = sum(size for _, size in group)
            url = self.sign(method, f"{self.prefix}/blobs/{project}/bundles/{bundle_id}", total)
            offered.append(Bundle(url=url, blobs=[sha for sha, _ in group], size=total))
        return offered

    def blobs(self, project: str, bundle_id: str, size: int | None) -> list[tuple[str, int]]:
        """The blobs of a bundle whose URL was verified (signed for `size` bytes in all)."""
        try:
            listed = json.loads(self._record(project, bundle_id).read_bytes())
        except FileNotFoundError:
            raise NotFound("the bundle is gone (its URL expired long ago); ask the registry for new URLs") from None
        blobs = [(str(sha), int(length)) for sha, length in listed]
        for sha, _ in blobs:
            check_sha256(sha)
        if self._id(project, blobs) != bundle_id or sum(length for _, length in blobs) != size:
            raise Forbidden("the bundle's record is not the one its URL was signed for", code="signature_mismatch")
        return blobs

    # ------------------------------------------------------------ bytes

    def receive(self, blobs: Blobs, stream: BinaryIO, store: Callable[[str, int, bytes], object]) -> None:
        """Reads each blob's bytes from `stream` in order and has `store` write it (a single PUT's
        checks), several at once; Invalid `bad_digest` naming the blobs whose bytes were wrong."""
        wrong: list[str] = []
        running: deque[tuple[int, Future[list[str]]]] = deque()
        held = 0

        def store_all(some: list[tuple[str, int, bytes]]) -> list[str]:
            refused = []
            for sha, size, data in some:
                try:
                    store(sha, size, data)
                except Invalid as error:
                    if error.code not in ("bad_digest", "bad_length"):
                        raise
                    refused.append(sha)
            return refused

        def settle_oldest() -> None:
            nonlocal held
            size, future = running.popleft()
            held -= size
            wrong.extend(future.result())

        def hand_on(some: list[tuple[str, int, bytes]], size: int) -> None:
            nonlocal held
            running.append((size, self.pool.submit(store_all, some)))
            held += size
            while held > _AHEAD_BYTES or len(running) > _AHEAD_TASKS:
                settle_oldest()

        task: list[tuple[str, int, bytes]] = []
        task_bytes = 0
        try:
            for sha, size in blobs:
                task.append((sha, size, _read_exactly(stream, size)))
                task_bytes += size
                if len(task) >= _TASK_BLOBS or task_bytes >= _TASK_BYTES:
                    full, full_bytes, task, task_bytes = task, task_bytes, [], 0
                    hand_on(full, full_bytes)
            if task:
                last, task = task, []
                hand_on(last, task_bytes)
        except BaseException:
            if task:  # the blobs received whole before the body failed
                running.append((task_bytes, self.pool.submit(store_all, task)))
            wait([future for _, future in running])  # the blobs received whole are stored before the answer
            raise
        while running:
            settle_oldest()
        if wrong:
            raise Invalid(
                f"{len(wrong)} of the bundle's {len(blobs)} blobs are not the bytes signed for, and are not "
                "stored; the others are",
                code="bad_digest",
                details={"blobs": wrong},
            )

    def pieces(self, project: str, blobs: Blobs) -> Iterator[bytes]:
        """The blobs' bytes in order, about a MiB at a time, each MiB's files read at once by the pool;
        NotFound for a blob gone (or changed) since the bundle was offered."""

        def read(sha256: str, size: int) -> bytes:
            try:
                data = read_small(self.path_of(project, sha256), size)
            except FileNotFoundError:
                data = b""
            if len(data) != size:
                raise NotFound(f"blob {sha256} of project {project} is no longer stored")
            return data

        def read_all(some: Blobs) -> bytes:
            return b"".join([read(sha, size) for sha, size in some])

        def read_group(group: Blobs) -> bytes:
            # a task a slice of blobs, not a blob: for files of a few bytes, a task costs more than the read
            step = -(-len(group) // WRITERS)
            return b"".join(self.pool.map(read_all, [group[i : i + step] for i in range(0, len(group), step)]))

        group: list[tuple[str, int]] = []
        total = 0
        for sha, size in blobs:
            group.append((sha, size))
            total += size
            if total >= _MiB:
                yield read_group(group)
                group, total = [], 0
        if group:
            yield read_group(group)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    first = stream.read(size)
    if len(first) == size:
        return first
    pieces, got = [first], len(first)
    while got < size:
        piece = stream.read(size - got)
        if not piece:
            raise Invalid(f"the body ended {size - got} bytes short of its length", code="incomplete_body")
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)
