"""The wire shapes of API.md as pydantic models, shared by the server (requests it validates,
answers it serialises) and the SDK (answers it parses)."""

# no `from __future__ import annotations` here: pydantic would compile each field's annotation from its text
# when the class is made, a cost of every cold start (benchmarks/cold_start.py)

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from artreg.model import names
from artreg.model.versions import MAX_VERSION_LENGTH, VERSION_RE, Bump, parse

# Each rule is checked by its function in `names`; `Field` only states it in the OpenAPI document
Path = Annotated[
    str,
    AfterValidator(names.check_path),
    Field(json_schema_extra={"pattern": names.PATH_PATTERN, "minLength": 1, "maxLength": names.MAX_PATH_BYTES}),
]
Sha256 = Annotated[str, AfterValidator(names.check_sha256), Field(json_schema_extra={"pattern": "^[0-9a-f]{64}$"})]
Tag = Annotated[str, AfterValidator(names.check_tag), Field(json_schema_extra={"pattern": names.TAG_PATTERN})]
Alias = Annotated[
    str, AfterValidator(names.check_alias), Field(json_schema_extra={"pattern": names.anchored(names.ALIAS_RE)})
]
ArtifactType = Annotated[
    str, AfterValidator(names.check_type), Field(json_schema_extra={"pattern": names.anchored(names.TYPE_RE)})
]
# NAME, NAME@VERSION or NAME@ALIAS of the same project, as the JSON Schema states it (the registry checks it)
NAME_AT_REF_PATTERN = f"^{names.NAME_RE.pattern}(?:@{names.REF})?$"
RunId = Annotated[
    str, AfterValidator(names.check_run_id), Field(json_schema_extra={"pattern": names.anchored(names.RUN_ID_RE)})
]
Uri = Annotated[
    str,
    AfterValidator(names.check_uri),
    Field(json_schema_extra={"pattern": "^[^\\x00-\\x1f\\x7f]+$", "maxLength": names.MAX_URI_LENGTH}),
]
Metadata = Annotated[dict[str, Any], AfterValidator(names.check_metadata)]
FileMetadata = Annotated[
    dict[str, Any], AfterValidator(lambda v: names.check_metadata(v, "file metadata", names.MAX_FILE_METADATA_BYTES))
]
Version = Annotated[
    str,
    AfterValidator(lambda v: str(parse(v)) and v),
    Field(json_schema_extra={"pattern": f"^{VERSION_RE.pattern}$", "maxLength": MAX_VERSION_LENGTH}),
]
Label = Annotated[str, Field(min_length=1, max_length=256)]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # JSON's true is no number, though Python's bool is an int
        raise ValueError("a number is expected, not true or false")
    return value


MAX_FILES_PER_REQUEST = 1000
MAX_COMMIT_LINKS = 8  # links an upload may make at commit: they share its one transaction (StoreLimits)


# defer_build: a model builds its validator and serializer on first use, not at import, so a cold
# start pays only for the models its request touches (the API function's import, benchmarks/cold_start.py)
class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Answer(BaseModel):
    """Answers ignore fields they do not know, so an older SDK reads a newer server."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


# ---------------------------------------------------------------- manifest entries


class FileEntry(Wire):
    path: Path
    size: Annotated[int, Field(ge=0, le=5 * 1024**4), BeforeValidator(_not_bool)]
    sha256: Sha256
    metadata: FileMetadata = Field(default_factory=dict)  # the file's own (API.md: at most 4 KiB)


class RemoteSpec(Wire):
    uri: Uri
    path: Path
    metadata: Metadata = Field(default_factory=dict)


class RemoteEntry(Wire):
    path: Path
    uri: Uri
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    verified: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- requests


class Producer(Wire):
    run_id: RunId
    pipeline: Label | None = None
    step: Label | None = None
    # NAME, NAME@VERSION or NAME@ALIAS of the same project (checked at upload)
    inputs: Annotated[
        list[Annotated[Label, Field(json_schema_extra={"pattern": NAME_AT_REF_PATTERN})]],
        Field(max_length=100),
    ] = Field(default_factory=list)


class BaseRef(Wire):
    """The committed version an upload starts from (API.md: an upload with a base): its manifest
    digest too, so that a client never builds on a manifest it did not see."""

    version: Version
    digest: Sha256


class StartUpload(Wire):
    # stated for the OpenAPI document: `version` and `bump` are exclusive
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["version", "bump"],
                "properties": {"version": {"type": "string"}, "bump": {"type": "string"}},
            }
        }
    )

    type: ArtifactType = "artifact"
    files: Annotated[list[FileEntry], Field(max_length=MAX_FILES_PER_REQUEST)] = Field(default_factory=list)
    remote: Annotated[list[RemoteSpec], Field(max_length=MAX_FILES_PER_REQUEST)] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    tags: Annotated[list[Tag], Field(max_length=names.MAX_TAGS)] = Field(default_factory=list)
    aliases: Annotated[
        list[Annotated[Alias, Field(json_schema_extra={"not": {"const": names.LATEST}})]], Field(max_length=10)
    ] = Field(default_factory=list)
    version: Version | None = None
    bump: Bump | None = None
    producer: Producer | None = None
    # role -> NAME@REF of this project, resolved and pinned at commit
    links: Annotated[dict[str, Label], Field(max_length=MAX_COMMIT_LINKS)] = Field(default_factory=dict)
    commit: StrictBool = False
    if_changed: StrictBool = False
    # with a base, the version holds the base's entries, less `remove`, with `files`/`remote` (of
    # every batch) replacing or adding entries by path
    base: BaseRef | None = None
    remove: Annotated[list[Path], Field(max_length=MAX_FILES_PER_REQUEST)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _version_or_bump(self) -> Self:
        if self.version is not None and self.bump is not None:
            raise ValueError("give either version or bump, not both")
        if names.LATEST in self.aliases:
            raise ValueError("alias 'latest' is reserved and kept by the registry")
        if self.remove and self.base is None:
            raise ValueError("remove needs a base: it names paths of the base version")
        return self


class AddFiles(Wire):
    files: Annotated[list[FileEntry], Field(max_length=MAX_FILES_PER_REQUEST)] = Field(default_factory=list)
    remote: Annotated[list[RemoteSpec], Field(max_length=MAX_FILES_PER_REQUEST)] = Field(default_factory=list)


class Part(Wire):
    part_number: Annotated[int, Field(ge=1, le=10000), BeforeValidator(_not_bool)]
    etag: Annotated[str, Field(min_length=1, max_length=256)]


class CompleteBlob(Wire):
    parts: Annotated[list[Part], Field(min_length=1, max_length=10000)]


class MoveAlias(Wire):
    version: Version
    # absent: move whatever the alias points at; null: the alias must not exist yet
    expected_version: Version | None = None


class PatchVersion(Wire):
    metadata: dict[str, Any] | None = None
    tags_add: Annotated[list[Tag], Field(max_length=names.MAX_TAGS)] = Field(default_factory=list)
    tags_remove: Annotated[list[Tag], Field(max_length=names.MAX_TAGS)] = Field(default_factory=list)


class SetLink(Wire):
    target: Annotated[
        str,
        Field(
            min_length=1,
            # at most a one-letter name's: the pattern cannot say that the ref is at most MAX_VERSION_LENGTH
            max_length=len("a@") + MAX_VERSION_LENGTH,
            description="NAME@REF of this project",
            json_schema_extra={"pattern": NAME_AT_REF_PATTERN},
        ),
    ]


class Usage(Wire):
    run_id: RunId
    pipeline: Label | None = None
    step: Label | None = None


# ---------------------------------------------------------------- answers


class PresignedPart(Answer):
    part_number: int
    url: str


class MultipartTarget(Answer):
    upload_id: str
    part_size: int
    parts: list[PresignedPart]


class MissingBlob(Answer):
    sha256: str
    size: int
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    multipart: MultipartTarget | None = None


class Bundle(Answer):
    """Many small blobs in one request, where the store can take them so (the local folder store; S3
    cannot): the blobs' bytes concatenated in the order of `blobs`, `size` bytes in all, PUT (an
    upload's) or GET (a download page's) at `url` with exactly `headers`. Every blob keeps its own URL
    as well, so a client may ignore bundles. (addition)"""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    blobs: list[str]
    size: int


MAX_STAGED = 16  # files a staging request may ask URLs for


class Stage(Wire):
    """URLs to send files whose SHA-256 the client has not computed yet, one a size. (addition)"""

    sizes: list[Annotated[int, Field(ge=0, le=5 * 1024**4), BeforeValidator(_not_bool)]] = Field(
        min_length=1, max_length=MAX_STAGED
    )


class StagingTarget(Answer):
    """Where to PUT `size` bytes whose SHA-256 the store computes and answers as the ETag (the blob is
    then stored under it); `url` null when the store offers none for that size. (addition)
    `handoff_only`: the URL is taken on `artreg server`'s handoff socket only, never by a PUT (a size
    over the multipart threshold, offered to a client on its machine that asked: docs/api.md)."""

    size: int
    url: str | None = None
    handoff_only: bool = False


class Staging(Answer):
    staging: list[StagingTarget]


class UploadStarted(Answer):
    upload_id: str
    state: Literal["pending"] = "pending"
    expires_at: datetime
    missing: list[MissingBlob]
    bundles: list[Bundle] = Field(default_factory=list)


class FilesAdded(Answer):
    upload_id: str
    missing: list[MissingBlob]
    bundles: list[Bundle] = Field(default_factory=list)


class ProducerRecord(Answer):
    run_id: str
    pipeline: str | None = None
    step: str | None = None
    inputs: list[str] = Field(default_factory=list)


class LinkTarget(Answer):
    """A version as a link pins it: its name, version and digest when the link was made."""

    name: str
    version: str
    digest: str


class VersionLink(Answer):
    """A version's link under a role to another version of the project."""

    role: str
    target: LinkTarget
    at: datetime
    by: str | None = None


class LinkPage(Answer):
    """A version's links in role order."""

    items: list[VersionLink]
    next_cursor: str | None = None


class LinkedBy(Answer):
    """A version that links to this one, and under which role."""

    role: str
    source: LinkTarget
    at: datetime
    by: str | None = None


class LinkedByPage(Answer):
    """The versions that link to a version, by name, version and role."""

    items: list[LinkedBy]
    next_cursor: str | None = None


class RunSummary(Answer):
    run_id: str
    first_seen: datetime
    last_seen: datetime
    produced: int
    used: int


class RunPage(Answer):
    """The runs the registry has heard of, most recently seen first."""

    items: list[RunSummary]
    next_cursor: str | None = None


class VersionRecord(Answer):
    project: str
    name: str
    type: str
    version: str
    state: Literal["committed", "deleted"] = "committed"
    created_at: datetime
    created_by: str | None = None
    aliases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    producer: ProducerRecord | None = None
    files: list[FileEntry] = Field(default_factory=list)
    remote: list[RemoteEntry] = Field(default_factory=list)
    files_truncated: bool = False
    links: list[VersionLink] = Field(default_factory=list)
    links_truncated: bool = False
    size: int
    file_count: int
    digest: str
    deleted_at: datetime | None = None


class ArtifactSummary(Answer):
    project: str
    name: str
    type: str
    latest: str | None
    version_count: int
    aliases: dict[str, str]
    created_at: datetime
    updated_at: datetime


class ProjectSummary(Answer):
    project: str


class ProjectPage(Answer):
    """The projects that hold an artifact, in name order."""

    items: list[ProjectSummary]
    next_cursor: str | None = None


class ArtifactPage(Answer):
    items: list[ArtifactSummary]
    next_cursor: str | None = None


class VersionPage(Answer):
    items: list[VersionRecord]
    next_cursor: str | None = None


class FilePage(Answer):
    """A version's file and remote entries in path order; a remote entry is the one with a `uri`."""

    items: list[FileEntry | RemoteEntry]
    next_cursor: str | None = None


class DownloadFile(Answer):
    path: str
    size: int
    sha256: str
    url: str


class DownloadPage(Answer):
    version: str
    digest: str
    expires_at: datetime
    files: list[DownloadFile]
    remote: list[RemoteEntry]
    next_cursor: str | None = None
    bundles: list[Bundle] = Field(default_factory=list)


class AliasMove(Answer):
    alias: str
    version: str | None
    previous_version: str | None
    at: datetime
    by: str | None = None


class AliasHistory(Answer):
    items: list[AliasMove]
    next_cursor: str | None = None


class UsageRecord(Answer):
    project: str
    name: str
    version: str
    run_id: str
    pipeline: str | None = None
    step: str | None = None
    at: datetime
    digest: str | None = None  # of the version used


class GraphNode(Answer):
    """A node of a lineage graph: a version (id `name@version`) or a run (id `run:<run_id>`)."""

    id: str
    kind: Literal["version", "run"]
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    pipeline: str | None = None
    step: str | None = None
    # more neighbours than the graph holds: the version's own lineage, or the run, pages through them
    truncated: bool = False


class GraphEdge(Answer):
    """An edge of a lineage graph: `from` a run `to` a version it produced or used, or `linked` `from`
    the version holding a link `to` its target, under `role`."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    from_: str = Field(alias="from")
    to: str
    kind: Literal["produced", "used", "linked"]
    role: str | None = None


class LineageGraph(Answer):
    """The versions and runs around a version, up to `depth` runs away in each direction asked."""

    root: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    next_cursor: str | None = None  # more neighbours of the root itself


class RunLineage(Answer):
    """What a run produced and used, as `name@version` refs."""

    run_id: str
    produced: list[str]
    used: list[str]
    next_cursor: str | None = None


class BlobCompleted(Answer):
    sha256: str
    completed: bool
    # false: the store verifies the blob's SHA-256 after this answer, and a commit answers
    # `409 blobs_verifying` until it has (a multipart blob above the S3 store's inline bound)
    verified: bool = True


class ErrorDetail(Answer):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Answer):
    error: ErrorDetail


class GatewayMessage(Answer):
    """What API Gateway answers by itself (an unsigned request, throttling), before the API runs."""

    message: str
