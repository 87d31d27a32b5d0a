"""The folder blob store's file-system primitives: a blob received into a temporary file and
installed by rename, files written atomically, the folder's URL key, and the records a multipart
upload and a condemnation leave beside the blobs (`local.blobs` says the layout)."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import itertools
import json
import os
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, BinaryIO

from artreg.model.errors import Invalid, NotFound
from artreg.registry.records import StoredBlob

_MiB = 1024**2
CHUNK = 4 * _MiB  # a stream may answer less: the server hands on each MiB it gathers as it came
WRITE_BEHIND = 8 * _MiB  # a large body's writes are sent to the disk in steps of this much, as they come


class Receiver:
    """A temporary file beside `target` that becomes `target` only through `install`, after the
    checks; it is removed when the block ends otherwise (a killed process leaves only a `.tmp`)."""

    def __init__(self, target: Path) -> None:
        # plain system calls: for a blob of a few bytes, a buffered file object and a folder made each
        # time cost more than writing it
        try:
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        self.target = target
        self.temp = name
        self.fd: int | None = fd
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.behind = WriteBehind(fd)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:  # not installed
            os.close(self.fd)
            self.fd = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)

    def copy(self, source: BinaryIO, length: int) -> None:
        """Appends `length` bytes of `source`, hashed as they are written (the SHA-256 that `install`
        checks): the bytes are read once, from the socket."""
        assert self.fd is not None
        remaining = length
        while remaining > 0:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                raise Invalid(f"the body ended {remaining} bytes short of its length", code="incomplete_body")
            self.sha256.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.fd, view) :]
            self.size += len(chunk)
            remaining -= len(chunk)
            self.behind.written(self.size)

    def install(self, size: int, sha256: str, *, sync: bool, target: Path | None = None) -> None:
        """Renames the file into place once its size and SHA-256 are checked; `sync`: fsync'd first
        (where no `GroupSync` makes it durable later). `target`: another place on the same file system
        than the one it was made beside (a staged blob's, known once it is hashed)."""
        if target is not None:
            self.target = target
        check_length(self.size, size)
        check_digest(self.sha256.hexdigest(), sha256)
        assert self.fd is not None
        if sync:
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        try:
            os.replace(self.temp, self.target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)
            raise
        condemnation_mark(self.target).unlink(missing_ok=True)  # a new copy: no longer condemned


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_TEMP_NAMES = itertools.count()


def install_bytes(target: str, data: bytes, size: int, sha256: str, *, sync: bool) -> None:
    """A blob held whole in memory (a bundle's) put at `target` by `Receiver`'s rule: checked
    first (so bytes that are not the blob never reach the disk), written aside in the same folder, then
    renamed into place; `sync`: fsync'd first. Plain system calls on strings and a counter for the
    temporary name: for a blob of a few bytes, pathlib and tempfile cost more than the kernel's work."""
    check_length(len(data), size)
    check_digest(hashlib.sha256(data).hexdigest(), sha256)
    final = target
    folder, name = os.path.split(final)
    while True:
        temp = f"{folder}/.{name}.{os.getpid():x}-{next(_TEMP_NAMES):x}.tmp"
        try:
            fd = os.open(temp, _NEW_FILE, 0o600)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            continue
        except FileExistsError:  # left by a killed process of the same id: another name
            continue
        break
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(final + CONDEMNED)  # a new copy: no longer condemned


class WriteBehind:
    """Starts the disk writes of a file being written, WRITE_BEHIND bytes at a time, as its bytes come
    (Linux's sync_file_range(2), SYNC_FILE_RANGE_WRITE: asynchronous, and no promise of durability):
    so the disk works while the body is still arriving, and the sync that makes the blob durable
    before its commit (`GroupSync`, or an fsync) finds little left to write. A no-op elsewhere."""

    def __init__(self, fd: int, start: int = 0) -> None:
        self.fd = fd
        self.started = start  # the bytes from where the writing began up to here were sent to the disk

    def written(self, end: int) -> None:
        """The file holds its bytes up to `end` (written in order from where the writing began)."""
        if SYNC_FILE_RANGE is not None and end - self.started >= WRITE_BEHIND:
            SYNC_FILE_RANGE(self.fd, self.started, end - self.started)
            self.started = end


def _libc(name: str, argtypes: list[Any]) -> Any:
    """Linux's C library function `name` (returning int), which the stdlib lacks; None elsewhere."""
    if sys.platform != "linux":
        return None
    try:
        call = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    call.argtypes, call.restype = argtypes, ctypes.c_int
    return call


def _linux_sync_file_range() -> Callable[[int, int, int], None] | None:
    """sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE), or None where there is none. A
    failure is ignored: the writes are only started earlier, the sync still comes."""
    call = _libc("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])
    if call is None:
        return None
    write = 2  # SYNC_FILE_RANGE_WRITE

    def sync_file_range(fd: int, offset: int, count: int) -> None:
        call(fd, offset, count, write)

    return sync_file_range


SYNC_FILE_RANGE = _linux_sync_file_range()


def _linux_syncfs() -> Callable[[int], None] | None:
    """Linux's syncfs(2) (the stdlib has only sync(2), of every file system), or None elsewhere."""
    call = _libc("syncfs", [ctypes.c_int])
    if call is None:
        return None

    def syncfs(fd: int) -> None:
        if call(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))

    return syncfs


SYNCFS = _linux_syncfs()


class GroupSync:
    """Blobs made durable in groups: one fsync a blob costs ms on a real disk (a dataset of 100,000
    small files spent most of its upload there), while one syncfs(2) of the folder's file system makes
    thousands durable at once. An installed blob counts as written; `flush` (which a commit calls
    through `verify`, before the version that lists the blobs is recorded) syncs once for every blob
    written before it began, so no committed version ever lists a blob that a power loss could take.
    A blob installed by an earlier process counts as written too (the first flush syncs). Where
    there is no syncfs (`enabled` False), each blob is fsync'd as it is installed instead."""

    def __init__(self, root: Path, syncfs: Callable[[int], None] | None) -> None:
        self.root = root
        self.syncfs = syncfs
        self._lock = threading.Lock()  # the counters
        self._flushing = threading.Lock()  # one sync at a time: a commit waiting meanwhile needs no second
        self._written = 1  # what an earlier process installed
        self._synced = 0

    @property
    def enabled(self) -> bool:
        return self.syncfs is not None

    def written(self) -> None:
        with self._lock:
            self._written += 1

    def flush(self) -> None:
        if self.syncfs is None:
            return
        with self._lock:
            target = self._written
        if target <= self._synced:
            return
        with self._flushing:
            if target <= self._synced:
                return  # a sync that began after our blobs were written covered them
            fd = os.open(self.root, os.O_RDONLY)
            try:
                self.syncfs(fd)
            finally:
                os.close(fd)
            with self._lock:
                self._synced = max(self._synced, target)


def url_signature(key: bytes, method: str, path: str, expires: int, size: int | None, filename: str | None) -> str:
    """A URL's HMAC-SHA256 over json.dumps of its parts, byte for byte (a URL stays valid over a
    restart), written without json.dumps's set-up: a batch signs a thousand URLs."""
    quoted = [encode_basestring_ascii(v) if v is not None else "null" for v in (method, path, filename)]
    text = f"[{quoted[0]}, {quoted[1]}, {int(expires)}, {'null' if size is None else int(size)}, {quoted[2]}]"
    return hmac.digest(key, text.encode(), "sha256").hex()


def load_secret(root: Path) -> bytes:
    """This folder's signing key, made once: written aside, then linked into place, so that two
    processes starting at once agree on it and never read a half-written one."""
    path = root / ".secret"
    if not path.exists():
        fd, name = tempfile.mkstemp(dir=root, prefix=".secret.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
            os.link(name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(name)
    return bytes.fromhex(path.read_text().strip())


def is_under(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # another drive, or one relative and one absolute
        return False


def write_atomically(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def multipart_meta(staging: Path, sha256: str, default_part_size: int) -> tuple[int, int]:
    """The size of the blob that a multipart upload in progress is for, and its part size."""
    try:
        meta = json.loads((staging / "meta.json").read_text())
    except FileNotFoundError:
        raise NotFound("the multipart upload does not exist (completed or aborted)") from None
    if meta["sha256"] != sha256:
        raise NotFound(f"the multipart upload is not one of blob {sha256}")
    return int(meta["size"]), int(meta.get("part_size") or default_part_size)


def check_length(length: int, size: int) -> None:
    if length != size:
        raise Invalid(f"the body is {length} bytes, not the {size} signed for", code="bad_length")


def check_digest(actual: str, sha256: str) -> None:
    if actual != sha256:
        raise Invalid("the body's SHA-256 is not the one signed for", code="bad_digest")


def stored_blob(path: Path) -> StoredBlob | None:
    try:
        info = path.stat()
        condemned: datetime | None = datetime.fromisoformat(condemnation_mark(path).read_text())
    except FileNotFoundError:
        if not path.exists():
            return None  # reclaimed meanwhile
        condemned = None
    modified = datetime.fromtimestamp(info.st_mtime, UTC)
    return StoredBlob(path.name, info.st_size, modified, str(info.st_ino), condemned)


CONDEMNED = ".condemned"  # the suffix that names a blob's condemnation mark, beside it


def condemnation_mark(blob: Path) -> Path:
    """The janitor's mark beside a blob it means to reclaim (its text: when it was condemned)."""
    return blob.with_name(blob.name + CONDEMNED)


def part_mark(staging: Path, part_number: int) -> Path:
    """The record that a part is stored, whole and durable: its ETag."""
    return staging / f"{part_number:05d}.etag"


def part_etag(multipart_id: str, part_number: int) -> str:
    """A stored part's ETag. S3's is the MD5 of the part's bytes: here that would be one more pass over
    every byte of a multipart upload (MD5 is slower than the SHA-256 that the completion checks the
    whole by), and it tells the completion nothing that SHA-256 does not. A client only echoes it."""
    return f"{multipart_id}-{part_number}"


def recorded_etag(mark: Path) -> str | None:
    try:
        return mark.read_text() or None
    except FileNotFoundError:
        return None


# a folder's files looked up by name in it, where the system offers it (not on Windows)
_BY_FOLDER = {os.stat, os.access} <= os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


def holds(path: str, size: int, folder: int | None = None) -> bool:
    """Whether the blob file at `path` (relative to the open `folder`, if given) is stored with that
    size and not condemned (a condemned blob is sent again: see `FolderBlobStore.condemn`)."""
    try:
        if os.stat(path, dir_fd=folder).st_size != size:
            return False
    except FileNotFoundError:
        return False
    return not os.access(path + CONDEMNED, os.F_OK, dir_fd=folder)


def held(root: str, blobs: Sequence[tuple[str, int]]) -> list[bool]:
    """`holds` for each blob (checked SHA-256, size) under `root`, <2 hex>/<hex>, in their order. Each
    two-hex folder is opened once and its files are looked up by name in it: a full path's lookup
    walks every folder above it again, most of the cost of a check (a commit of 100,000 blobs checks
    each of them)."""
    found = [False] * len(blobs)
    order = sorted(range(len(blobs)), key=lambda i: blobs[i][0])
    for prefix, group in itertools.groupby(order, key=lambda i: blobs[i][0][:2]):
        folder = f"{root}/{prefix}"
        if not _BY_FOLDER:
            for i in group:
                found[i] = holds(f"{folder}/{blobs[i][0]}", blobs[i][1])
            continue
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            continue  # none of them is stored
        try:
            for i in group:
                found[i] = holds(blobs[i][0], blobs[i][1], fd)
        finally:
            os.close(fd)
    return found


def size_of(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
