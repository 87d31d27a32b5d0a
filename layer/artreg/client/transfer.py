"""Moving bytes: the missing blobs of an upload to their presigned URLs, and a version's files into a
folder, verified, through a local content cache, never outside that folder."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import os
import re
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from artreg.client.bundles import bundle_puts
from artreg.client.errors import ArtregError, IntegrityError, Invalid, StreamBroken
from artreg.client.files import CHUNK, HashedFile, default_workers, hash_file, run_parallel
from artreg.client.http import BodyFactory, RetryPolicy, Transport
from artreg.client.progress import NoProgress, Progress
from artreg.model.names import check_path, check_sha256
from artreg.model.wire import Bundle, DownloadFile, MissingBlob, Part

log = logging.getLogger("artreg")
Fetch = Callable[[str], Iterator[bytes]]
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_FICLONE = 0x40049409  # Linux's ioctl that makes a file share another's extents (btrfs, XFS, ...)
_READ_ONLY = 0o444
SMALL = 64 * 1024  # a blob up to this size is gathered in memory and written in one go (and cached from memory)
_TEMP_NAMES = itertools.count()
_PID = [os.getpid()]  # os.getpid() is a system call each time; a forked child takes its own


def _forked() -> None:
    _PID[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


# ---------------------------------------------------------------- uploads


class FileChunks:
    """The bytes [offset, offset + length) of a file, read a MiB at a time as the PUT sends them. Each
    piece is bytes of its own, not a view of a reused buffer: whatever takes the body (a retry layer, a
    proxy, a test's stand-in for S3) may hold the pieces it was given."""

    def __init__(self, source: str, offset: int, length: int, on_bytes: Callable[[int], None]) -> None:
        self.source = source
        self.offset = offset
        self.length = length
        self.on_bytes = on_bytes
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        with open(self.source, "rb", buffering=0) as file:
            file.seek(self.offset)
            remaining = self.length
            while remaining > 0:
                chunk = file.read(min(CHUNK, remaining))
                if not chunk:
                    raise IntegrityError(f"{self.source} got shorter after it was hashed", code="file_changed")
                remaining -= len(chunk)
                self.sent += len(chunk)
                self.on_bytes(len(chunk))
                yield chunk


def _body(source: str, offset: int, length: int, progress: Progress) -> BodyFactory:
    """A body for `Transport.put_blob`: a fresh reader for each try, taking back the progress that a
    failed try had counted."""
    tries: list[FileChunks] = []

    def make() -> FileChunks:
        if tries:
            progress.update(-tries[-1].sent)
        tries.append(FileChunks(source, offset, length, progress.update))
        return tries[-1]

    return make


def _put_whole(transport: Transport, blob: MissingBlob, source: str, progress: Progress) -> None:
    assert blob.url is not None
    transport.put_blob(blob.url, blob.headers, blob.size, _body(source, 0, blob.size, progress))


def _put_part(
    transport: Transport,
    url: str,
    source: str,
    offset: int,
    length: int,
    progress: Progress,
    etags: dict[int, str],
    number: int,
) -> None:
    etag = transport.put_blob(url, {}, length, _body(source, offset, length, progress))
    if not etag:
        raise ArtregError(f"the blob store answered part {number} without an ETag", code="no_etag")
    etags[number] = etag


def upload_blobs(
    transport: Transport,
    missing: Sequence[MissingBlob],
    sources: Mapping[str, HashedFile],
    *,
    complete: Callable[[str, list[Part]], None],
    workers: int | None = None,
    progress: Progress | None = None,
    bundles: Sequence[Bundle] = (),
) -> None:
    """PUTs every missing blob, streamed from the first local file with its SHA-256: in one request
    with exactly the answer's headers, or part by part from each part's offset, then `complete(sha256,
    parts)` with the ETag of each part sent; the small ones in the `bundles` offered (`client.bundles`).
    All PUTs of all blobs share one bounded pool. A multipart upload that a killed client began lists
    only the parts not stored yet: only those are sent, and the completion names them."""
    progress = progress or NoProgress()
    tasks, bundled = bundle_puts(transport, bundles, missing, sources, progress, _put_whole)
    etags_of: dict[str, dict[int, str]] = {}
    for blob in missing:
        local = sources.get(blob.sha256)
        if local is None or local.size != blob.size:
            raise ArtregError(f"the registry asked for blob {blob.sha256[:12]}..., which this upload did not offer")
        if blob.sha256 in bundled:
            continue
        target = blob.multipart
        if target is not None:
            # a resumed upload lists only the parts the store lacks: each part stands on its own number
            count = math.ceil(blob.size / target.part_size) if target.part_size > 0 else 0
            numbers = [part.part_number for part in target.parts]
            if not numbers or len(set(numbers)) != len(numbers) or not all(1 <= n <= count for n in numbers):
                raise ArtregError(f"the multipart target of blob {blob.sha256[:12]}... does not fit its size")
            etags = etags_of[blob.sha256] = {}
            for part in target.parts:
                offset = (part.part_number - 1) * target.part_size
                length = min(target.part_size, blob.size - offset)
                tasks.append(
                    partial(
                        _put_part, transport, part.url, local.source, offset, length, progress, etags, part.part_number
                    )
                )
        elif blob.url is not None:
            tasks.append(partial(_put_whole, transport, blob, local.source, progress))
        else:
            raise ArtregError(f"the registry gave blob {blob.sha256[:12]}... neither a URL nor parts")
    run_parallel(tasks, workers or default_workers())
    finishing = [
        partial(complete, sha256, [Part(part_number=n, etag=etags[n]) for n in sorted(etags)])
        for sha256, etags in etags_of.items()
    ]
    run_parallel(finishing, workers or default_workers())


# ---------------------------------------------------------------- the download guard


def _inside(root: str, path: str) -> bool:
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:  # another drive
        return False


# Components that both POSIX and Windows read as one name in the folder they are joined to: not empty,
# no separator of either (so never absolute), no colon (`D:x` is relative to drive D's current folder,
# not to ours; `x:s` is a stream). One pattern over the whole path: a call of ntpath and posixpath a
# component cost a 100,000-file download seconds of its planning thread.
_PLAIN_NAMES = re.compile(r"[^/\\:]+(?:/[^/\\:]+)*")


def destination(root: str, path: str, resolved: dict[str, str] | None = None) -> str:
    """Where a manifest's `path` is written under the folder `root` (a real path). Refuses, before
    anything is written, a path that breaks API.md's rule (absolute, `..`, backslash, ...) and one
    whose folder, once the symbolic links that already exist inside `root` are resolved, is not
    inside `root`. The last component is never resolved: a link there is replaced, not followed.
    `resolved` memoises folders already checked (this SDK never creates a link, so a checked folder
    stays inside)."""
    check_path(path)
    if not _PLAIN_NAMES.fullmatch(path):  # the rule holds this already; a guard holds it again
        raise Invalid(
            f"file path {path[:200]!r} has a component that is not a plain file name",
            code="unsafe_path",
            details={"path": path[:200]},
        )
    folder, _, name = path.rpartition("/")
    real_folder = resolved.get(folder) if resolved is not None else None
    if real_folder is None:
        joined = os.path.join(root, *folder.split("/")) if folder else root
        real_folder = os.path.realpath(joined)
        if not (_inside(root, os.path.abspath(joined)) and _inside(root, real_folder)):
            raise Invalid(
                f"file path {path[:200]!r} leads outside the download folder {root}",
                code="unsafe_path",
                details={"path": path[:200]},
            )
        if resolved is not None:
            resolved[folder] = real_folder
    return os.path.join(real_folder, name)


def _new_temp(folder: str, name: str | None = None, mode: int = 0o666) -> tuple[int, str]:
    """A new file in `folder` (O_EXCL: never an existing file or link), `mode` less the umask; `name`:
    that one (FileExistsError if it is there)."""
    while True:
        # unique by process and count, no random bytes to draw: O_EXCL refuses a name left by another
        path = name or os.path.join(folder, f".artreg-{_PID[0]:x}-{next(_TEMP_NAMES):x}.part")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, mode), path
        except FileExistsError:
            if name:
                raise


def _write_new(dest: str, data: bytes, *, read_only: bool = False, in_place: bool = False) -> None:
    """Puts `data` at `dest` atomically, as `_install` puts a file's bytes: a small file from memory in
    a few system calls (its folder made only when it is missing). `in_place` (a cache entry, hashed
    again before any use, so one cut short is only ever dropped): created at `dest` itself, read-only,
    without the temporary file and rename, unless a file is there already."""
    folder = os.path.dirname(dest)
    at, mode = (dest, _READ_ONLY) if in_place else (None, 0o666)
    try:
        fd, temp = _new_temp(folder, at, mode)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd, temp = _new_temp(folder, at, mode)
    except FileExistsError:  # in place: another download's entry, or a spoiled one, replaced atomically
        _write_new(dest, data, read_only=read_only)
        return
    placed = False
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if read_only and not in_place and hasattr(os, "fchmod"):
                os.fchmod(fd, _READ_ONLY)
        finally:
            os.close(fd)
        if read_only and not in_place and not hasattr(os, "fchmod"):
            os.chmod(temp, _READ_ONLY)
        if not in_place:
            os.replace(temp, dest)
        placed = True
    finally:
        if not placed:  # (in place: the entry cut short)
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _install(source: str, dest: str, *, link: bool = False, read_only: bool = False) -> None:
    """Puts the bytes of `source` at `dest` atomically: written aside, then `os.replace`d, which
    replaces a link at `dest` rather than writing through it. A copy by default (a reflink where the
    file system has one), so that no write to `dest` can reach `source`; a hard link only when `link`
    (the caller made `source` read-only first), falling back to a copy across file systems."""
    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    temp = ""
    try:
        if link:
            temp = os.path.join(folder, f".artreg-{_PID[0]:x}-{next(_TEMP_NAMES):x}.part")
            try:
                os.link(source, temp)
            except OSError:
                temp = ""
        if not temp:
            fd, temp = _new_temp(folder)
            with open(fd, "wb") as out:
                _copy_into(out.fileno(), source)
        if read_only:
            os.chmod(temp, _READ_ONLY)
        os.replace(temp, dest)
    finally:
        if temp and os.path.lexists(temp):
            os.unlink(temp)


def _copy_into(out: int, source: str) -> None:
    """Copies `source` into the empty open file `out`: a reflink where the file system has one
    (FICLONE: the two share blocks until one is written, and a write never reaches the other), else
    in the kernel (copy_file_range), else through a buffer."""
    with open(source, "rb") as data:
        src = data.fileno()
        if _reflink(src, out):
            return
        size = os.fstat(src).st_size
        copied = 0
        try:
            while copied < size and (n := os.copy_file_range(src, out, size - copied)) > 0:
                copied += n
        except (AttributeError, OSError):  # no such call here, or not between these file systems
            pass
        if copied == size:
            return
        os.ftruncate(out, 0)
        os.lseek(out, 0, os.SEEK_SET)
        data.seek(0)
        with open(out, "wb", closefd=False) as file:
            shutil.copyfileobj(data, file, CHUNK)


def _reflink(src: int, out: int) -> bool:
    if sys.platform != "linux":
        return False
    import fcntl

    try:
        fcntl.ioctl(out, _FICLONE, src)
    except OSError:  # not a file system with shared extents (ext4, tmpfs), or across two of them
        return False
    return True


def _holds(dest: str, sha256: str, size: int) -> bool:
    """Whether `dest` is a regular file (not a link) with that size and SHA-256."""
    try:
        info = os.lstat(dest)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        return hash_file(dest, follow=False)[0] == sha256
    except OSError:
        return False


# ---------------------------------------------------------------- the local content cache


class BlobCache:
    """Blobs by content at `<root>/blobs/sha256/<2 hex>/<hex>`, shared by every registry and project
    (a SHA-256 names the same bytes everywhere). Entries are read-only copies: a download folder
    gets a copy of its own (or, when asked for, a hard link to the read-only entry), so nothing done
    in a download folder changes the cache. A hit is still re-hashed before use (a user may have
    made an entry writable and edited it); one that fails is replaced by the next fetch. Filling it
    never fails a download."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._blobs = str(self.root / "blobs" / "sha256")

    def path_of(self, sha256: str) -> Path:
        return Path(self._where(sha256))

    def _where(self, sha256: str) -> str:
        """`path_of` as a string, made without pathlib (twice a file of a download: its cost showed)."""
        check_sha256(sha256)
        return os.path.join(self._blobs, sha256[:2], sha256)

    def get(self, sha256: str, size: int) -> str | None:
        """The cached file of that blob, or None; an entry that is not that blob is removed."""
        path = self._where(sha256)
        if not os.path.lexists(path):
            return None
        if _holds(path, sha256, size):
            return path
        try:
            os.unlink(path)
        except OSError as error:
            log.debug("could not drop the spoiled cache entry %s: %s", sha256, error)
        return None

    def put(self, sha256: str, source: str | bytes) -> None:
        """Stores a read-only copy of `source` (a file, or a small blob's bytes; already verified) as
        the entry, replacing any other."""
        try:
            if isinstance(source, bytes):
                _write_new(self._where(sha256), source, read_only=True, in_place=True)
            else:
                _install(source, self._where(sha256), read_only=True)
        except OSError as error:
            log.debug("could not cache blob %s: %s", sha256, error)


# ---------------------------------------------------------------- downloads


@dataclass
class DownloadStats:
    downloaded: int = 0  # files written from bytes fetched from the blob store
    from_cache: int = 0  # files taken from the local cache
    skipped: int = 0  # files already in place with the right content
    bytes: int = 0  # bytes fetched (a blob listed at two paths is fetched once)


class Downloader:
    """Writes files of a manifest under a folder: every path is checked first (see `destination`),
    each distinct blob is fetched once, streamed into a temporary file beside its destination while
    hashed, checked against the manifest's size and SHA-256 (a mismatch removes it and raises
    `IntegrityError`), and only then `os.replace`d into place. A destination that already holds the
    content is skipped; the cache, when given, is asked first and filled after a fetch. Files from
    the cache are copies, or hard links to its read-only entries with `link`."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        cache: BlobCache | None = None,
        workers: int | None = None,
        retry: RetryPolicy | None = None,
        link: bool = False,
    ) -> None:
        self.fetch = fetch
        self.cache = cache
        self.link = link  # files taken from the cache are hard links to its read-only entries
        self.workers = workers or default_workers()
        self.retry = retry or RetryPolicy()
        self._lock = threading.Lock()
        self._resolved: dict[str, dict[str, str]] = {}  # real root -> folder in the manifest -> real folder

    def plan(
        self, root: str | os.PathLike[str], files: Sequence[DownloadFile]
    ) -> dict[str, list[tuple[DownloadFile, str]]]:
        """The destinations of `files` under `root`, grouped by blob; raises before writing anything."""
        real_root = os.path.realpath(root)
        resolved = self._resolved.setdefault(real_root, {})
        groups: dict[str, list[tuple[DownloadFile, str]]] = {}
        seen: dict[str, str] = {}
        for file in files:
            check_sha256(file.sha256)
            if file.size < 0:
                raise Invalid(f"file {file.path[:200]!r} has a negative size")
            dest = destination(real_root, file.path, resolved)
            if seen.setdefault(dest, file.sha256) != file.sha256:
                raise Invalid(f"file path {file.path[:200]!r} is listed twice with different content")
            group = groups.setdefault(file.sha256, [])
            if all(d != dest for _, d in group):
                group.append((file, dest))
        return groups

    def download(
        self, root: str | os.PathLike[str], files: Sequence[DownloadFile], progress: Progress | None = None
    ) -> DownloadStats:
        groups = self.plan(root, files)
        os.makedirs(os.path.realpath(root), exist_ok=True)
        stats = DownloadStats()
        shown = progress or NoProgress()
        tasks = [partial(self._materialize, group, stats, shown) for group in groups.values()]
        run_parallel(tasks, self.workers)
        return stats

    def _count(self, stats: DownloadStats, **add: int) -> None:
        with self._lock:
            for key, value in add.items():
                setattr(stats, key, getattr(stats, key) + value)

    def _materialize(self, group: list[tuple[DownloadFile, str]], stats: DownloadStats, progress: Progress) -> None:
        todo = self.settle(group, stats, progress)
        if todo:
            self.fetch_group(todo, stats, progress)

    def settle(
        self, group: list[tuple[DownloadFile, str]], stats: DownloadStats, progress: Progress
    ) -> list[tuple[DownloadFile, str]]:
        """The destinations of one blob left to fetch, once those holding it are skipped and the cache asked."""
        first = group[0][0]
        sha256, size = first.sha256, first.size
        todo = [(file, dest) for file, dest in group if not _holds(dest, sha256, size)]
        self._count(stats, skipped=len(group) - len(todo))
        progress.update(size * (len(group) - len(todo)))
        if not todo:
            return []
        cached = self.cache.get(sha256, size) if self.cache else None
        if cached is not None:
            link = self.link
            if link:
                try:
                    os.chmod(cached, _READ_ONLY)  # an entry cached before entries were made read-only
                except OSError:
                    link = False  # never a link to an entry that stays writable
            for _, dest in todo:
                _install(cached, dest, link=link)
            self._count(stats, from_cache=len(todo))
            progress.update(size * len(todo))
            return []
        return todo

    def place(
        self, todo: list[tuple[DownloadFile, str]], data: bytes, stats: DownloadStats, progress: Progress
    ) -> None:
        """Writes a blob fetched and checked elsewhere (a bundle's) to its destinations and the cache."""
        for _, dest in todo:
            _write_new(dest, data)
        if self.cache:
            self.cache.put(todo[0][0].sha256, data)
        self._count(stats, downloaded=len(todo), bytes=todo[0][0].size)
        progress.update(todo[0][0].size * len(todo))

    def fetch_group(self, todo: list[tuple[DownloadFile, str]], stats: DownloadStats, progress: Progress) -> None:
        file, dest = todo[0]
        sha256, size = file.sha256, file.size
        data = self._fetch(file, dest, progress)
        self._count(stats, downloaded=1, bytes=size)
        if self.cache:
            self.cache.put(sha256, dest if data is None else data)
        for _, other in todo[1:]:
            _install(dest, other, link=False)
            self._count(stats, downloaded=1)
            progress.update(size)

    def _fetch(self, file: DownloadFile, dest: str, progress: Progress) -> bytes | None:
        """Streams the blob into a temporary file beside `dest`, verified, then into place. A stream
        that breaks off is started over (bounded by the retry policy); nothing half-written stays. A
        small blob is gathered in memory, verified, then written: its bytes are answered, for the cache."""
        if file.size <= SMALL:
            data = self._fetch_small(file, progress)
            _write_new(dest, data)
            return data
        self._fetch_large(file, dest, progress)
        return None

    def _fetch_small(self, file: DownloadFile, progress: Progress) -> bytes:
        retry = 0
        while True:
            pieces: list[bytes] = []
            got = 0
            try:
                chunks = self.fetch(file.url)
                try:
                    for chunk in chunks:
                        pieces.append(chunk)
                        got += len(chunk)
                        if got > file.size:
                            break
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()
            except StreamBroken:
                retry += 1
                if retry >= self.retry.attempts:
                    raise
                self.retry.sleep(self.retry.delay(retry - 1))
                continue
            data = b"".join(pieces)
            _check(file, len(data), hashlib.sha256(data).hexdigest())
            progress.update(len(data))
            return data

    def _fetch_large(self, file: DownloadFile, dest: str, progress: Progress) -> None:
        folder = os.path.dirname(dest)
        os.makedirs(folder, exist_ok=True)
        retry = 0
        while True:
            fd, temp = _new_temp(folder)
            written = 0
            try:
                digest = hashlib.sha256()
                with open(fd, "wb") as out:
                    chunks = self.fetch(file.url)
                    try:
                        for chunk in chunks:
                            if written + len(chunk) > file.size:
                                written += len(chunk)
                                break
                            out.write(chunk)
                            digest.update(chunk)
                            written += len(chunk)
                            progress.update(len(chunk))
                    finally:
                        close = getattr(chunks, "close", None)
                        if close is not None:
                            close()
                _check(file, written, digest.hexdigest())
                os.replace(temp, dest)
                return
            except StreamBroken:
                progress.update(-min(written, file.size))
                retry += 1
                if retry >= self.retry.attempts:
                    raise
                self.retry.sleep(self.retry.delay(retry - 1))
            finally:
                if os.path.lexists(temp):
                    os.unlink(temp)


def _check(file: DownloadFile, size: int, sha256: str) -> None:
    """IntegrityError unless the bytes downloaded (`size` of them, with that SHA-256) are the manifest's."""
    if size != file.size or sha256 != file.sha256:
        raise IntegrityError(
            f"{file.path}: the bytes downloaded do not match the manifest"
            f" ({'over ' if size > file.size else ''}{size} bytes, expected {file.size} with SHA-256 {file.sha256})",
            details={"path": file.path, "sha256": file.sha256, "size": file.size},
        )
