"""Staging: a large file sent to `artreg server` before its SHA-256 is known, hashed on another thread
while its bytes go (hashlib lets the GIL go), instead of read once to hash it and once more to send
it. The server hashes what it writes, stores the blob under the SHA-256 it computed and answers it;
the SDK compares it with its own, and then logs as usual: the hashes it learnt stand in for reading
the files again, and the upload finds the blobs stored (docs/api.md, "Staged blobs").

Only for files of at least `STAGE_MIN` bytes that the hash cache does not know and did not see sent
so with the stat they have (either may be stored already: the usual path, which hashes first, then
sends no byte of it), in a log of at most `MAX_STAGED` files without `if_changed` (whose files are
expected unchanged: so too), and only where the server offers it: S3 offers none, and an older
server has no such route; then nothing is sent here and the log goes the usual way. A file whose
digest does not match, or that changed while it was read, is left to that usual path too (it is
hashed again and checked by its own PUT).

Where the server names a handoff socket (it runs on this machine), a file is handed to it as an open
descriptor instead of PUT (`client.handoff`): the server copies and hashes it, and the SDK hashes
nothing; any failure there falls back to the PUT. The SDK that can hand off asks for files over the
multipart threshold too (`Artreg-Handoff: large`); a URL offered for one is `handoff_only`: never PUT,
such a file is handed off or, if that fails, left to the usual path (hashed, then its resumable parts).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from artreg.client import handoff
from artreg.client import progress as bars
from artreg.client.common import segment, wire
from artreg.client.errors import NotFound
from artreg.client.files import LocalFile, run_parallel
from artreg.client.hashcache import Stat
from artreg.client.progress import Progress
from artreg.client.transfer import FileChunks
from artreg.model.errors import MethodNotAllowed
from artreg.model.handoff import HEADER, LARGE
from artreg.model.wire import MAX_STAGED, Stage, Staging

if TYPE_CHECKING:
    from artreg.client.registry import Registry

log = logging.getLogger("artreg")
STAGE_MIN = 32 * 1024**2  # hashing this much first (~25 ms) costs several times the staging request
_AHEAD = 2  # chunks sent ahead of the hasher at most (it hashes a MiB in well under the time one takes to send)
Known = dict[Stat, str]  # the SHA-256 of files read here, by the stat they had while read


class HashingChunks(FileChunks):
    """The file's chunks as `FileChunks` reads them, each also hashed on a thread of its own, in order,
    while the caller sends it: the digest is that of exactly the bytes sent."""

    def __init__(self, source: str, length: int, progress: Progress, hasher: ThreadPoolExecutor) -> None:
        super().__init__(source, 0, length, progress.update)
        self.digest = hashlib.sha256()
        self.hasher = hasher
        self.pending: deque[Future[None]] = deque()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in super().__iter__():
            self.pending.append(self.hasher.submit(self.digest.update, chunk))
            while len(self.pending) > _AHEAD:
                self.pending.popleft().result()
            yield chunk

    def hexdigest(self) -> str:
        while self.pending:
            self.pending.popleft().result()
        return self.digest.hexdigest()


def stage(reg: Registry, files: Iterable[LocalFile], desc: str, shown: bool | None) -> Known:
    """Sends the large files among `files` that the server may take before their SHA-256 is known;
    answers the SHA-256 of each one it stored, by the file's stat."""
    listed = list(itertools.islice(files, MAX_STAGED + 1))
    if len(listed) > MAX_STAGED:
        return {}
    stats = list({stat.path: stat for stat in map(Stat.of, (file.source for file in listed))}.values())
    cache = reg.hashes
    known = cache.lookup(stats) if cache is not None else [None] * len(stats)
    # a file sent so before with this stat, too recently modified then for its SHA-256 to be cached: it
    # is likely stored, and hashing it first sends none of its bytes
    sent = cache.was_sent(stats) if cache is not None else [False] * len(stats)
    large = [
        stat
        for stat, sha256, again in zip(stats, known, sent, strict=True)
        if sha256 is None and not again and stat.size >= STAGE_MIN
    ]
    if not large:
        return {}
    path = f"/v1/projects/{segment(reg.project)}/staging"
    asked = wire(Stage, sizes=[s.size for s in large]).model_dump_json().encode()
    try:
        answer = reg.transport.api("POST", path, body=asked, headers={HEADER: LARGE} if handoff.SUPPORTED else None)
    except (NotFound, MethodNotAllowed):
        return {}  # a server without staging: the usual path
    offered = Staging.model_validate(answer.json())
    # a server on this machine names a socket to hand it the files instead (`client.handoff`)
    socket_path = answer.header(HEADER) if handoff.SUPPORTED else None
    targets = [
        (stat, t.url, t.handoff_only)
        for stat, t in zip(large, offered.staging, strict=False)
        if t.url and t.size == stat.size and (socket_path or not t.handoff_only)
    ]
    found: Known = {}
    if not targets:
        return found
    read_at = time.time_ns()
    bar = bars.unsized(desc, shown)
    try:
        sends = [partial(_send, reg, stat, url, bar, found, socket_path, only) for stat, url, only in targets]
        run_parallel(sends, reg.workers)
    finally:
        bar.close()
    if cache is not None:
        cache.store(list(found.items()), read_at)
        cache.note_sent(list(found))
    return found


def _send(
    reg: Registry, stat: Stat, url: str, bar: Progress, found: Known, socket_path: str | None, handoff_only: bool
) -> None:
    """Hands one file off to the server for its staging URL where the server names a socket, else (or
    if that fails) PUTs it there, hashed as it goes; records its SHA-256 in `found` if the server's is
    the same and the file did not change meanwhile (`client.handoff`: the stat stands in for a hash).
    A `handoff_only` URL (over the multipart threshold) is never PUT: that file is left to its parts."""
    then = "logging it in parts" if handoff_only else "sending it over HTTP"
    if socket_path is not None:
        try:
            found[stat] = handoff.hand_off(socket_path, url, stat)
        except handoff.Refused as refused:
            log.info("the server did not take %s by handoff (%s); %s", stat.path, refused, then)
        except OSError as error:
            log.debug("no handoff of %s to %s (%s); %s", stat.path, socket_path, error, then)
        else:
            bar.update(stat.size)
            return
    if handoff_only:
        return
    tries: list[HashingChunks] = []
    # one thread a file: its chunks are hashed in order
    with ThreadPoolExecutor(1, thread_name_prefix="artreg-stage-hash") as hasher:

        def body() -> HashingChunks:
            if tries:
                bar.update(-tries[-1].sent)
            tries.append(HashingChunks(stat.path, stat.size, bar, hasher))
            return tries[-1]

        etag = reg.transport.put_blob(url, {}, stat.size, body)
        mine = tries[-1].hexdigest()
    theirs = etag.strip('"')
    if theirs != mine:
        log.warning("the server stored %s as SHA-256 %s, not %s; logging it the usual way", stat.path, theirs, mine)
        return
    try:
        unchanged = Stat.of(stat.path) == stat
    except OSError:
        unchanged = False
    if unchanged:
        found[stat] = mine  # (one thread a key: no lock needed for a dict's item assignment)
    else:
        log.info("%s changed while it was sent; it is hashed again", stat.path)
