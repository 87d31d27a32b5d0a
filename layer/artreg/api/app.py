"""The HTTP API of API.md on Powertools' `APIGatewayHttpResolver`: each route reads its validated
input, calls one registry use case and shapes the answer. The same resolver serves Lambda (behind
API Gateway) and the local server (which hands it the same proxy events)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from artreg.api.contract import BODY, CHANGE, ETAG, POST, READ, VERSION_HEADERS, finish, link, ok, responses
from artreg.api.gate import ArtregResolver
from artreg.model import names
from artreg.model.errors import ArtregError, Invalid, Retryable
from artreg.model.wire import (
    AddFiles,
    AliasHistory,
    ArtifactPage,
    ArtifactSummary,
    BlobCompleted,
    CompleteBlob,
    DownloadPage,
    ErrorBody,
    ErrorDetail,
    FilePage,
    FilesAdded,
    LineageGraph,
    LinkedByPage,
    LinkPage,
    MoveAlias,
    PatchVersion,
    ProjectPage,
    RemoteEntry,
    RunLineage,
    RunPage,
    SetLink,
    Stage,
    Staging,
    StartUpload,
    UploadStarted,
    Usage,
    UsageRecord,
    VersionLink,
    VersionPage,
    VersionRecord,
)
from artreg.observability import registry_metrics
from artreg.registry.records import StoredVersion
from artreg.registry.service import Committed, RegistryService

JSON = "application/json"
ARTIFACT = "/v1/projects/<project>/artifacts/<name>"
VERSION = ARTIFACT + "/versions/<ref>"
UPLOAD = ARTIFACT + "/uploads/<upload_id>"
Limit = Annotated[int | None, Query(ge=1, le=1000, description="items a page, at most 1,000")]
# opaque: only a cursor this API handed out is one (checked by `cursors.decode`)
Cursor = Annotated[
    str | None,
    Query(description="the next_cursor of the previous page", json_schema_extra={"format": "artreg-cursor"}),
]
# the naming rules of API.md on path and query parameters, from the same expressions `names` checks
Project = Annotated[str, Path(pattern=names.anchored(names.PROJECT_RE))]
Name = Annotated[str, Path(pattern=names.anchored(names.NAME_RE))]
Ref = Annotated[str, Path(pattern=f"^{names.REF}$", max_length=256, description="a version or an alias")]
AliasName = Annotated[str, Path(pattern=names.anchored(names.ALIAS_RE))]
Sha256 = Annotated[str, Path(pattern="^[0-9a-f]{64}$")]
UploadId = Annotated[str, Path(max_length=64)]
RunId = Annotated[str, Path(pattern=names.anchored(names.RUN_ID_RE))]
NameRef = Annotated[str, Path(description="name or name@ref", pattern=f"^{names.NAME_RE.pattern}(?:@{names.REF})?$")]

logger = Logger(service="artreg")
metrics = registry_metrics()


def _answer(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=model.model_dump_json(), headers=headers)


def _error(error: ArtregError) -> Response[Any]:
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message, details=error.details))
    after = error.retry_after if error.retry_after is not None else (1 if isinstance(error, Retryable) else None)
    headers = {"Retry-After": str(math.ceil(after))} if after is not None else None
    return _answer(body, error.status, headers)


DESCRIPTION = (
    "The HTTP contract of artreg (docs/api.md in the project). Every 4xx/5xx answer has the body "
    '{"error": {"code", "message", "details"}}.'
)
RESOLVED = responses(
    {
        200: ok(VersionRecord, "the version record; its ETag is its digest", {**VERSION_HEADERS, **ETAG}),
        304: ok(None, "If-None-Match named this version's ETag", {**VERSION_HEADERS, **ETAG}),
    }
)
FILE = responses(
    {
        302: ok(
            None,
            "to a short-lived URL of the bytes (a remote http(s) entry: its URI)",
            {**VERSION_HEADERS, "Location": {"description": "where the bytes are", "schema": {"type": "string"}}},
        ),
        200: ok(RemoteEntry, "a remote entry that is not http(s), as JSON", VERSION_HEADERS),
    }
)


def _version_headers(version: StoredVersion) -> dict[str, str]:
    return {"X-Artifact-Version": version.version, "X-Artifact-Digest": version.digest, "ETag": f'"{version.digest}"'}


def build_app(
    registry: RegistryService, *, caller: Callable[[ArtregResolver], str | None] | None = None
) -> ArtregResolver:
    """A resolver bound to `registry`. A resolver keeps the request it handles on itself, so one
    resolver must handle one request at a time (as Lambda does). Without `caller`, the caller is the
    IAM identity API Gateway checked the request's SigV4 signature against (and the document says so)."""
    app = ArtregResolver(enable_validation=True)
    document: list[str] = []  # made at the first GET /v1/openapi.json, then kept

    def who() -> str | None:
        if caller:
            return caller(app)
        iam = app.current_event.request_context.authorizer.iam
        return iam.user_arn if iam else None

    def version_answer(version: StoredVersion, status: int = 200) -> Response[Any]:
        if app.current_event.headers.get("if-none-match", "").strip() == f'"{version.digest}"':
            return Response(status_code=304, headers=_version_headers(version))
        return _answer(version.to_record(), status, _version_headers(version))

    def committed(result: Committed) -> Response[Any]:
        if result.created:
            metrics.add_metric(name="Commits", unit=MetricUnit.Count, value=1)
        headers = {"X-Artifact-Version": result.record.version, "X-Artifact-Digest": result.record.digest}
        return _answer(result.record, 201 if result.created else 200, headers)

    def file_answer(project: str, name: str, ref: str, path: str) -> Response[Any]:
        version, target = registry.file_target(project, name, ref, path)
        headers = {"X-Artifact-Version": version.version, "X-Artifact-Digest": version.digest}
        if isinstance(target, RemoteEntry):
            return _answer(target, 200, headers)
        return Response(status_code=302, headers={**headers, "Location": target, "Cache-Control": "no-store"})

    # ------------------------------------------------------------ errors: one map to API.md's body

    @app.exception_handler(ArtregError)
    def domain_error(error: ArtregError) -> Response[Any]:
        if error.status >= 500:
            logger.warning("request failed", extra={"code": error.code, "details": error.details})
        return _error(error)

    @app.exception_handler(RequestValidationError)
    def validation_error(error: RequestValidationError) -> Response[Any]:
        problems = error.errors()
        first = problems[0] if problems else {}
        field = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        message = str(first.get("msg", "the request is not valid")).removeprefix("Value error, ")
        return _error(
            Invalid(
                f"{field}: {message}",
                details={
                    "field": field,
                    "errors": [{"loc": list(p.get("loc", ())), "msg": p.get("msg")} for p in problems[:20]],
                },
            )
        )

    @app.exception_handler(Exception)
    def fault(error: Exception) -> Response[Any]:
        # a fault of the registry itself (ArtregResolver refuses bad input before it gets this far),
        # still in API.md's shape; the log has the trace, the answer only its request id
        logger.exception("request failed")
        request = app.current_event.request_context.request_id
        return _error(ArtregError("the registry failed; its log has the details", details={"request_id": request}))

    # ------------------------------------------------------------ logging a version

    @app.post(
        ARTIFACT + "/uploads",
        summary="Start an upload (and commit it at once with commit: true)",
        responses=responses(
            {
                201: ok(
                    UploadStarted | VersionRecord,
                    "the upload, or with commit: true the version record (with the X-Artifact headers)",
                    VERSION_HEADERS,
                    {
                        "AddFiles": link(UPLOAD + "/files", "post", upload_id="$response.body#/upload_id"),
                        "Commit": link(UPLOAD + "/commit", "post", upload_id="$response.body#/upload_id"),
                    },
                ),
                200: ok(
                    VersionRecord,
                    "with if_changed: true, the latest version, whose digest is the same",
                    VERSION_HEADERS,
                ),
            },
            (*POST, 403),
        ),
    )
    def start_upload(project: Project, name: Name, request: Annotated[StartUpload, Body()]) -> Response[Any]:
        result = registry.start_upload(project, name, request, who())
        offered = sum(f.size for f in request.files)
        metrics.add_metric(name="BytesOffered", unit=MetricUnit.Bytes, value=offered)
        if isinstance(result, Committed):
            metrics.add_metric(name="BytesDeduplicated", unit=MetricUnit.Bytes, value=offered)
            return committed(result)
        missing = sum(m.size for m in result.missing)
        metrics.add_metric(name="BytesDeduplicated", unit=MetricUnit.Bytes, value=offered - missing)
        return _answer(result, 201)

    @app.post(
        "/v1/projects/<project>/staging",
        summary="URLs to send large files before their SHA-256 is known (artreg server only; none on AWS)",
        responses=responses({200: ok(Staging, "a URL for each size, or null where the store offers none")}, POST),
    )
    def stage(project: Project, request: Annotated[Stage, Body()]) -> Response[Any]:
        return _answer(registry.stage(project, request))

    @app.post(
        UPLOAD + "/files",
        summary="Add a batch of up to 1,000 files to a pending upload",
        responses=responses({200: ok(FilesAdded, "what the store lacks of this batch")}, POST),
    )
    def add_files(
        project: Project, name: Name, upload_id: UploadId, request: Annotated[AddFiles, Body()]
    ) -> Response[Any]:
        return _answer(registry.add_files(project, name, upload_id, request))

    @app.post(
        UPLOAD + "/blobs/<sha256>/complete",
        summary="Complete a multipart blob upload",
        responses=responses(
            {200: ok(BlobCompleted, "the blob is stored; verified, or being verified (the commit waits for it)")},
            POST,
        ),
    )
    def complete_blob(
        project: Project, name: Name, upload_id: UploadId, sha256: Sha256, request: Annotated[CompleteBlob, Body()]
    ) -> Response[Any]:
        verified = registry.complete_blob(project, name, upload_id, sha256, request)
        return _answer(BlobCompleted(sha256=sha256, completed=True, verified=verified))

    @app.post(
        UPLOAD + "/commit",
        summary="Commit an upload: verify its blobs, take a version number",
        responses=responses(
            {
                201: ok(
                    VersionRecord,
                    "the new version",
                    VERSION_HEADERS,
                    {
                        "GetVersion": link(VERSION, "get", ref="$response.body#/version"),
                        "MoveAlias": link(ARTIFACT + "/aliases/<alias>", "put", alias="staging"),
                        "Resolve": link("/v1/resolve/<project>/<name_ref>", "get", name_ref="$response.body#/name"),
                    },
                ),
                200: ok(VersionRecord, "the version this upload made already (a retry)", VERSION_HEADERS),
            },
            POST,
        ),
    )
    def commit(project: Project, name: Name, upload_id: UploadId) -> Response[Any]:
        return committed(registry.commit(project, name, upload_id, who()))

    # ------------------------------------------------------------ reading

    @app.get(
        "/v1/projects",
        summary="List the projects that hold an artifact (an addition to API.md, for the web UI)",
        responses=responses({200: ok(ProjectPage, "a page of projects, in name order")}, (400, 429, 503)),
    )
    def list_projects(limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.list_projects(limit=limit, cursor=cursor))

    @app.get(
        "/v1/projects/<project>/artifacts",
        summary="List the artifacts of a project",
        responses=responses({200: ok(ArtifactPage, "a page of artifacts, in name order")}),
    )
    def list_artifacts(
        project: Project,
        type: Annotated[str | None, Query(pattern=names.anchored(names.TYPE_RE))] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Response[Any]:
        return _answer(registry.list_artifacts(project, type=type, limit=limit, cursor=cursor))

    @app.get(
        ARTIFACT,
        summary="An artifact: type, latest version, aliases",
        responses=responses({200: ok(ArtifactSummary, "the artifact")}),
    )
    def get_artifact(project: Project, name: Name) -> Response[Any]:
        return _answer(registry.get_artifact(project, name))

    @app.get(
        ARTIFACT + "/versions",
        summary="Versions, highest precedence first; filter with metadata.KEY=VALUE too",
        responses=responses({200: ok(VersionPage, "a page of version records")}),
    )
    def list_versions(
        project: Project,
        name: Name,
        limit: Limit = None,
        cursor: Cursor = None,
        tag: Annotated[str | None, Query(pattern=names.TAG_PATTERN)] = None,
        alias: Annotated[str | None, Query(pattern=names.anchored(names.ALIAS_RE))] = None,
    ) -> Response[Any]:
        query = app.current_event.query_string_parameters or {}
        metadata = {k.removeprefix("metadata."): v for k, v in query.items() if k.startswith("metadata.")}
        page = registry.list_versions(
            project, name, limit=limit, cursor=cursor, tag=tag, alias=alias, metadata=metadata
        )
        return _answer(page)

    @app.get(VERSION, summary="A version record, by version or alias", responses=RESOLVED)
    def get_version(project: Project, name: Name, ref: Ref) -> Response[Any]:
        started = time.perf_counter()
        version = registry.resolve(project, name, ref)
        metrics.add_metric(
            name="ResolveLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )
        return version_answer(version)

    @app.get(
        VERSION + "/files",
        summary="The version's file and remote entries, paged, in path order",
        responses=responses({200: ok(FilePage, "a page of file and remote entries")}),
    )
    def list_files(project: Project, name: Name, ref: Ref, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.list_files(project, name, ref, limit=limit, cursor=cursor))

    def path_tail() -> str:
        """What follows `/versions/{ref}/files/` or `/versions/{ref}/links/`: a file's path or a link's role,
        slashes and all. Cut from the raw path by segment count, as the ref in it may be percent-encoded
        (`1.0.0%2Bbuild`) and so differ from the decoded `ref` argument."""
        return unquote(app.current_event.path.split("/", 9)[9])

    @app.get(VERSION + "/files/.+", summary="302 to a short-lived URL of the file's bytes", responses=FILE)
    def get_file(project: Project, name: Name, ref: Ref) -> Response[Any]:
        return file_answer(project, name, ref, path_tail())

    @app.get(
        VERSION + "/download",
        summary="The stored files with a presigned URL each, 1,000 a page",
        responses=responses({200: ok(DownloadPage, "a page of stored files, each with a presigned URL")}),
    )
    def download(project: Project, name: Name, ref: Ref, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.download(project, name, ref, limit=limit, cursor=cursor))

    @app.get(
        "/v1/resolve/<project>/<name_ref>",
        summary="Resolve name@ref; ?file= for a file, ?at= for then",
        responses={
            **RESOLVED,
            **FILE,
            200: RESOLVED[200] | {"content": {JSON: {"model": VersionRecord | RemoteEntry}}},
        },
    )
    def resolve(
        project: Project,
        name_ref: NameRef,
        file: Annotated[str | None, Query(pattern=names.PATH_PATTERN, max_length=names.MAX_PATH_BYTES)] = None,
        at: Annotated[datetime | None, Query(description="RFC 3339 time: the alias as it stood then")] = None,
    ) -> Response[Any]:
        name, ref = names.split_ref(name_ref)
        if file is not None:
            return file_answer(project, name, ref, file)
        return version_answer(registry.resolve(project, name, ref, at))

    @app.get(
        ARTIFACT + "/aliases/<alias>/history",
        summary="Every move of an alias, newest first",
        responses=responses({200: ok(AliasHistory, "a page of moves, newest first")}),
    )
    def alias_history(
        project: Project, name: Name, alias: AliasName, limit: Limit = None, cursor: Cursor = None
    ) -> Response[Any]:
        return _answer(registry.alias_history(project, name, alias, limit=limit, cursor=cursor))

    # ------------------------------------------------------------ changing

    @app.put(
        ARTIFACT + "/aliases/<alias>",
        summary="Point an alias at a version (compare-and-swap with expected_version)",
        responses=responses({200: ok(VersionRecord, "the version the alias now points at")}, (*CHANGE, 403, 412)),
    )
    def move_alias(
        project: Project, name: Name, alias: AliasName, request: Annotated[MoveAlias, Body()]
    ) -> Response[Any]:
        return _answer(registry.move_alias(project, name, alias, request, who()))

    @app.delete(
        ARTIFACT + "/aliases/<alias>",
        summary="Remove an alias",
        responses=responses({204: ok(None, "removed")}, (*READ, 403, 409)),
    )
    def remove_alias(project: Project, name: Name, alias: AliasName) -> Response[Any]:
        registry.remove_alias(project, name, alias, who())
        return Response(status_code=204)

    @app.patch(
        VERSION,
        summary="Merge metadata (null removes a key), add and remove tags",
        responses=responses({200: ok(VersionRecord, "the version record")}, (*READ, *BODY)),
    )
    def patch_version(
        project: Project, name: Name, ref: Ref, request: Annotated[PatchVersion, Body()]
    ) -> Response[Any]:
        return _answer(registry.patch_version(project, name, ref, request))

    @app.delete(
        VERSION,
        summary="Soft-delete a version; 409 while an alias or a link holds it, unless ?force=true",
        responses=responses({200: ok(VersionRecord, "the deleted version's record")}, (*READ, 409)),
    )
    def delete_version(
        project: Project, name: Name, ref: Ref, force: Annotated[bool, Query()] = False
    ) -> Response[Any]:
        return _answer(registry.delete_version(project, name, ref, force=force, caller=who()))

    @app.post(
        VERSION + "/usages",
        summary="Record that a run used this version (lineage)",
        responses=responses({201: ok(UsageRecord, "the usage")}, POST),
    )
    def record_usage(project: Project, name: Name, ref: Ref, request: Annotated[Usage, Body()]) -> Response[Any]:
        return _answer(registry.record_usage(project, name, ref, request), 201)

    # ------------------------------------------------------------ links

    @app.put(
        VERSION + "/links/.+",
        summary="Link this version under a role to NAME@REF, pinned; If-Match: the current target's digest",
        responses=responses({200: ok(VersionLink, "the link as it now stands")}, (*CHANGE, 412)),
    )
    def set_link(project: Project, name: Name, ref: Ref, request: Annotated[SetLink, Body()]) -> Response[Any]:
        if_match = app.current_event.headers.get("if-match")
        role = path_tail()
        return _answer(registry.link(project, name, ref, role, request.target, if_match=if_match, caller=who()))

    @app.delete(
        VERSION + "/links/.+",
        summary="Remove the link under a role; If-Match: the current target's digest",
        responses=responses({204: {"description": "removed"}}, (*READ, 409, 412)),
    )
    def remove_link(project: Project, name: Name, ref: Ref) -> Response[Any]:
        if_match = app.current_event.headers.get("if-match")
        registry.unlink(project, name, ref, path_tail(), if_match=if_match, caller=who())
        return Response(status_code=204)

    @app.get(
        VERSION + "/links",
        summary="A version's links, in role order",
        responses=responses({200: ok(LinkPage, "a page of links")}),
    )
    def list_links(project: Project, name: Name, ref: Ref, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.list_links(project, name, ref, limit=limit, cursor=cursor))

    @app.get(
        VERSION + "/linked-by",
        summary="The versions that link to this one",
        responses=responses({200: ok(LinkedByPage, "a page of the versions linking here")}),
    )
    def linked_by(project: Project, name: Name, ref: Ref, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.linked_by(project, name, ref, limit=limit, cursor=cursor))

    # ------------------------------------------------------------ lineage

    @app.get(
        VERSION + "/lineage",
        summary="The runs and versions around a version; each edge goes from a run to a version it produced or used",
        responses=responses({200: ok(LineageGraph, "the graph")}),
    )
    def lineage(
        project: Project,
        name: Name,
        ref: Ref,
        direction: Annotated[
            Literal["upstream", "downstream", "both"], Query(description="upstream, downstream or both (default)")
        ] = "both",
        depth: Annotated[int | None, Query(ge=1, le=10, description="how many runs away: 3 by default")] = None,
        limit: Annotated[int | None, Query(ge=1, le=1000, description="neighbours taken of each node")] = None,
        cursor: Cursor = None,
    ) -> Response[Any]:
        graph = registry.lineage(project, name, ref, direction=direction, depth=depth, limit=limit, cursor=cursor)
        return _answer(graph)

    @app.get(
        "/v1/projects/<project>/runs",
        summary="The runs the registry has heard of, most recently seen first",
        responses=responses({200: ok(RunPage, "a page of runs")}),
    )
    def runs(project: Project, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.runs(project, limit=limit, cursor=cursor))

    @app.get(
        "/v1/projects/<project>/runs/<run_id>",
        summary="What a run produced and used, as name@version refs",
        responses=responses({200: ok(RunLineage, "the run's versions")}),
    )
    def run(project: Project, run_id: RunId, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.run(project, run_id, limit=limit, cursor=cursor))

    @app.get("/v1/openapi.json", summary="This document", include_in_schema=False)
    def openapi() -> Response[Any]:
        if not document:
            made = app.get_openapi_json_schema(title="artreg", version="1.1", description=DESCRIPTION)
            document.append(json.dumps(finish(json.loads(made), signed=caller is None)))
        return Response(status_code=200, content_type=JSON, body=document[0])

    return app
