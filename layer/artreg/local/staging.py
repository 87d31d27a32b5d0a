"""Staged blobs: a large file's bytes sent before the client knows their SHA-256, so that it hashes
them while they travel instead of reading the whole file once before the first byte goes. An addition
of the local store: S3 stores an object under the key its URL names, and its store offers none.

    <root>/<project>/staging/.<id>.<random>.tmp     a staged body while it is received

A staging URL (`POST /v1/projects/{project}/staging`) is signed like a blob's, over its path, whose
only variable part is a random id the server chose (no path comes from the request), and over the
size it takes; it expires with the others. Its body is received as a single PUT's is: into a
temporary file, hashed as it is written, never past the signed size (a body of another declared
length is refused before a byte is read, one that ends early installs nothing). At its end the
server installs it under the SHA-256 it computed itself, by rename, unless that blob is stored
already (the staged copy is then dropped), and answers that SHA-256 as the ETag: nothing the client
says reaches an address. The client compares it with the SHA-256 it computed of what it sent before
it lists the file in an upload, which then finds the blob stored and asks for no byte.

A staged blob that no version comes to list is an unlisted blob like any other, reclaimed by the
janitor once past its grace period; a temporary file left by a killed server goes with the others
(`remove_stale_temporary`). The store offers staging only up to its multipart threshold: a larger
file goes in parts addressed by its SHA-256, which a killed client's next log resumes.

A client on the server's machine may instead hand the server an open descriptor of its file for a
staging URL (`local.handoff`): the file is copied in the kernel into the same temporary file, hashed
there, and installed by the same `receive`. Such a client is also offered staging URLs over the
threshold (`offer_handoff`): those are signed for the pseudo-method HANDOFF, not PUT, so that the
socket takes them and an HTTP PUT never does (the signature covers the method; the URL's `via=handoff`
only lets the PUT route say why it refuses, `check_method`). An HTTP PUT thus never takes more than
the threshold, and a file sent over HTTP keeps its resumable parts; a handed-off file needs no
resuming, as no byte of it crosses a connection that could be lost.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import parse_qsl

from artreg.local.blob_files import Receiver, check_length
from artreg.model.errors import Forbidden, NotFound
from artreg.model.names import check_project
from artreg.model.wire import StagingTarget

STAGING_ID = re.compile(r"[0-9a-f]{32}")
Sign = Callable[[str, str, int], str]  # (method, path, size) -> a signed URL
Fill = Callable[[Receiver], None]  # writes a staged blob's bytes into its temporary file, hashed
HANDOFF = "HANDOFF"  # what a staging URL over the multipart threshold is signed for: the socket only
METHODS = ("PUT", HANDOFF)
_MARK = ("via", "handoff")  # in such a URL's query, unsigned: the method is what the signature binds


def method_of(query: str) -> str:
    """The method a staging URL is signed for, by its query: HANDOFF for one over the threshold."""
    return HANDOFF if _MARK in parse_qsl(query, keep_blank_values=True) else "PUT"


def check_method(method: str, query: str) -> None:
    """Forbidden, before its signature is checked, for a staging URL used with another method than
    its own (a PUT of a URL for the handoff socket gets a reason: a signature mismatch would not say)."""
    if method == method_of(query):
        return
    if method == "PUT":
        raise Forbidden(
            "this staging URL is taken on the handoff socket only: over the multipart threshold, a file sent "
            "over HTTP goes in parts",
            code="handoff_only",
        )
    raise Forbidden("a staging URL takes a PUT only", code="signature_mismatch")


class FolderStaging:
    """The staging URLs of one folder store, and the bodies sent to them."""

    def __init__(
        self,
        root: Path,
        prefix: str,
        sign: Sign,
        path_of: Callable[[str, str], Path],
        holds: Callable[[str, int], bool],
    ) -> None:
        self.root = root
        self.prefix = prefix
        self.sign = sign
        self.path_of = path_of  # (project, sha256) -> the blob's path, from checked names only
        self.holds = holds  # (path, size) -> stored with that size and not condemned

    def offer(self, project: str, sizes: Sequence[int], largest: int) -> list[StagingTarget]:
        """A PUT URL for each size from 1 byte to `largest` (the multipart threshold: a larger file goes
        in parts, which resume), each under a new random id."""
        check_project(project)
        return [
            StagingTarget(
                size=size,
                url=self.sign("PUT", self._path(project), size) if 0 < size <= largest else None,
            )
            for size in sizes
        ]

    def offer_handoff(self, project: str, offered: Sequence[StagingTarget], largest: int) -> list[StagingTarget]:
        """`offered` (by `offer`), with a URL for the handoff socket (`local.handoff`) for each size over
        `largest`, the multipart threshold, under a new random id; for callers on this machine only."""
        check_project(project)
        return [
            StagingTarget(
                size=target.size,
                url=f"{self.sign(HANDOFF, self._path(project), target.size)}&{'='.join(_MARK)}",
                handoff_only=True,
            )
            if target.url is None and target.size > largest
            else target
            for target in offered
        ]

    def _path(self, project: str) -> str:
        return f"{self.prefix}/blobs/{project}/staging/{secrets.token_hex(16)}"

    def receive(self, project: str, staging_id: str, size: int, fill: Fill, *, sync: bool) -> str:
        """Stores the `size` bytes that `fill` writes into a temporary file (a PUT's body, copied from the
        socket, or a handed-off file, copied in the kernel: `local.handoff`), hashed as written, under
        the SHA-256 they have, unless that blob is stored already; answers the SHA-256."""
        check_project(project)
        if not STAGING_ID.fullmatch(staging_id):
            raise NotFound("no such staging URL")  # (verify_url's route admits no other id)
        folder = self.root / project / "staging"
        with Receiver(folder / staging_id) as out:
            fill(out)
            check_length(out.size, size)
            sha256 = out.sha256.hexdigest()
            target = self.path_of(project, sha256)
            if self.holds(str(target), size):
                return sha256  # stored already: the staged copy is dropped as the block ends
            target.parent.mkdir(parents=True, exist_ok=True)
            out.install(size, sha256, sync=sync, target=target)
        return sha256
