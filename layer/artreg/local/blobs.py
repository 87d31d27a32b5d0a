"""The blob store on a folder: the embedded default's S3 bucket.

    <root>/.secret                                       the HMAC key of this folder's URLs (0600)
    <root>/<project>/blobs/sha256/<2 hex>/<hex>          content-addressed blobs
    <root>/<project>/manifests/<digest>/<index>.json     manifests too large for a version record
    <root>/<project>/multipart/<id>/data                 a multipart upload's parts, each written at its offset
    <root>/<project>/multipart/<id>/<part>.etag          the record that a part is stored (its ETag)
    <root>/<project>/quarantine/<hex>.<inode>            blobs whose bytes the janitor found corrupt
    <root>/<project>/bundles/<id>.json                   what a bundle URL carries (see `local.bundles`)
    <root>/<project>/staging/.<id>.<random>.tmp          a staged blob being received (see `local.staging`)

Clients PUT and GET blobs through URLs that the local server answers, signed with HMAC-SHA256 and
expiring, as S3's presigned ones are. A blob becomes visible at its address only by `os.replace` of
a temporary file in the same folder after its size and SHA-256 were checked: a half-written or
wrong upload never becomes a blob. Every path is built from a checked project and digest only.
Blobs are made durable in groups, before a commit records a version that lists them (`GroupSync`).

A multipart upload's id is derived from the content (HMAC of project, SHA-256, size and part size):
the next upload of the same content finds the parts a killed client stored, and is asked only for
the others. Completing it is one read of the data file, to check its SHA-256, and a rename.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, quote_plus, urlsplit

from artreg.local import blob_files, bundles, staging
from artreg.local.blob_files import (
    CHUNK,
    GroupSync,
    Receiver,
    WriteBehind,
    check_length,
    condemnation_mark,
    is_under,
    load_secret,
    multipart_meta,
    part_etag,
    part_mark,
    recorded_etag,
    size_of,
    stored_blob,
    write_atomically,
)
from artreg.model import manifest, multipart
from artreg.model.errors import Forbidden, Invalid, NotFound
from artreg.model.manifest import Entry
from artreg.model.names import PROJECT_RE, SHA256_RE, check_project, check_sha256
from artreg.model.wire import (
    Bundle,
    MissingBlob,
    MultipartTarget,
    Part,
    PresignedPart,
    RemoteEntry,
    RemoteSpec,
    StagingTarget,
)
from artreg.registry.policy import SystemClock
from artreg.registry.ports import Clock
from artreg.registry.records import StoredBlob, UnsettledBlob

_MiB = 1024**2
_MULTIPART_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class SignedRequest:
    """What a verified URL allows: a PUT or GET of one blob, a PUT of one part of it, or a PUT or GET
    of a bundle of blobs (`bundle`, its id; `sha256` is then empty), or a PUT of a staged blob (`staged`,
    its id; `sha256` empty: the store computes it)."""

    method: str
    project: str
    sha256: str
    size: int | None  # of the blob, part or bundle; None on a GET of a blob that was absent when signed
    multipart_id: str | None = None
    part_number: int | None = None
    filename: str | None = None  # for a GET's Content-Disposition
    bundle: str | None = None
    staged: str | None = None


class FolderBlobStore:
    """`BlobStore` over the folder `root` (created on first use), its URLs under `base_url`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        base_url: str,
        presign_seconds: int = 900,
        # higher than S3's 64 MiB: here a single PUT is checked as it is written, while joining parts
        # reads and writes every byte once more; over it, parts let a lost connection resume
        multipart_threshold: int = 512 * _MiB,
        part_size: int = 64 * _MiB,
        clock: Clock | None = None,
        file_roots: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.root = Path(root)
        self._root_name = os.fspath(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        # the folders whose files `file://` references may be pinned from: none unless the server is told
        self.file_roots = tuple(os.path.realpath(r) for r in file_roots)
        split = urlsplit(base_url)
        self._origin = f"{split.scheme}://{split.netloc}"
        self._prefix = split.path.rstrip("/")
        self._route = re.compile(
            re.escape(self._prefix) + r"/blobs/([^/]+)/([^/]+)(?:/parts/([^/]+)/([1-9][0-9]{0,4}))?"
        )
        self.presign_seconds = presign_seconds
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.clock = clock or SystemClock()
        self._key = load_secret(self.root)
        self.durability = GroupSync(self.root, blob_files.SYNCFS)
        self._bundle_route = re.compile(re.escape(self._prefix) + r"/blobs/([^/]+)/bundles/([0-9a-f]{32})")
        self.bundles = bundles.FolderBundles(self.root, self._key, self._prefix, self._url, self._blob_file)
        self._staging_route = re.compile(re.escape(self._prefix) + r"/blobs/([^/]+)/staging/([0-9a-f]{32})")
        self.staging = staging.FolderStaging(self.root, self._prefix, self._url, self._blob_path, blob_files.holds)

    # ------------------------------------------------------------ paths: only from checked names

    def _blob_path(self, project: str, sha256: str) -> Path:
        return Path(self._blob_file(project, sha256))

    def _blob_file(self, project: str, sha256: str) -> str:
        """`_blob_path` as a string, made without pathlib: a dataset's 100,000 small files ask it a few
        times each (offered, verified, downloaded), and pathlib's joins cost more than the stat."""
        check_project(project)
        check_sha256(sha256)
        return f"{self._root_name}/{project}/blobs/sha256/{sha256[:2]}/{sha256}"

    def _staging(self, project: str, multipart_id: str) -> Path:
        check_project(project)
        if not isinstance(multipart_id, str) or not _MULTIPART_ID.fullmatch(multipart_id):
            raise NotFound(f"multipart upload {multipart_id[:64]!r} does not exist")
        return self.root / project / "multipart" / multipart_id

    def _manifest_path(self, project: str, digest: str, index: int) -> Path:
        check_project(project)
        check_sha256(digest)
        if not isinstance(index, int) or index < 0:
            raise Invalid(f"manifest chunk index {index!r} is not valid")
        return self.root / project / "manifests" / digest / f"{index:06d}.json"

    # ------------------------------------------------------------ uploads

    def find_missing(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        return [
            (sha, size)
            for (sha, size), held in zip(blobs, self._held(project, blobs), strict=True)
            if not held and not self._finish_staged(project, sha, size)
        ]

    def _held(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[bool]:
        """`blob_files.holds` for each blob, the names checked first (see `blob_files.held`)."""
        check_project(project)
        for sha, _ in blobs:
            check_sha256(sha)
        return blob_files.held(f"{self._root_name}/{project}/blobs/sha256", blobs)

    def upload_targets(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[MissingBlob]:
        return [self._target(project, sha, size) for sha, size in blobs]

    def url_count(self, size: int) -> int:
        return multipart.url_count(size, self.multipart_threshold, self.part_size)

    def upload_bundles(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[Bundle]:
        return self.bundles.offer("PUT", project, blobs, min(bundles.SMALL, self.multipart_threshold))

    def download_bundles(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[Bundle]:
        return self.bundles.offer("GET", project, blobs, bundles.SMALL)

    def staging_targets(self, project: str, sizes: Sequence[int]) -> list[StagingTarget]:
        return self.staging.offer(project, sizes, self.multipart_threshold)

    def _target(self, project: str, sha256: str, size: int) -> MissingBlob:
        self._blob_file(project, sha256)  # checks the names the URL is made of
        path = f"{self._prefix}/blobs/{project}/{sha256}"
        if size <= self.multipart_threshold:
            # the signature binds the size and SHA-256: no header needs to carry them
            return MissingBlob(sha256=sha256, size=size, url=self._url("PUT", path, size), headers={})
        part_size = multipart.part_size(size, self.part_size)
        multipart_id = self._multipart_id(project, sha256, size, part_size)
        staging = self._staging(project, multipart_id)
        staging.mkdir(parents=True, exist_ok=True)
        meta = {"sha256": sha256, "size": size, "part_size": part_size}
        if not (staging / "meta.json").exists():
            write_atomically(staging / "meta.json", json.dumps(meta).encode())
        # a log of the same content after a killed one resumes: only the parts not stored yet are listed
        parts = [
            PresignedPart(
                part_number=n,
                url=self._url("PUT", f"{path}/parts/{multipart_id}/{n}", min(part_size, size - (n - 1) * part_size)),
            )
            for n in range(1, multipart.part_count(size, part_size) + 1)
            if recorded_etag(part_mark(staging, n)) is None
        ]
        return MissingBlob(
            sha256=sha256,
            size=size,
            multipart=MultipartTarget(upload_id=multipart_id, part_size=part_size, parts=parts),
        )

    def _multipart_id(self, project: str, sha256: str, size: int, part_size: int) -> str:
        """One staging folder per content and part size, so that the next upload of the same content
        finds the parts a killed one stored (signed: a name nobody can choose for other content)."""
        text = json.dumps(["multipart", project, sha256, size, part_size])
        return hmac.digest(self._key, text.encode(), "sha256").hex()[:32]

    def _finish_staged(self, project: str, sha256: str, size: int) -> bool:
        """Completes a multipart upload of this content whose every part is stored (its client was
        killed before completing it), so that nothing is sent again; False if there is none."""
        if size <= self.multipart_threshold:
            return False
        part_size = multipart.part_size(size, self.part_size)
        staging = self._staging(project, self._multipart_id(project, sha256, size, part_size))
        count = multipart.part_count(size, part_size)
        if not (staging / "meta.json").exists() or any(
            recorded_etag(part_mark(staging, n)) is None for n in range(1, count + 1)
        ):
            return False
        try:
            self._join(project, sha256, staging, [])
        except (Invalid, NotFound):
            shutil.rmtree(staging, ignore_errors=True)  # stored parts that are not this content: start over
            return False
        return True

    def complete_multipart(self, project: str, sha256: str, multipart_id: str, parts: Sequence[Part]) -> bool:
        """Installs the blob if the ETags listed are those of the parts stored, every part is stored
        (a client that resumed lists only the parts it sent) and the whole has the blob's size and
        SHA-256; the parts stay until then, so a failed completion can be retried. Verified at once:
        the check is one read of a local file."""
        self._join(project, sha256, self._staging(project, multipart_id), parts)
        return True

    def _join(self, project: str, sha256: str, staging: Path, parts: Sequence[Part]) -> None:
        """The parts were written in place into one file as they arrived: joining them is one read of
        it to check its SHA-256, then a rename; no byte is copied."""
        target = self._blob_path(project, sha256)
        size, part_size = multipart_meta(staging, sha256, self.part_size)
        numbers = [p.part_number for p in parts]
        if numbers != sorted(set(numbers)):
            raise Invalid("parts must be listed once each, in ascending order", code="invalid_part_order")
        for part in parts:
            recorded = recorded_etag(part_mark(staging, part.part_number))
            if recorded is None:
                raise Invalid(f"part {part.part_number} was not uploaded", code="invalid_part")
            if recorded != part.etag.strip('"'):
                raise Invalid(f"part {part.part_number} has another ETag", code="invalid_part")
        absent = [
            n
            for n in range(1, multipart.part_count(size, part_size) + 1)
            if recorded_etag(part_mark(staging, n)) is None
        ]
        if absent:
            raise Invalid(
                f"parts {absent[:20]} were not uploaded", code="invalid_part", details={"parts": absent[:100]}
            )
        data = staging / "data"
        try:
            source = data.open("rb")
        except FileNotFoundError:
            if not blob_files.holds(str(target), size):
                raise NotFound("the multipart upload does not exist (completed or aborted)") from None
            source = None  # a completion killed after the rename: only the clean-up is left
        if source is not None:
            digest = hashlib.sha256()
            with source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                stored = source.tell()
            if stored != size:
                raise Invalid(f"the parts are {stored} bytes, not the {size} signed for", code="bad_length")
            if digest.hexdigest() != sha256:
                raise Invalid("the parts' SHA-256 is not the blob's", code="bad_digest")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(data, target)  # each part was made durable as it was received; the rename is not yet
            condemnation_mark(target).unlink(missing_ok=True)  # a new copy: no longer condemned
            self.durability.written()
        # the rest goes in one rename first: a kill during the removal must not leave a half-deleted upload;
        # a retry now finds no upload (404), as on S3
        finished = staging.with_name(f".{staging.name}.done")
        os.replace(staging, finished)
        shutil.rmtree(finished, ignore_errors=True)

    def verify(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[UnsettledBlob]:
        """Blobs not stored with that size. Nothing reaches a content address unchecked (`install`
        compares the SHA-256 of what it received), so the bytes need no second reading, and no blob is
        ever being verified. A commit asks this before recording a version: the blobs installed so far
        are made durable first (see `GroupSync`), those this upload deduplicated onto included."""
        self.durability.flush()
        held = self._held(project, blobs)
        return [UnsettledBlob(sha, size) for (sha, size), found in zip(blobs, held, strict=True) if not found]

    # ------------------------------------------------------------ the janitor's side

    def projects(self) -> Iterator[str]:
        for folder in sorted(self.root.iterdir()):
            if (folder / "blobs").is_dir() and PROJECT_RE.fullmatch(folder.name):
                yield folder.name

    def unlisted_blobs(self, project: str, listed: Container[str]) -> Iterator[StoredBlob]:
        for path in self._blob_paths(project):
            if path.name not in listed and (blob := stored_blob(path)) is not None:
                yield blob

    def unlisted_page(
        self, project: str, listed: Container[str], after: str | None, limit: int
    ) -> tuple[list[StoredBlob], str | None]:
        paths = [p for p in self._blob_paths(project) if after is None or p.name > after][:limit]
        found = (stored_blob(p) for p in paths if p.name not in listed)
        return [b for b in found if b is not None], paths[-1].name if len(paths) == limit else None

    def _blob_paths(self, project: str) -> list[Path]:
        """The project's blob files in sha256 order (their folder is the first two hex digits)."""
        paths = sorted((self.root / project / "blobs" / "sha256").glob("??/*"))
        return [p for p in paths if SHA256_RE.fullmatch(p.name)]

    def condemn(self, project: str, blob: StoredBlob, at: datetime) -> None:
        write_atomically(condemnation_mark(self._blob_path(project, blob.sha256)), at.isoformat().encode())

    def reclaim(self, project: str, blob: StoredBlob) -> bool:
        """Moves the blob aside first, then removes it only if it is the condemned copy: an upload that
        installed a new copy meanwhile (and lifted the condemnation) gets it back."""
        path = self._blob_path(project, blob.sha256)
        aside = path.with_name(f".{path.name}.reclaiming")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if str(aside.stat().st_ino) == blob.generation and condemnation_mark(path).exists():
            aside.unlink()
            condemnation_mark(path).unlink(missing_ok=True)
            return True
        with contextlib.suppress(FileExistsError):  # never over a copy installed since: same content, newer
            os.link(aside, path)
        aside.unlink()
        return False

    def quarantine(self, project: str, sha256: str, generation: str) -> bool:
        """Moves a blob found corrupt out of its address into the project's quarantine folder, if it is
        still the copy that was read (`generation`, its inode); a copy installed since is left in place.
        Then no download serves it, and the next log of that content finds it missing and sends it."""
        path = self._blob_path(project, sha256)
        folder = self.root / project / "quarantine"
        folder.mkdir(exist_ok=True)
        aside = folder / f"{sha256}.{generation}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if str(aside.stat().st_ino) == generation:
            condemnation_mark(path).unlink(missing_ok=True)
            return True
        with contextlib.suppress(FileExistsError):  # a new copy, installed after the read: put it back
            os.link(aside, path)
        aside.unlink()
        return False

    def remove_stale_temporary(self, older_than: float) -> int:
        """Removes what killed uploads and completions left behind, not written to for `older_than`
        seconds (far longer than any PUT takes): temporary files, finished multipart folders, and the
        records of bundles whose URLs expired long ago."""
        cutoff = self.clock.now().timestamp() - older_than
        removed = 0
        finished = [*self.root.glob("*/multipart/.*.done"), *self.root.glob("*/bundles/*.json")]
        for path in [*self.root.rglob(".*.tmp"), *finished]:
            try:
                if path.lstat().st_mtime >= cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue  # finished (installed or removed) meanwhile
            removed += 1
        return removed

    # ------------------------------------------------------------ the local server's side of the URLs

    def verify_url(self, method: str, path: str, query: str) -> SignedRequest:
        """What a request to a URL of this store may do, from its method, path and raw query string;
        raises NotFound, Invalid or Forbidden (tampered, expired, or signed for another method)."""
        bundle = self._bundle_route.fullmatch(path) or self._staging_route.fullmatch(path)
        route = self._route.fullmatch(path) if bundle is None else None
        staged = None
        if bundle is not None:
            (project, bundle_id), sha256, multipart_id, part = bundle.groups(), "", None, None
            check_project(project)
            if bundle.re is self._staging_route:
                staged, bundle_id = bundle_id, None
                staging.check_method(method, query)  # a PUT, or HANDOFF over the threshold (`local.staging`)
        elif route is None:
            raise NotFound("no such blob route")
        else:
            (project, sha256, multipart_id, part), bundle_id = route.groups(), None
            self._blob_path(project, sha256)  # Invalid for anything that is not a project and a digest
            if multipart_id is not None:
                self._staging(project, multipart_id)
        params = parse_qs(query, keep_blank_values=True)
        if any(len(values) != 1 for values in params.values()):
            raise Forbidden("a signed URL names each parameter once", code="signature_mismatch")
        given = {key: values[0] for key, values in params.items()}
        try:
            expires = int(given["expires"])
            size = int(given["size"]) if "size" in given else None
            signature = given["sig"]
        except (KeyError, ValueError):
            raise Forbidden("the URL is not signed", code="signature_mismatch") from None
        filename = given.get("filename")
        expected = blob_files.url_signature(self._key, method, path, expires, size, filename)
        if not hmac.compare_digest(expected, signature):
            raise Forbidden("the URL's signature does not match", code="signature_mismatch")
        if expires < self.clock.now().timestamp():
            raise Forbidden("the URL has expired; ask the registry for a new one", code="url_expired")
        return SignedRequest(
            method=method,
            project=project,
            sha256=sha256,
            size=size,
            multipart_id=multipart_id,
            part_number=int(part) if part else None,
            filename=filename,
            bundle=bundle_id,
            staged=staged,
        )

    def receive(self, request: SignedRequest, stream: BinaryIO, length: int) -> str:
        """Accepts the body of a verified PUT; answers its ETag (quoted, opaque: see `accept_put`, `part_etag`)."""
        if request.method != "PUT" or request.size is None:
            raise Invalid("only a PUT URL accepts a body")
        if request.staged is not None:
            check_length(length, request.size)
            # the SHA-256 the store computed, which the client checks against its own
            return f'"{self.receive_staged(request, lambda out: out.copy(stream, length))}"'
        if request.bundle is not None:
            check_length(length, request.size)
            store = functools.partial(self._accept_bytes, request.project)
            self.bundles.receive(self.bundles.blobs(request.project, request.bundle, request.size), stream, store)
            return f'"{request.bundle}"'
        if request.multipart_id is None or request.part_number is None:
            return self.accept_put(request.project, request.sha256, request.size, stream, length)
        return self.accept_part(
            request.project, request.sha256, request.multipart_id, request.part_number, request.size, stream, length
        )

    def receive_staged(self, request: SignedRequest, fill: staging.Fill) -> str:
        """The bytes of a verified staging URL, which `fill` writes (a PUT's body; a handed-off file's
        copy: `local.handoff`), stored under the SHA-256 the store computed; answers it."""
        if request.method not in staging.METHODS or request.size is None or request.staged is None:
            raise Invalid("only a staging URL takes a staged blob")
        sync = not self.durability.enabled
        sha256 = self.staging.receive(request.project, request.staged, request.size, fill, sync=sync)
        self.durability.written()
        return sha256

    def accept_put(self, project: str, sha256: str, size: int, stream: BinaryIO, length: int) -> str:
        """Streams `length` bytes into place as the blob, if they are `size` bytes with that SHA-256.
        Its ETag is opaque (S3's is an MD5: one more pass over the bytes, for nobody)."""
        target = self._blob_path(project, sha256)
        check_length(length, size)
        with Receiver(target) as out:
            out.copy(stream, length)
            out.install(size, sha256, sync=not self.durability.enabled)
        self.durability.written()
        return f'"{sha256[:32]}"'

    def _accept_bytes(self, project: str, sha256: str, size: int, data: bytes) -> None:
        """A bundle's blob, as `accept_put` stores one (see `blob_files.install_bytes`)."""
        blob_files.install_bytes(self._blob_file(project, sha256), data, size, sha256, sync=not self.durability.enabled)
        self.durability.written()

    def accept_part(
        self, project: str, sha256: str, multipart_id: str, part_number: int, size: int, stream: BinaryIO, length: int
    ) -> str:
        """Writes the part in place, at its offset in the upload's one data file (parts arrive in any
        order, at once), durably, then records its ETag: a part is stored once its record exists, and a
        resumed upload skips it. The ETag is opaque, as a single PUT's (see `part_etag`)."""
        staging = self._staging(project, multipart_id)
        whole, part_size = multipart_meta(staging, sha256, self.part_size)
        offset = (part_number - 1) * part_size
        if offset >= whole or size != min(part_size, whole - offset):
            raise Invalid(f"part {part_number} is not a part of this upload", code="invalid_part")
        check_length(length, size)
        mark = part_mark(staging, part_number)
        mark.unlink(missing_ok=True)  # sent again: stored only once it is whole again
        fd = os.open(staging / "data", os.O_WRONLY | os.O_CREAT, 0o600)
        behind = WriteBehind(fd, offset)  # the fdatasync below then finds little left to write
        try:
            written = 0
            while written < size:
                chunk = stream.read(min(CHUNK, size - written))
                if not chunk:
                    raise Invalid(f"the body ended {size - written} bytes short of its length", code="incomplete_body")
                view = memoryview(chunk)
                while view:
                    done = os.pwrite(fd, view, offset + written)
                    view = view[done:]
                    written += done
                behind.written(offset + written)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        etag = part_etag(multipart_id, part_number)
        write_atomically(mark, etag.encode())
        return f'"{etag}"'

    def abort_multipart(self, project: str, sha256: str, multipart_id: str) -> None:
        check_sha256(sha256)
        shutil.rmtree(self._staging(project, multipart_id), ignore_errors=True)

    def open_blob(self, project: str, sha256: str) -> BinaryIO:
        try:
            return self._blob_path(project, sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} of project {project} does not exist") from None

    # ------------------------------------------------------------ downloads

    def bundle_pieces(self, request: SignedRequest) -> Iterator[bytes]:
        """The bytes of a verified bundle GET, its blobs in order (NotFound for one gone or changed)."""
        assert request.bundle is not None
        return self.bundles.pieces(request.project, self.bundles.blobs(request.project, request.bundle, request.size))

    def download_url(self, project: str, sha256: str, filename: str, size: int | None = None) -> str:
        stored = self._blob_file(project, sha256)  # checks the names the URL is made of
        size = size_of(stored) if size is None else size
        return self._url("GET", f"{self._prefix}/blobs/{project}/{sha256}", size, filename.rsplit("/", 1)[-1])

    # ------------------------------------------------------------ remote references

    def pin_remote(self, spec: RemoteSpec) -> RemoteEntry:
        """A `file://` URI of an existing file under one of `file_roots` (links resolved) is pinned (size,
        mtime-based ETag); anything else, the registry's own folder included, is recorded as given with
        `verified` false, the same whether it exists or not, so that a caller learns nothing of the
        server's files by logging references to them."""
        entry = RemoteEntry(uri=spec.uri, path=spec.path, metadata=spec.metadata)
        try:
            split = urlsplit(spec.uri)
            if split.scheme != "file" or split.netloc not in ("", "localhost") or not self.file_roots:
                return entry
            from urllib.request import url2pathname  # (urllib.request imports http.client and email)

            real = os.path.realpath(url2pathname(split.path))
            if is_under(real, os.path.realpath(self.root)) or not any(is_under(real, r) for r in self.file_roots):
                return entry
            info = os.stat(real)
        except (OSError, ValueError):
            return entry
        if not stat.S_ISREG(info.st_mode):
            return entry
        etag = f"{info.st_mtime_ns:x}-{info.st_size:x}"
        return entry.model_copy(update={"size": info.st_size, "etag": etag, "verified": True})

    # ------------------------------------------------------------ manifests

    def put_manifest(self, project: str, digest: str, chunks: Iterable[bytes]) -> None:
        for index, chunk in enumerate(chunks):
            path = self._manifest_path(project, digest, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, chunk)

    def get_manifest_chunk(self, project: str, digest: str, index: int) -> list[Entry]:
        try:
            return manifest.stored_json(self._manifest_path(project, digest, index).read_bytes())
        except FileNotFoundError:
            raise NotFound(f"chunk {index} of manifest {digest} does not exist") from None

    # ------------------------------------------------------------ signing

    def _url(self, method: str, path: str, size: int | None, filename: str | None = None) -> str:
        # the query as urlencode builds it: only the file name needs quoting (the rest: numbers and hex)
        expires = int(self.clock.now().timestamp()) + self.presign_seconds
        query = f"expires={expires}"
        if size is not None:
            query += f"&size={int(size)}"
        if filename is not None:
            query += f"&filename={quote_plus(filename)}"
        signature = blob_files.url_signature(self._key, method, path, expires, size, filename)
        return f"{self._origin}{path}?{query}&sig={signature}"
