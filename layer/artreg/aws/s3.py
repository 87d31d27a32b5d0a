"""The blob store on S3: content-addressed blobs at `{project}/blobs/sha256/{2 hex}/{hex}`, shared by
every version of a project; manifests too large for a version item at `{project}/manifests/{digest}/`.
File bytes never pass through the API: clients PUT and GET through presigned URLs.

A blob is trusted (deduplicated onto, committed) only when its bytes are known to have its SHA-256:
a single PUT by S3's own full-object checksum, which S3 compared with the signed one on upload; a
multipart upload, which S3 gives no whole-object SHA-256, by the registry's re-hash of the object
version it completed (`settle`), recorded as a tag on that version (`artreg-sha256`) so that it is
done once, or that version deleted if its bytes are not the blob. An object with neither is not
trusted (it fails closed), and a completion never replaces a trusted object.

The re-hash of a blob up to `inline_verify_limit` runs in the call that completes it. A larger one
would not fit in the API's 29 s, so the completion tags the version `artreg-verifying=<epoch s>` and
hands it to `start_verification` (the verifier function, invoked asynchronously), which settles it
within its own 15 minutes; until then `verify` reports it as being verified, and a commit waits
(`registry.verifying`). A verification that never ends (its function gave up) goes stale there and
the blob counts as missing: it is sent again, and verified again."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError

from artreg.aws.errors import translate
from artreg.model import manifest, multipart
from artreg.model.errors import Invalid, NotFound, Retryable
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
from artreg.registry.records import StoredBlob, UnsettledBlob

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_PARALLEL = 16  # HEAD requests in flight while checking a batch of up to 1,000 blobs
_MiB = 1024**2
_REHASH_PIECE = 8 * _MiB
_REHASH_AHEAD = 8  # ranges in flight while re-hashing a multipart blob: 64 MiB of memory at most
_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^?]+)(\?versionId=(?P<vid>.+))?")
CONDEMNED_TAG = "artreg-condemned"
VERIFIED_TAG = "artreg-sha256"  # on a multipart blob's object version: its bytes re-hashed to this
VERIFYING_TAG = "artreg-verifying"  # on a multipart blob's object version: its re-hash started then (epoch s)
# An API call that completes a blob up to this size re-hashes it inline. The API has 29 s (API Gateway's
# limit) for the completion as a whole. At a conservative 100 MB/s for its ranged reads (8 in flight;
# the hash, with the CPU's SHA-256 instructions, is faster still), 1 GiB takes about 11 s, leaving more
# than half of the 29 s for S3's completion itself and for a slow read. Larger: the verifier function.
INLINE_VERIFY_LIMIT = 1024**3
StartVerification = Callable[[str, str, str], None]  # (project, sha256, version id): `settle` it elsewhere
Settled = Literal["verified", "deleted", "gone"]
T = TypeVar("T")
R = TypeVar("R")


def blob_key(project: str, sha256: str) -> str:
    """The only place a blob's key is made, from a checked project and digest: nothing else of a
    request ever becomes part of an S3 key."""
    check_project(project)
    check_sha256(sha256)
    return f"{project}/blobs/sha256/{sha256[:2]}/{sha256}"


def manifest_key(project: str, digest: str, index: int) -> str:
    check_project(project)
    check_sha256(digest)
    return f"{project}/manifests/{digest}/{index:06d}.json"


def _b64(sha256: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256)).decode()


class S3BlobStore:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        presign_seconds: int = 900,
        multipart_threshold: int = 64 * _MiB,
        part_size: int = 64 * _MiB,
        remote_client: S3Client | None = None,
        inline_verify_limit: int = INLINE_VERIFY_LIMIT,
        start_verification: StartVerification | None = None,
    ):
        """`start_verification` settles a completed blob over `inline_verify_limit` after the completing
        call answered; without it, every blob is re-hashed inline."""
        self.client = client
        self.bucket = bucket
        self.presign_seconds = presign_seconds
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.remote_client = remote_client or client
        self.inline_verify_limit = inline_verify_limit
        self.start_verification = start_verification
        self._chunk = lru_cache(maxsize=64)(self._read_chunk)  # manifests never change

    # ------------------------------------------------------------ uploads

    def find_missing(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """Blobs not stored trusted (see `verify`): a condemned, unverified or wrong copy is sent again, and
        so is one still being verified (two first logs of one large file at once: rare, and safe)."""
        return [(blob.sha256, blob.size) for blob in self.verify(project, blobs)]

    def upload_targets(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[MissingBlob]:
        return [self._target(project, sha, size) for sha, size in blobs]

    def url_count(self, size: int) -> int:
        return multipart.url_count(size, self.multipart_threshold, self.part_size)

    def upload_bundles(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[Bundle]:
        return []  # S3 takes one object a PUT: each blob goes to its own presigned URL

    def download_bundles(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[Bundle]:
        return []

    def staging_targets(self, project: str, sizes: Sequence[int]) -> list[StagingTarget]:
        return [StagingTarget(size=size) for size in sizes]  # an object's key names it: never its content

    def _target(self, project: str, sha256: str, size: int) -> MissingBlob:
        key = blob_key(project, sha256)
        if size <= self.multipart_threshold:
            # the checksum and length are signed headers: S3 refuses a PUT of any other bytes
            params = {"Bucket": self.bucket, "Key": key, "ChecksumSHA256": _b64(sha256), "ContentLength": size}
            url = self._presign("put_object", params)
            headers = {"x-amz-checksum-sha256": _b64(sha256), "content-length": str(size)}
            return MissingBlob(sha256=sha256, size=size, url=url, headers=headers)
        # S3 keeps no whole-object SHA-256 of a multipart upload: `complete_multipart` re-hashes it
        part_size = multipart.part_size(size, self.part_size)
        created = self._call(self.client.create_multipart_upload, Bucket=self.bucket, Key=key)
        upload_id = created["UploadId"]
        parts = [
            PresignedPart(
                part_number=n,
                url=self._presign(
                    "upload_part", {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}
                ),
            )
            for n in range(1, multipart.part_count(size, part_size) + 1)
        ]
        return MissingBlob(
            sha256=sha256, size=size, multipart=MultipartTarget(upload_id=upload_id, part_size=part_size, parts=parts)
        )

    def complete_multipart(self, project: str, sha256: str, multipart_id: str, parts: Sequence[Part]) -> bool:
        """Completes the upload over the object just inspected (or none), never over a trusted copy,
        so that an upload started long ago cannot replace a blob that versions list; then settles the
        version it made: inline up to `inline_verify_limit` (True; `bad_digest` if deleted), else
        tagged as being verified and handed to `start_verification` (False)."""
        key = blob_key(project, sha256)
        current = self._head(key, checksum=True)
        if current is not None and self._unsettled(key, current, sha256, current["ContentLength"]) is None:
            self.abort_multipart(project, sha256, multipart_id)  # stored meanwhile: these parts are not needed
            return True
        condition = {"IfNoneMatch": "*"} if current is None else {"IfMatch": current["ETag"]}
        try:
            completed = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=multipart_id,
                MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]},
                **condition,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
                raise Invalid(f"the parts do not complete the upload: {code}", details={"aws": code}) from error
            if code == "NoSuchUpload":
                raise NotFound(f"multipart upload of blob {sha256} is gone (completed or aborted)") from error
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise Retryable(f"blob {sha256} was stored by another upload meanwhile; complete again") from error
            raise translate(error) from error
        version_id = completed.get("VersionId")
        # (an unversioned bucket has no version to hand over: inline; the template's keeps versions)
        if version_id and self.start_verification is not None:
            head = self._call(self.client.head_object, Bucket=self.bucket, Key=key, VersionId=version_id)
            if head["ContentLength"] > self.inline_verify_limit:
                self._verify_later(project, sha256, version_id)
                return False
        if self.settle(project, sha256, version_id) != "verified":
            raise Invalid(
                f"the parts' bytes do not have the SHA-256 of blob {sha256}",
                code="bad_digest",
                details={"sha256": sha256},
            )
        return True

    def _verify_later(self, project: str, sha256: str, version_id: str) -> None:
        """Marks the version as being verified (a new version has no tags to keep), then starts its
        verification: in that order, so that the verifier's own tagging is never overwritten."""
        assert self.start_verification is not None
        key = blob_key(project, sha256)
        mark = {"TagSet": [{"Key": VERIFYING_TAG, "Value": str(int(time.time()))}]}
        self._call(self.client.put_object_tagging, Bucket=self.bucket, Key=key, VersionId=version_id, Tagging=mark)
        try:
            self.start_verification(project, sha256, version_id)
        except Exception:
            # no verification will come: drop the version rather than leave it waiting for the window
            self._call(self.client.delete_object, Bucket=self.bucket, Key=key, VersionId=version_id)
            raise

    def settle(self, project: str, sha256: str, version_id: str | None) -> Settled:
        """The one rule of trusting a multipart blob's object version, inline or in the verifier: its
        bytes re-hashed; tagged `artreg-sha256` (other tags kept, the verifying mark dropped) if they
        have the blob's SHA-256, else that version deleted (the copy it replaced, if any, is current
        again). Idempotent: a version tagged already is left as it is, one deleted already is gone."""
        key = blob_key(project, sha256)
        version = {"VersionId": version_id} if version_id else {}
        head = self._head(key, version_id=version_id)
        if head is None:
            return "gone"
        tags = self._tags(key, head)
        if tags.get(VERIFIED_TAG) == sha256:
            return "verified"
        if self._rehash(key, version, head["ContentLength"]) != sha256:
            self._call(self.client.delete_object, Bucket=self.bucket, Key=key, **version)
            return "deleted"
        kept = {k: v for k, v in tags.items() if k != VERIFYING_TAG} | {VERIFIED_TAG: sha256}
        tagging = {"TagSet": [{"Key": k, "Value": v} for k, v in sorted(kept.items())]}
        self._call(self.client.put_object_tagging, Bucket=self.bucket, Key=key, Tagging=tagging, **version)
        return "verified"

    def _rehash(self, key: str, version: Mapping[str, str], size: int) -> str:
        """The SHA-256 of one object version, read as ranges of 8 MiB with a few in flight ahead of the
        hash (one stream alone is slower than the hash), in bounded memory."""

        def piece(start: int) -> bytes:
            end = min(start + _REHASH_PIECE, size) - 1
            answer = self._call(
                self.client.get_object, Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}", **version
            )
            data: bytes = answer["Body"].read()
            return data

        digest = hashlib.sha256()
        starts = iter(range(0, size, _REHASH_PIECE))
        with ThreadPoolExecutor(max_workers=_REHASH_AHEAD) as pool:
            ahead = deque(pool.submit(piece, start) for start in itertools.islice(starts, _REHASH_AHEAD))
            while ahead:
                data = ahead.popleft().result()
                following = next(starts, None)
                if following is not None:
                    ahead.append(pool.submit(piece, following))
                digest.update(data)
        return digest.hexdigest()

    def abort_multipart(self, project: str, sha256: str, multipart_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=blob_key(project, sha256), UploadId=multipart_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise translate(error) from error

    def verify(self, project: str, blobs: Sequence[tuple[str, int]]) -> list[UnsettledBlob]:
        """Blobs not stored with the stated size and SHA-256, trusted (see `_unsettled`)."""

        def check(blob: tuple[str, int]) -> UnsettledBlob | None:
            key = blob_key(project, blob[0])
            # never delete on a mismatch: the claim may be the wrong one, and the blob another version's
            return self._unsettled(key, self._head(key, checksum=True), *blob)

        return [found for found in _parallel(check, blobs) if found is not None]

    def _unsettled(self, key: str, head: Mapping[str, Any] | None, sha256: str, size: int) -> UnsettledBlob | None:
        """None if the current object (`head`, read with its checksum) is that blob, trusted: of that
        size, not condemned, and known to have that SHA-256 by S3's full-object checksum or by the
        registry's tag on that version. Else what it is: absent or wrong, or being verified since its
        verifying mark. Neither checksum nor tag (an object some other tool wrote): not trusted."""
        if head is None or head["ContentLength"] != size:
            return UnsettledBlob(sha256, size)
        tags = self._tags(key, head)
        if CONDEMNED_TAG in tags:
            return UnsettledBlob(sha256, size)
        stored = head.get("ChecksumSHA256")
        if stored and "-" not in stored:  # "<base64>-<parts>" is a composite: a checksum of checksums
            return None if stored == _b64(sha256) else UnsettledBlob(sha256, size)
        if tags.get(VERIFIED_TAG) == sha256:
            return None
        return UnsettledBlob(sha256, size, _epoch(tags.get(VERIFYING_TAG)))

    def _tags(self, key: str, head: Mapping[str, Any]) -> dict[str, str]:
        """The tags of the version `head` describes. HEAD counts them only for a caller allowed
        s3:GetObjectTagging, which the registry's roles are (template.yaml); none counted, none read."""
        if not int(head.get("TagCount") or 0):
            return {}
        tags = self._call(
            self.client.get_object_tagging, Bucket=self.bucket, Key=key, VersionId=head.get("VersionId") or "null"
        )["TagSet"]
        return {t["Key"]: t["Value"] for t in tags}

    # ------------------------------------------------------------ downloads

    def download_url(self, project: str, sha256: str, filename: str, size: int | None = None) -> str:
        name = filename.rsplit("/", 1)[-1]
        disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
        return self._presign(
            "get_object",
            {"Bucket": self.bucket, "Key": blob_key(project, sha256), "ResponseContentDisposition": disposition},
        )

    # ------------------------------------------------------------ remote references

    def pin_remote(self, spec: RemoteSpec) -> RemoteEntry:
        entry = RemoteEntry(uri=spec.uri, path=spec.path, metadata=spec.metadata)
        match = _S3_URI.fullmatch(spec.uri)
        if not match or match["bucket"].lower() == self.bucket.lower():
            # the registry's own bucket is never read for a caller: the API's role may read every
            # project's blobs there, and pinning would tell one project what another holds
            return entry
        params: dict[str, Any] = {"Bucket": match["bucket"], "Key": unquote(match["key"])}
        if match["vid"]:
            params["VersionId"] = match["vid"]
        try:
            head = self.remote_client.head_object(**params)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or status == 429 or isinstance(translate(error), Retryable):
                raise Retryable("could not read the remote reference now; retry", details={"uri": spec.uri}) from error
            return entry  # not readable by the registry (gone, or not allowed): recorded as given
        return entry.model_copy(
            update={
                "size": head["ContentLength"],
                "etag": head.get("ETag", "").strip('"') or None,
                "version_id": head.get("VersionId"),
                "verified": True,
            }
        )

    # ------------------------------------------------------------ manifests

    def put_manifest(self, project: str, digest: str, chunks: Iterable[bytes]) -> None:
        def put(indexed: tuple[int, bytes]) -> None:
            index, chunk = indexed
            self._call(
                self.client.put_object,
                Bucket=self.bucket,
                Key=manifest_key(project, digest, index),
                Body=chunk,
                ContentType="application/json",
            )

        # a window of chunks at a time: the chunks may come from a generator that is never held whole
        indexed = enumerate(chunks)
        while window := list(itertools.islice(indexed, _PARALLEL)):
            _parallel(put, window)

    def get_manifest_chunk(self, project: str, digest: str, index: int) -> list[Entry]:
        return list(self._chunk(project, digest, index))

    def _read_chunk(self, project: str, digest: str, index: int) -> tuple[Entry, ...]:
        body = self._call(self.client.get_object, Bucket=self.bucket, Key=manifest_key(project, digest, index))
        return tuple(manifest.stored_json(body["Body"].read()))

    # ------------------------------------------------------------ plumbing

    def _presign(self, operation: str, params: dict[str, Any]) -> str:
        url: str = self.client.generate_presigned_url(operation, Params=params, ExpiresIn=self.presign_seconds)
        return url

    # ------------------------------------------------------------ the janitor's side
    # A condemned blob is the object version the janitor tagged; uploads after that write a new
    # version, and reclaiming deletes the tagged version only. So the bucket must keep versions (the
    # template's does): without, `reclaim` refuses.

    def projects(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Delimiter="/")
        for page in pages:
            for prefix in page.get("CommonPrefixes", []):
                project = prefix["Prefix"].rstrip("/")
                if PROJECT_RE.fullmatch(project):
                    yield project

    def unlisted_blobs(self, project: str, listed: Container[str]) -> Iterator[StoredBlob]:
        """Lists the project's blobs; only the unlisted ones cost a HEAD (and a tag read if tagged)."""
        prefix = blob_key(project, "0" * 64).rsplit("/", 2)[0] + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            yield from self._unlisted(page.get("Contents", []), listed)

    def unlisted_page(
        self, project: str, listed: Container[str], after: str | None, limit: int
    ) -> tuple[list[StoredBlob], str | None]:
        """One listing request (keys sort as their sha256: `{two hex}/{hex}`), and a HEAD per unlisted blob."""
        prefix = blob_key(project, "0" * 64).rsplit("/", 2)[0] + "/"
        start = {"StartAfter": blob_key(project, after)} if after else {}
        page = self._call(
            self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix, MaxKeys=min(limit, 1000), **start
        )
        stored = page.get("Contents", [])
        last = stored[-1]["Key"].rsplit("/", 1)[-1] if stored and page.get("IsTruncated") else None
        return list(self._unlisted(stored, listed)), last

    def _unlisted(self, stored: Sequence[Any], listed: Container[str]) -> Iterator[StoredBlob]:
        for item in stored:
            sha256 = item["Key"].rsplit("/", 1)[-1]
            if not SHA256_RE.fullmatch(sha256) or sha256 in listed:
                continue
            head = self._head(item["Key"])
            if head is None:
                continue  # removed since the listing
            stamp = self._tags(item["Key"], head).get(CONDEMNED_TAG)
            condemned_at = datetime.fromisoformat(stamp) if stamp else None
            generation = head.get("VersionId") or "null"
            yield StoredBlob(sha256, head["ContentLength"], head["LastModified"], generation, condemned_at)

    def condemn(self, project: str, blob: StoredBlob, at: datetime) -> None:
        self._call(
            self.client.put_object_tagging,
            Bucket=self.bucket,
            Key=blob_key(project, blob.sha256),
            VersionId=blob.generation,
            Tagging={"TagSet": [{"Key": CONDEMNED_TAG, "Value": at.isoformat()}]},
        )

    def reclaim(self, project: str, blob: StoredBlob) -> bool:
        if blob.generation == "null":
            return False  # an unversioned bucket: deleting could take a copy uploaded since
        # deleting one version never touches a newer one, uploaded after the condemnation
        self._call(
            self.client.delete_object,
            Bucket=self.bucket,
            Key=blob_key(project, blob.sha256),
            VersionId=blob.generation,
        )
        return True

    def _head(self, key: str, checksum: bool = False, version_id: str | None = None) -> Any:
        """HEAD of the current object (or of one version): None if there is none."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if checksum:
            params["ChecksumMode"] = "ENABLED"
        if version_id:
            params["VersionId"] = version_id
        try:
            return self.client.head_object(**params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}:
                return None
            raise translate(error) from error

    def _call(self, operation: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return operation(**kwargs)
        except ClientError as error:
            raise translate(error) from error


def _epoch(stamp: str | None) -> datetime | None:
    """The time of a verifying mark; a mark that is not one (a tag some other tool wrote) counts as none."""
    try:
        return datetime.fromtimestamp(int(stamp), UTC) if stamp else None
    except (ValueError, OverflowError, OSError):
        return None


def _parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(items))) as pool:
        return list(pool.map(function, items))
