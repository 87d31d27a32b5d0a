"""Handoff: a staged blob from a client on the same machine as `artreg server`, which passes the
server an open file descriptor of its file over a Unix socket (SCM_RIGHTS) instead of its bytes
over HTTP. The server copies the file in the kernel (copy_file_range(2); sendfile(2), or reads and
writes, where the kernel refuses) into the very temporary file a staged PUT is received into,
hashes its own copy on a second thread right behind the copy (hashlib and the reads let the GIL
go), and installs it as a staged PUT's body is installed (`local.staging`): under the SHA-256 it
computed, dropped if that blob is stored already. Passing the bytes through Python on both sides
costs each process about as much CPU as the whole copy; here neither touches them but to hash.

The message, each way, is a 4-byte big-endian length and a JSON object. The client sends
`{"url": <a staging URL>}` with exactly one descriptor; the server answers `{"sha256", "size"}` or
`{"error": {"code", "message"}}` (API.md's error detail) and closes. Linux only (SO_PEERCRED);
elsewhere, or with ARTREG_HANDOFF=0, no socket is made and the SDK PUTs staged blobs over HTTP.

Why this is safe:

- No confused deputy. The server is given a descriptor, never a path: it reads only what the client
  itself had opened, with the access the client had (one not open for reading, or opened O_PATH,
  is refused). Nothing the client says names a file of the server's, nor the blob's address.
- Only the server's own user. The socket is `<data>/handoff/<pid>-<random>.sock`, in a folder made
  0700 (a new 0700 folder of $XDG_RUNTIME_DIR or the temporary folder where that path is too long for
  a socket's), and is itself 0600; and each connection's peer credentials (SO_PEERCRED, from the
  kernel) must be the server's own uid, or root's, or it is refused before a byte is read. A socket
  left by a server that is gone is removed by the next one to start there. The socket's path is
  told only to API callers on loopback (the `Artreg-Handoff` header of a staging answer:
  `local.asgi`).
- Authorised as a staged PUT is. The message carries a staging URL, verified as its PUT would be
  (signed, expiring, bound to one project and one size); the copy is exactly that size: a
  descriptor that is not a regular file, a file of another size, one that ends early while it is
  copied or is longer than signed is refused, and nothing is installed.
- Never the source's word. The SHA-256 is that of the server's own copy, read back from its
  temporary file: a client that changes its file meanwhile gets a blob stored under the digest of
  the bytes the server holds, whatever they are, never under a digest they do not have.
- Bounded. A message is at most MAX_MESSAGE bytes and one descriptor (more are refused; the kernel
  closes those it truncates); a client has MESSAGE_SECONDS to send it; at most MAX_AT_ONCE handoffs
  are taken at once (another is refused: the client sends that one over HTTP), and of those
  COPIES_AT_ONCE copy, the others waiting their turn up to QUEUE_SECONDS (then refused as well): a
  copy keeps two threads busy (the copy, the hash), and four at once on two CPUs took longer than
  one after another and tripled the resolves' p99 (`python -m benchmarks server-load`). The copy runs on the
  connection's own thread, never on the event loop, and it and its hash run at a lower CPU priority
  (`in_background`): a resolve does not wait behind them. A client that is gone when the copy ends
  gets nothing installed; a killed server leaves a `.tmp` file, reclaimed as the other stale ones
  are (`remove_stale_temporary`).

Made durable as a staged PUT's blob is (`GroupSync`, or an fsync where there is none), its disk
writes started as it is copied (`WriteBehind`).

Files over the multipart threshold too. Over HTTP such a file goes in parts, which a killed client's
next log resumes; a PUT never takes more than the threshold. A handoff needs no resuming: no byte
crosses a connection that could be lost, and a copy takes about what `cp` does. So a client that asks
(`Artreg-Handoff: large` on its staging request), on loopback, of a server with a socket, is also
offered URLs for its sizes over the threshold (`offer_large`), marked `handoff_only` and signed for
the pseudo-method HANDOFF, which the socket verifies and the HTTP PUT route refuses (`handoff_only`,
403: `local.staging`). Such a client hands the file off or, if that fails, logs it the usual way
(hashed, then its parts). A client killed during the copy gets nothing installed, as above: its
next log copies the file again (it could not have been told the SHA-256, and a blob no version lists
would only wait for the janitor); the temporary file is in the blob store, as a PUT's is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import queue
import secrets
import select
import socket
import socketserver
import stat
import struct
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from artreg.local import staging
from artreg.local.blob_files import Receiver
from artreg.model.errors import ArtregError, Forbidden, Invalid
from artreg.model.handoff import HEAD, frame, parse
from artreg.model.wire import Staging

if TYPE_CHECKING:
    from artreg.local.blobs import FolderBlobStore

log = logging.getLogger("artreg.server")
MAX_MESSAGE = 8 * 1024  # a staging URL and a little JSON
MESSAGE_SECONDS = 10.0  # to send the message, once connected
MAX_AT_ONCE = 16  # handoffs taken at once (MAX_STAGED files of one log, or several logs)
COPIES_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)  # a copy keeps two threads busy: the copy and the hash
QUEUE_SECONDS = 20.0  # a handoff's wait for its turn to copy (under the SDK's ANSWER_SECONDS: it is told why)
STEP = 8 * 1024**2  # copied, then hashed, at a time
BACKGROUND_NICE = 10
_UNSUPPORTED = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
_O_PATH = getattr(os, "O_PATH", 0)
_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)  # a descriptor received is no child process's
_MAX_SOCKET_PATH = 108  # sockaddr_un's sun_path on Linux, its final NUL included
SUPPORTED = sys.platform == "linux" and hasattr(socket, "SO_PEERCRED") and hasattr(socket, "send_fds")


def peer_allowed(uid: int, own: int) -> bool:
    """A peer may hand off if it runs as the server's own user, or as root (who may read its files anyway)."""
    return uid in (own, 0)


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket, as the kernel recorded it at connect."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def send_message(conn: socket.socket, body: dict[str, Any]) -> None:
    conn.sendall(frame(body))


def receive_message(conn: socket.socket, limit: int) -> tuple[dict[str, Any], int | None]:
    """One message and the descriptor that came with its first bytes (the caller closes it). Invalid
    if it is over `limit` bytes, not a JSON object, or came with more than one descriptor."""
    data, fd = b"", None
    try:
        while len(data) < HEAD.size or len(data) < HEAD.size + HEAD.unpack_from(data)[0]:
            if len(data) >= HEAD.size and HEAD.unpack_from(data)[0] > limit:
                raise Invalid(f"a handoff message is at most {limit} bytes", code="too_large")
            piece, fds, flags, _ = socket.recv_fds(conn, limit + HEAD.size - len(data), 1, _CLOEXEC)
            if fds and fd is None and not data:
                fd, fds = fds[0], fds[1:]
            for extra in fds:
                os.close(extra)
            if fds or flags & socket.MSG_CTRUNC:  # (the kernel closed those it could not pass)
                raise Invalid("a handoff carries one file descriptor", code="invalid_request")
            if not piece:
                raise Invalid("the handoff message ended early", code="incomplete_body")
            data += piece
        try:
            body = parse(data[HEAD.size :])
        except ValueError:
            raise Invalid("a handoff message is a JSON object", code="invalid_request") from None
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return body, fd


class _Copier:
    """Copies a range of one file into another in the kernel: copy_file_range, else sendfile, else
    reads and writes, downgraded for good at the first refusal of the kernel or file system."""

    def __init__(self) -> None:
        self.mode = 0 if hasattr(os, "copy_file_range") else 1

    def __call__(self, source: int, target: int, count: int, offset: int) -> int:
        while True:
            try:
                if self.mode == 0:
                    return os.copy_file_range(source, target, count, offset, offset)
                if self.mode == 1:
                    os.lseek(target, offset, os.SEEK_SET)  # sendfile writes at the target's own offset
                    return os.sendfile(target, source, offset, count)
                data = os.pread(source, count, offset)
                view = memoryview(data)
                while view:
                    view = view[os.pwrite(target, view, offset + len(data) - len(view)) :]
                return len(data)
            except OSError as error:
                if self.mode == 2 or error.errno not in _UNSUPPORTED:
                    raise
                self.mode += 1


def in_background() -> None:
    """Lowers the calling thread's CPU priority (nice 10: on Linux a nice value is a thread's own), so
    that a handoff's copy and hash, bulk work, take the CPU the event loop leaves: a resolve is not to
    wait behind them. Threads end with their handoff; none is ever raised again."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def check_source(fd: int, size: int) -> None:
    """A descriptor the server may copy a blob of `size` bytes from: a regular file, open for reading,
    of that size now (the copy checks it again: `copy_hashed`)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise Invalid("the descriptor handed off is not a regular file", code="not_a_file")
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if flags & _O_PATH or flags & os.O_ACCMODE == os.O_WRONLY:
        raise Invalid("the descriptor handed off is not open for reading", code="not_readable")
    if info.st_size != size:
        raise Invalid(f"the file is {info.st_size} bytes, not the {size} signed for", code="bad_length")


def copy_hashed(source: int, out: Receiver, size: int) -> None:
    """Copies `size` bytes of `source` into the receiver's file in the kernel, STEP at a time, while a
    second thread hashes each step read back from the receiver's file: the SHA-256 of the server's own
    copy, never of the source, which its owner may still change. Invalid if the source ends early or
    is longer than `size` (nothing is installed: the caller's receiver drops its file)."""
    assert out.fd is not None
    target = out.fd
    steps: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    digest = hashlib.sha256()
    failed: list[BaseException] = []

    def hash_behind() -> None:
        in_background()
        buffer = bytearray(STEP)
        try:
            while (step := steps.get()) is not None:
                offset, count = step
                while count:
                    got = os.preadv(target, [memoryview(buffer)[:count]], offset)
                    digest.update(memoryview(buffer)[:got])
                    offset, count = offset + got, count - got
        except BaseException as error:  # reported when the copy ends
            failed.append(error)

    hasher = threading.Thread(target=hash_behind, name="artreg-handoff-hash", daemon=True)
    hasher.start()
    copy, done = _Copier(), 0
    try:
        while done < size:
            count = copy(source, target, min(STEP, size - done), done)
            if count == 0:
                raise Invalid(f"the file ended {size - done} bytes short of its size", code="incomplete_body")
            steps.put((done, count))
            done += count
            out.behind.written(done)
        if os.pread(source, 1, size):
            raise Invalid(f"the file is longer than the {size} bytes signed for", code="bad_length")
    finally:
        steps.put(None)
        hasher.join()
    if failed:
        raise failed[0]
    out.sha256, out.size = digest, done


def connected(conn: socket.socket) -> bool:
    """The client still waits on its connection (it has not closed it, nor died)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return True
    with contextlib.suppress(OSError):
        return bool(conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    return False


def remove_stale(folder: Path) -> None:
    """Removes the sockets of servers that are gone (a killed one, or one that uvicorn's signal
    handling ended without its `finally`): a connection to them is refused."""
    for path in folder.glob("*.sock"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)
            except OSError:
                continue


def offer_large(blobs: FolderBlobStore, project: str, answer: bytes) -> bytes:
    """A staging answer (JSON) with URLs for the handoff socket only for its sizes over the multipart
    threshold (`local.staging`): for a client on this machine that asked, of a server with a socket."""
    offered = Staging.model_validate_json(answer).staging
    extended = blobs.staging.offer_handoff(unquote(project), offered, blobs.multipart_threshold)
    return Staging(staging=extended).model_dump_json().encode()


class _Handler(socketserver.BaseRequestHandler):
    server: HandoffServer
    request: socket.socket

    def handle(self) -> None:
        in_background()
        try:
            answer = self.server.hand_off(self.request)
        except ArtregError as error:
            answer = {"error": {"code": error.code, "message": error.message}}
        except Exception:
            log.exception("a handoff failed")
            answer = {"error": {"code": "internal_error", "message": "the handoff failed; see the server's log"}}
        with contextlib.suppress(OSError):
            send_message(self.request, answer)


class HandoffServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The handoff socket of one folder blob store: a thread a connection (the stdlib's socketserver),
    each handing off one file; `start` makes it and serves it on a thread of its own."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, blobs: FolderBlobStore, path: str) -> None:
        self.blobs = blobs
        self.own_uid = os.geteuid()
        self.slots = threading.BoundedSemaphore(MAX_AT_ONCE)
        self.copying = threading.BoundedSemaphore(COPIES_AT_ONCE)
        self.path = path
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, blobs: FolderBlobStore, folder: Path) -> HandoffServer | None:
        """The socket, listening, in `folder` (made 0700), or in a new 0700 folder of the runtime folder
        where that path is too long for a socket's; None where there is no SCM_RIGHTS and SO_PEERCRED."""
        if not SUPPORTED:
            return None
        name = f"{os.getpid()}-{secrets.token_hex(4)}.sock"  # several servers may share a data folder
        try:
            if len(os.fsencode(folder / name)) < _MAX_SOCKET_PATH:
                folder.mkdir(mode=0o700, exist_ok=True)
                os.chmod(folder, 0o700)
                remove_stale(folder)
            else:
                folder = Path(tempfile.mkdtemp(prefix="artreg-", dir=os.environ.get("XDG_RUNTIME_DIR") or None))
            server = cls(blobs, str(folder / name))
        except OSError as error:
            log.warning("no handoff socket (%s): local clients send staged blobs over HTTP", error)
            return None
        # (socketserver's loop sees `shutdown` at its next poll: a short one, for a quick stop)
        server._thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="artreg-handoff", daemon=True)
        server._thread.start()
        return server

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.path))  # (if no other server's socket is in it)

    def hand_off(self, conn: socket.socket) -> dict[str, Any]:
        """One connection's handoff: checks, copy, install; answers the SHA-256 and size."""
        if not peer_allowed(peer_uid(conn), self.own_uid):
            raise Forbidden("a handoff is taken from the server's own user only", code="forbidden")
        if not self.slots.acquire(blocking=False):
            raise ArtregError("too many handoffs at once; send it over HTTP", code="busy")
        try:
            conn.settimeout(MESSAGE_SECONDS)
            try:
                body, fd = receive_message(conn, MAX_MESSAGE)
            except TimeoutError:
                raise Invalid(f"no handoff message within {MESSAGE_SECONDS:g} s", code="timeout") from None
            try:
                if fd is None:
                    raise Invalid("a handoff carries one file descriptor", code="invalid_request")
                url = body.get("url")
                if not isinstance(url, str):
                    raise Invalid("a handoff names its staging URL", code="invalid_request")
                split = urlsplit(url)
                signed = self.blobs.verify_url(staging.method_of(split.query), split.path, split.query)
                if signed.staged is None or signed.size is None:
                    raise Forbidden("a handoff takes a staging URL only", code="signature_mismatch")
                size = signed.size
                check_source(fd, size)

                def fill(out: Receiver) -> None:
                    copy_hashed(fd, out, size)
                    if not connected(conn):  # (the client's copy could not be answered: none is kept)
                        raise Invalid("the client went away during its handoff", code="incomplete_body")

                if not self.copying.acquire(timeout=QUEUE_SECONDS):
                    raise ArtregError("the server is busy copying other handoffs; send it over HTTP", code="busy")
                try:
                    sha256 = self.blobs.receive_staged(signed, fill)
                finally:
                    self.copying.release()
            finally:
                if fd is not None:
                    os.close(fd)
        finally:
            self.slots.release()
        return {"sha256": sha256, "size": size}
