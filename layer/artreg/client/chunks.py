"""Chunks of large transfers: a file's bytes read into one buffer for a PUT, and the work done on a
downloaded chunk beside writing it (hashing it, writing the cache's copy) in a second thread."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from artreg.client.errors import IntegrityError
from artreg.client.files import CHUNK, default_workers

log = logging.getLogger("artreg")
READ_ONLY = 0o444


class FileChunks:
    """The bytes [offset, offset + length) of a file, read a MiB at a time into one buffer as the PUT
    sends them: each piece is a view of that buffer, valid until the next is asked for (the HTTP
    connection sends a piece whole before it asks), so no MiB is allocated anew."""

    def __init__(self, source: str, offset: int, length: int, on_bytes: Callable[[int], None]) -> None:
        self.source = source
        self.offset = offset
        self.length = length
        self.on_bytes = on_bytes
        self.sent = 0

    def __iter__(self) -> Iterator[memoryview]:
        buffer = memoryview(bytearray(min(CHUNK, self.length)))
        with open(self.source, "rb", buffering=0) as file:
            file.seek(self.offset)
            remaining = self.length
            while remaining > 0:
                n = file.readinto(buffer[: min(len(buffer), remaining)])
                if not n:
                    raise IntegrityError(f"{self.source} got shorter after it was hashed", code="file_changed")
                remaining -= n
                self.sent += n
                self.on_bytes(n)
                yield buffer[:n]


class CacheEntry:
    """A cache entry written as its blob is downloaded, put in place (read-only) by `install` once the
    download is verified; any failure only leaves the blob uncached."""

    def __init__(self, fd: int, temp: str, where: str) -> None:
        self.fd: int | None = fd
        self.temp = temp
        self.where = where

    def write(self, chunk: bytes) -> None:
        if self.fd is None:
            return
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as error:
            log.debug("could not cache %s: %s", self.where, error)
            self.discard()

    def install(self) -> None:
        if self.fd is None:
            return
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(self.fd, READ_ONLY)
            os.close(self.fd)
            self.fd = None
            if not hasattr(os, "fchmod"):
                os.chmod(self.temp, READ_ONLY)
            os.replace(self.temp, self.where)
            self.temp = ""
        except OSError as error:
            log.debug("could not cache %s: %s", self.where, error)
            self.discard()

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.temp:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = ""


SIDE_FROM = 4 * CHUNK  # a download at least this large hashes (and caches) in a second thread
_side_pool: list[ThreadPoolExecutor] = []
_side_lock = threading.Lock()


def side_threads() -> ThreadPoolExecutor:
    """The second threads of downloads, one for each download thread at most (made at the first)."""
    with _side_lock:
        if not _side_pool:
            _side_pool.append(ThreadPoolExecutor(default_workers(), thread_name_prefix="artreg-side"))
        return _side_pool[0]


class Beside:
    """The SHA-256 of a download and the cache's copy of it, made from each chunk in a second thread
    (`threaded`) while the caller writes the chunk and reads the next: the system calls and the
    SHA-256 release the GIL, so they run at once. One chunk at a time, in order."""

    def __init__(self, entry: CacheEntry | None, *, threaded: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.entry = entry
        self.pool = side_threads() if threaded else None
        self.pending: Future[None] | None = None

    def _take(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.entry is not None:
            self.entry.write(chunk)

    def add(self, chunk: bytes) -> None:
        if self.pool is None:
            self._take(chunk)
            return
        self.finish()
        self.pending = self.pool.submit(self._take, chunk)

    def finish(self) -> None:
        """Waits for the chunk in hand (raising what it raised)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def hexdigest(self) -> str:
        self.finish()
        return self.sha256.hexdigest()
