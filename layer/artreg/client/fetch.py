"""Reading a version's stored files: `download` (a version, or one file of it, into a folder) and
`open_file` (one file as a read-only binary file, verified before it is handed out). Both go
through `Downloader` (artreg.client.transfer): every byte is checked against the manifest's size
and SHA-256, and the local cache is asked first and filled after a fetch."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

from artreg.client import bundles
from artreg.client import progress as bars
from artreg.client.errors import Invalid, NotFound
from artreg.client.files import HashedFile
from artreg.client.logged import DownloadResult
from artreg.client.manifests import Staged, remember
from artreg.client.transfer import BlobCache, Downloader, DownloadStats
from artreg.client.version import Version
from artreg.model.wire import MAX_FILES_PER_REQUEST, DownloadFile, DownloadPage, FileEntry, RemoteEntry

if TYPE_CHECKING:
    from artreg.client.registry import Registry

_RENEW_BEFORE = timedelta(seconds=60)  # refetch a download page whose URLs expire sooner than this


def _downloader(reg: Registry, cache: bool | None, workers: int | None = None) -> Downloader:
    use_cache = reg.cache is not None if cache is None else cache
    return Downloader(
        reg.transport.get_blob,
        cache=(reg.cache or BlobCache(reg.settings.cache_dir)) if use_cache else None,
        workers=workers or reg.workers,
        retry=reg.transport.retry,
    )


def download(
    reg: Registry,
    name: str,
    ref: str,
    root: str | os.PathLike[str],
    *,
    only: str | None = None,
    workers: int | None = None,
    cache: bool | None = None,
    progress: bool | None = None,
) -> DownloadResult:
    """What `Registry.download` does (see there); `only`: that file alone (NotFound if the version
    does not store it)."""
    page_size = [("limit", str(MAX_FILES_PER_REQUEST))]
    first = DownloadPage.model_validate(reg._call("GET", f"{reg._version(name, ref)}/download", query=page_size))
    # the later pages of the version the first resolved to, should the alias move meanwhile
    path = f"{reg._version(name, first.version)}/download"

    def fetch_page(cursor: str | None) -> DownloadPage:
        query = [*page_size, *([("cursor", cursor)] if cursor else [])]
        page = DownloadPage.model_validate(reg._call("GET", path, query=query))
        if page.digest != first.digest:
            raise Invalid(f"{name}@{first.version} changed while it was listed", code="version_changed")
        return page

    downloader = _downloader(reg, cache, workers)
    stats = DownloadStats()
    remote: list[RemoteEntry] = []
    found = False
    shown = reg.progress if progress is None else progress
    desc = f"download {name}@{first.version}"
    bar = (
        bars.bar(reg.get_artifact(name, first.version).size, desc, shown)
        if bars.enabled(shown) and not only
        else bars.unsized(desc, shown)
    )
    # one page in hand and the next on its way: memory holds two pages whatever the version's size
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artreg-pages")
    # a page's files are written while the next page's are planned and begun: no wait for a page's
    # last bundle before the next one starts (three pages at most in memory)
    writing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="artreg-page-files")
    pending: Future[DownloadStats] | None = None

    def add(done: DownloadStats) -> None:
        stats.downloaded += done.downloaded
        stats.from_cache += done.from_cache
        stats.skipped += done.skipped
        stats.bytes += done.bytes

    # the whole manifest, kept as the base of a later log of this version (client.upload)
    staging: contextlib.AbstractContextManager[Staged | None] = contextlib.nullcontext()
    if reg.manifests is not None and only is None:
        staging = reg.manifests.staging()
    with staging as staged:
        try:
            page, cursor = first, None
            while True:
                following = ahead.submit(fetch_page, page.next_cursor) if page.next_cursor else None
                expires = page.expires_at if page.expires_at.tzinfo else page.expires_at.replace(tzinfo=UTC)
                if expires - datetime.now(UTC) < _RENEW_BEFORE:
                    page = fetch_page(cursor)
                chosen = [f for f in page.files if only is None or f.path == only]
                if chosen:  # every path of the page is checked before any of its files is written
                    found = True
                    offered = page.bundles if only is None else []
                    started = writing.submit(bundles.download, downloader, root, chosen, offered, bar)
                    if pending is not None:
                        add(pending.result())
                    pending = started
                    if staged is not None:
                        for f in chosen:
                            staged.add(HashedFile(f.path, os.path.join(root, f.path), f.sha256, f.size))
                remote.extend(entry for entry in page.remote if only is None or entry.path == only)
                if following is None or (only is not None and found):
                    break
                cursor, page = page.next_cursor, following.result()
            if pending is not None:
                add(pending.result())
        finally:
            writing.shutdown(wait=True, cancel_futures=True)
            ahead.shutdown(wait=True, cancel_futures=True)
            bar.close()
        if staged is not None and not remote:
            remember(reg, staged, name, first.version, first.digest)
    if only is not None and not found:
        raise NotFound(f"file {only!r} is not stored in {name}@{first.version}", details={"path": only})
    return DownloadResult(
        path=Path(os.path.realpath(root)),
        version=Version(first.version),
        digest=first.digest,
        downloaded=stats.downloaded,
        from_cache=stats.from_cache,
        skipped=stats.skipped,
        bytes=stats.bytes,
        remote=remote,
    )


def entry_of(reg: Registry, name: str, ref: str, path: str) -> tuple[str, FileEntry | RemoteEntry]:
    """(the version `ref` resolves to, the entry of `path` in it); NotFound when it has none."""
    record = reg.get_artifact(name, ref)
    entries: Iterable[FileEntry | RemoteEntry] = (
        [*record.files, *record.remote] if not record.files_truncated else record.iter_files()
    )
    for entry in entries:
        if entry.path == path:
            return record.version, entry
    raise NotFound(f"file {path!r} is not in {name}@{record.version}", details={"path": path})


def open_file(reg: Registry, name: str, ref: str, path: str) -> IO[bytes]:
    """`Registry.open`: the file `path` of `name@ref`, fetched whole into the cache (or a temporary
    file when the cache is off) and verified before it is opened."""
    version, entry = entry_of(reg, name, ref, path)
    if isinstance(entry, RemoteEntry):
        raise Invalid(
            f"{name}@{version}/{path} is a reference to {entry.uri}, not stored in the registry: open that URI",
            details={"path": path, "uri": entry.uri},
        )
    cached = reg.cache.get(entry.sha256, entry.size) if reg.cache else None  # re-hashed: verified
    if cached is not None:
        return open(cached, "rb")
    answer = reg.transport.api("GET", f"{reg._version(name, version)}/files/{quote(path, safe='/')}")
    url = answer.header("Location")
    if answer.status not in (301, 302, 303, 307, 308) or not url:
        raise Invalid(f"the registry answered {answer.status} without a URL for {name}@{version}/{path}")
    folder = tempfile.mkdtemp(prefix="artreg-open-")
    try:
        blob = DownloadFile(path="blob", size=entry.size, sha256=entry.sha256, url=url)
        _downloader(reg, None, workers=1).download(folder, [blob])
        # open, then remove: on POSIX the open file outlives its name
        return open(os.path.join(folder, "blob"), "rb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
