"""The HTTP API of API.md on Powertools' `APIGatewayHttpResolver`: each route reads its validated
input, calls one registry use case and shapes the answer. The same resolver serves Lambda (behind
API Gateway) and the local server (which hands it the same proxy events)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from artreg.model import names
from artreg.model.errors import ArtregError, Invalid, NotFound, Retryable
from artreg.model.wire import (
    AddFiles,
    AliasHistory,
    ArtifactPage,
    ArtifactSummary,
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
    RemoteEntry,
    RunLineage,
    RunPage,
    SetLink,
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
Cursor = Annotated[str | None, Query(max_length=2048, description="the next_cursor of the previous page")]

logger = Logger(service="artreg")
metrics = registry_metrics()


def _answer(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=model.model_dump_json(), headers=headers)


def _error(error: ArtregError) -> Response[Any]:
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message, details=error.details))
    headers = {"Retry-After": "1"} if isinstance(error, Retryable) else None
    return _answer(body, error.status, headers)


def _doc(model: type[BaseModel], status: int = 200) -> dict[int, OpenAPIResponse]:
    """The answer's model for the OpenAPI document. Routes return a `Response` of JSON they made with
    pydantic already, so the answer is not validated a second time on the way out."""
    errors: OpenAPIResponse = {"description": "the error body of API.md", "content": {JSON: {"model": ErrorBody}}}
    return {status: {"description": model.__doc__ or model.__name__, "content": {JSON: {"model": model}}}, 400: errors}


def _version_headers(version: StoredVersion) -> dict[str, str]:
    return {"X-Artifact-Version": version.version, "X-Artifact-Digest": version.digest, "ETag": f'"{version.digest}"'}


def build_app(
    registry: RegistryService, *, caller: Callable[[APIGatewayHttpResolver], str | None] | None = None
) -> APIGatewayHttpResolver:
    """A resolver bound to `registry`. A resolver keeps the request it handles on itself, so one
    resolver must handle one request at a time (as Lambda does)."""
    app = APIGatewayHttpResolver(enable_validation=True)

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
        content_type = app.current_event.headers.get("content-type", "")
        if app.current_event.body and not content_type.startswith(JSON):
            field, message = "content-type", f"send the body as JSON with Content-Type: {JSON}, not {content_type!r}"
        return _error(
            Invalid(
                f"{field}: {message}",
                details={
                    "field": field,
                    "errors": [{"loc": list(p.get("loc", ())), "msg": p.get("msg")} for p in problems[:20]],
                },
            )
        )

    @app.not_found
    def no_route(_: Exception) -> Response[Any]:
        return _error(NotFound(f"no route {app.current_event.http_method} {app.current_event.path}"))

    # ------------------------------------------------------------ logging a version

    @app.post(
        ARTIFACT + "/uploads",
        summary="Start an upload (and commit it at once with commit: true)",
        responses=_doc(UploadStarted, 201),
    )
    def start_upload(project: str, name: str, request: Annotated[StartUpload, Body()]) -> Response[Any]:
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
        UPLOAD + "/files",
        summary="Add a batch of up to 1,000 files to a pending upload",
        responses=_doc(FilesAdded, 200),
    )
    def add_files(project: str, name: str, upload_id: str, request: Annotated[AddFiles, Body()]) -> Response[Any]:
        return _answer(registry.add_files(project, name, upload_id, request))

    @app.post(UPLOAD + "/blobs/<sha256>/complete", summary="Complete a multipart blob upload")
    def complete_blob(
        project: str, name: str, upload_id: str, sha256: str, request: Annotated[CompleteBlob, Body()]
    ) -> Response[Any]:
        registry.complete_blob(project, name, upload_id, sha256, request)
        return Response(status_code=200, content_type=JSON, body={"sha256": sha256, "completed": True})

    @app.post(
        UPLOAD + "/commit",
        summary="Commit an upload: verify its blobs, take a version number",
        responses=_doc(VersionRecord, 201),
    )
    def commit(project: str, name: str, upload_id: str) -> Response[Any]:
        return committed(registry.commit(project, name, upload_id, who()))

    # ------------------------------------------------------------ reading

    @app.get(
        "/v1/projects/<project>/artifacts", summary="List the artifacts of a project", responses=_doc(ArtifactPage, 200)
    )
    def list_artifacts(
        project: str, type: Annotated[str | None, Query()] = None, limit: Limit = None, cursor: Cursor = None
    ) -> Response[Any]:
        return _answer(registry.list_artifacts(project, type=type, limit=limit, cursor=cursor))

    @app.get(ARTIFACT, summary="An artifact: type, latest version, aliases", responses=_doc(ArtifactSummary, 200))
    def get_artifact(project: str, name: str) -> Response[Any]:
        return _answer(registry.get_artifact(project, name))

    @app.get(
        ARTIFACT + "/versions",
        summary="Versions, highest precedence first; filter with metadata.KEY=VALUE too",
        responses=_doc(VersionPage, 200),
    )
    def list_versions(
        project: str,
        name: str,
        limit: Limit = None,
        cursor: Cursor = None,
        tag: Annotated[str | None, Query()] = None,
        alias: Annotated[str | None, Query()] = None,
    ) -> Response[Any]:
        query = app.current_event.query_string_parameters or {}
        metadata = {k.removeprefix("metadata."): v for k, v in query.items() if k.startswith("metadata.")}
        page = registry.list_versions(
            project, name, limit=limit, cursor=cursor, tag=tag, alias=alias, metadata=metadata
        )
        return _answer(page)

    @app.get(VERSION, summary="A version record, by version or alias", responses=_doc(VersionRecord, 200))
    def get_version(project: str, name: str, ref: str) -> Response[Any]:
        started = time.perf_counter()
        version = registry.resolve(project, name, ref)
        metrics.add_metric(
            name="ResolveLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )
        return version_answer(version)

    @app.get(
        VERSION + "/files",
        summary="The version's file and remote entries, paged, in path order",
        responses=_doc(FilePage, 200),
    )
    def list_files(project: str, name: str, ref: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.list_files(project, name, ref, limit=limit, cursor=cursor))

    @app.get(
        VERSION + "/files/.+", summary="302 to a short-lived URL of the file's bytes", responses=_doc(RemoteEntry, 200)
    )
    def get_file(project: str, name: str, ref: str) -> Response[Any]:
        prefix = f"/v1/projects/{project}/artifacts/{name}/versions/{ref}/files/"
        return file_answer(project, name, ref, unquote(app.current_event.path.removeprefix(prefix)))

    @app.get(
        VERSION + "/download",
        summary="The stored files with a presigned URL each, 1,000 a page",
        responses=_doc(DownloadPage, 200),
    )
    def download(project: str, name: str, ref: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.download(project, name, ref, limit=limit, cursor=cursor))

    @app.get(
        "/v1/resolve/<project>/<name_ref>",
        summary="Resolve name@ref; ?file= for a file, ?at= for then",
        responses=_doc(VersionRecord, 200),
    )
    def resolve(
        project: str,
        name_ref: str,
        file: Annotated[str | None, Query(max_length=1024)] = None,
        at: Annotated[datetime | None, Query(description="RFC 3339 time: the alias as it stood then")] = None,
    ) -> Response[Any]:
        name, ref = names.split_ref(unquote(name_ref))
        if file is not None:
            return file_answer(project, name, ref, file)
        return version_answer(registry.resolve(project, name, ref, at))

    @app.get(
        ARTIFACT + "/aliases/<alias>/history",
        summary="Every move of an alias, newest first",
        responses=_doc(AliasHistory, 200),
    )
    def alias_history(project: str, name: str, alias: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.alias_history(project, name, alias, limit=limit, cursor=cursor))

    # ------------------------------------------------------------ changing

    @app.put(
        ARTIFACT + "/aliases/<alias>",
        summary="Point an alias at a version (compare-and-swap with expected_version)",
        responses=_doc(VersionRecord, 200),
    )
    def move_alias(project: str, name: str, alias: str, request: Annotated[MoveAlias, Body()]) -> Response[Any]:
        return _answer(registry.move_alias(project, name, alias, request, who()))

    @app.delete(ARTIFACT + "/aliases/<alias>", summary="Remove an alias")
    def remove_alias(project: str, name: str, alias: str) -> Response[Any]:
        registry.remove_alias(project, name, alias, who())
        return Response(status_code=204)

    @app.patch(
        VERSION, summary="Merge metadata (null removes a key), add and remove tags", responses=_doc(VersionRecord, 200)
    )
    def patch_version(project: str, name: str, ref: str, request: Annotated[PatchVersion, Body()]) -> Response[Any]:
        return _answer(registry.patch_version(project, name, ref, request))

    @app.delete(
        VERSION,
        summary="Soft-delete a version; 409 while an alias or a link holds it, unless ?force=true",
        responses=_doc(VersionRecord, 200),
    )
    def delete_version(project: str, name: str, ref: str, force: Annotated[bool, Query()] = False) -> Response[Any]:
        return _answer(registry.delete_version(project, name, ref, force=force, caller=who()))

    @app.post(
        VERSION + "/usages", summary="Record that a run used this version (lineage)", responses=_doc(UsageRecord, 201)
    )
    def record_usage(project: str, name: str, ref: str, request: Annotated[Usage, Body()]) -> Response[Any]:
        return _answer(registry.record_usage(project, name, ref, request), 201)

    # ------------------------------------------------------------ links

    def role_of(project: str, name: str, ref: str) -> str:
        """The role at the end of a links path: it may hold `/` (`checkpoints/epoch-3`)."""
        prefix = f"/v1/projects/{project}/artifacts/{name}/versions/{ref}/links/"
        return unquote(app.current_event.path.removeprefix(prefix))

    @app.put(
        VERSION + "/links/.+",
        summary="Link this version under a role to NAME@REF, pinned; If-Match: the current target's digest",
        responses=_doc(VersionLink, 200),
    )
    def link(project: str, name: str, ref: str, request: Annotated[SetLink, Body()]) -> Response[Any]:
        if_match = app.current_event.headers.get("if-match")
        role = role_of(project, name, ref)
        return _answer(registry.link(project, name, ref, role, request.target, if_match=if_match, caller=who()))

    @app.delete(VERSION + "/links/.+", summary="Remove the link under a role")
    def unlink(project: str, name: str, ref: str) -> Response[Any]:
        if_match = app.current_event.headers.get("if-match")
        registry.unlink(project, name, ref, role_of(project, name, ref), if_match=if_match, caller=who())
        return Response(status_code=204)

    @app.get(VERSION + "/links", summary="A version's links, in role order", responses=_doc(LinkPage, 200))
    def list_links(project: str, name: str, ref: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.list_links(project, name, ref, limit=limit, cursor=cursor))

    @app.get(VERSION + "/linked-by", summary="The versions that link to this one", responses=_doc(LinkedByPage, 200))
    def linked_by(project: str, name: str, ref: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.linked_by(project, name, ref, limit=limit, cursor=cursor))

    # ------------------------------------------------------------ lineage

    @app.get(
        VERSION + "/lineage",
        summary="The runs and versions around a version; each edge goes from a run to a version it produced or used",
        responses=_doc(LineageGraph, 200),
    )
    def lineage(
        project: str,
        name: str,
        ref: str,
        direction: Annotated[str, Query(description="upstream, downstream or both (default)")] = "both",
        depth: Annotated[int | None, Query(description="how many runs away to go: 3 by default, at most 10")] = None,
        limit: Annotated[int | None, Query(description="neighbours taken of each node, at most 1,000")] = None,
        cursor: Cursor = None,
    ) -> Response[Any]:
        graph = registry.lineage(project, name, ref, direction=direction, depth=depth, limit=limit, cursor=cursor)
        return _answer(graph)

    @app.get(
        "/v1/projects/<project>/runs",
        summary="The runs the registry has heard of, most recently seen first",
        responses=_doc(RunPage, 200),
    )
    def runs(project: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.runs(project, limit=limit, cursor=cursor))

    @app.get(
        "/v1/projects/<project>/runs/<run_id>",
        summary="What a run produced and used, as name@version refs",
        responses=_doc(RunLineage, 200),
    )
    def run(project: str, run_id: str, limit: Limit = None, cursor: Cursor = None) -> Response[Any]:
        return _answer(registry.run(project, unquote(run_id), limit=limit, cursor=cursor))

    @app.get("/v1/openapi.json", summary="This document", include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(
            status_code=200, content_type=JSON, body=app.get_openapi_json_schema(title="artreg", version="1")
        )

    return app
