"""Every route of API.md through the real Lambda handler, with API Gateway (HTTP API, payload 2.0)
proxy events, on moto's DynamoDB and S3 built from template.yaml."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import BUCKET, TABLE, api_event
from tests.support.lambda_context import LambdaContext
from tests.support.lambda_gateway import api_handler

P, N = "vision", "resnet"
BASE = f"/v1/projects/{P}/artifacts/{N}"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


Call = Callable[..., Answer]


@pytest.fixture
def call(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Call]:
    """The handler, imported fresh after the environment and moto are in place (its boto3 clients made
    once per process, as in a Lambda)."""
    handler = api_handler(monkeypatch, TABLE, BUCKET, fresh_clients=False)

    def invoke(method: str, path: str, **kwargs: Any) -> Answer:
        result = handler(api_event(method, path, **kwargs), LambdaContext())
        body = result.get("body")
        return Answer(result["statusCode"], result.get("headers", {}), json.loads(body) if body else None)

    return invoke


def files(*contents: bytes) -> list[dict[str, Any]]:
    return [
        {"path": f"f{i}.bin", "size": len(c), "sha256": hashlib.sha256(c).hexdigest()} for i, c in enumerate(contents)
    ]


def log(call: Call, *contents: bytes, **request: Any) -> Answer:
    started = call("POST", f"{BASE}/uploads", body={"files": files(*contents), **request})
    assert started.status in (200, 201), started.body
    if started.body.get("state") == "committed":
        return started
    by_sha = {hashlib.sha256(c).hexdigest(): c for c in contents}
    for missing in started.body["missing"]:
        requests.put(
            missing["url"], data=by_sha[missing["sha256"]], headers=missing["headers"], timeout=10
        ).raise_for_status()
    return call("POST", f"{BASE}/uploads/{started.body['upload_id']}/commit")


def assert_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    assert answer.body["error"]["message"]


# ---------------------------------------------------------------- logging


def test_upload_then_commit_then_retry(call: Call) -> None:
    # Given an upload of one file
    started = call(
        "POST",
        f"{BASE}/uploads",
        body={"type": "model", "files": files(b"weights"), "metadata": {"framework": "torch"}},
    )
    assert started.status == 201
    assert started.body["state"] == "pending"
    [missing] = started.body["missing"]
    # Then the presigned PUT binds the SHA-256 and the length in its signed headers
    assert "x-amz-checksum-sha256" in missing["url"]
    assert "content-length" in missing["url"]
    assert missing["headers"]["x-amz-checksum-sha256"]
    # When the blob is PUT and the upload committed
    requests.put(missing["url"], data=b"weights", headers=missing["headers"], timeout=10).raise_for_status()
    committed = call("POST", f"{BASE}/uploads/{started.body['upload_id']}/commit")
    # Then it is 1.0.0, created by the IAM caller, and a retry answers the same record
    assert committed.status == 201
    assert committed.body["version"] == "1.0.0"
    assert committed.body["created_by"].startswith("arn:aws:sts::")
    assert committed.body["aliases"] == ["latest"]
    again = call("POST", f"{BASE}/uploads/{started.body['upload_id']}/commit")
    assert (again.status, again.body) == (200, committed.body)


def test_commit_in_one_call_and_if_changed(call: Call) -> None:
    log(call, b"a", b"b")
    # When the same content is logged with commit and if_changed
    again = call("POST", f"{BASE}/uploads", body={"files": files(b"a", b"b"), "commit": True, "if_changed": True})
    # Then nothing is missing, and the answer is the existing version (200)
    assert (again.status, again.body["version"]) == (200, "1.0.0")
    # And with commit alone, a new version is made in the same call (201)
    made = call("POST", f"{BASE}/uploads", body={"files": files(b"a", b"b"), "commit": True, "bump": "minor"})
    assert (made.status, made.body["version"], made.body["state"]) == (201, "1.1.0", "committed")


def test_commit_without_blobs_is_409_blobs_missing(call: Call) -> None:
    started = call("POST", f"{BASE}/uploads", body={"files": files(b"never uploaded")})
    answer = call("POST", f"{BASE}/uploads/{started.body['upload_id']}/commit")
    assert_error(answer, 409, "blobs_missing")
    assert_error(call("GET", BASE), 404, "not_found")


def test_batches_of_files_and_a_multipart_blob(call: Call) -> None:
    # Given an upload that adds a second batch holding a 6 MiB file (multipart over 5 MiB here)
    big = b"x" * (6 * 1024**2)
    started = call("POST", f"{BASE}/uploads", body={"files": files(b"small")})
    upload = f"{BASE}/uploads/{started.body['upload_id']}"
    more = call(
        "POST",
        f"{upload}/files",
        body={"files": [{"path": "big.bin", "size": len(big), "sha256": hashlib.sha256(big).hexdigest()}]},
    )
    assert more.status == 200
    [target] = more.body["missing"]
    parts = target["multipart"]["parts"]
    # When the parts are PUT, the blob completed and the upload committed
    size = target["multipart"]["part_size"]
    chunks = [big[(p["part_number"] - 1) * size : p["part_number"] * size] for p in parts]
    etags = [requests.put(p["url"], data=c, timeout=10).headers["ETag"] for p, c in zip(parts, chunks, strict=True)]
    requests.put(
        started.body["missing"][0]["url"], data=b"small", headers=started.body["missing"][0]["headers"], timeout=10
    )
    done = call(
        "POST",
        f"{upload}/blobs/{target['sha256']}/complete",
        body={"parts": [{"part_number": p["part_number"], "etag": e} for p, e in zip(parts, etags, strict=True)]},
    )
    assert done.status == 200
    committed = call("POST", f"{upload}/commit")
    # Then the version holds both files
    assert committed.status == 201
    assert sorted(f["path"] for f in committed.body["files"]) == ["big.bin", "f0.bin"]
    assert committed.body["size"] == len(big) + 5


# ---------------------------------------------------------------- reading


def test_reading_routes(call: Call) -> None:
    log(call, b"one", type="model", tags=["customer:1"], metadata={"acc": 0.9})
    log(
        call,
        b"two",
        type="model",
        aliases=["stable"],
        remote=[{"uri": "https://example.com/d.csv", "path": "raw/d.csv"}],
    )
    # artifacts of the project, and the artifact
    listing = call("GET", f"/v1/projects/{P}/artifacts", query={"type": "model"})
    assert [a["name"] for a in listing.body["items"]] == [N]
    summary = call("GET", BASE).body
    assert (summary["latest"], summary["version_count"], summary["aliases"]) == ("2.0.0", 2, {"stable": "2.0.0"})
    # versions with filters
    assert [v["version"] for v in call("GET", f"{BASE}/versions").body["items"]] == ["2.0.0", "1.0.0"]
    assert [v["version"] for v in call("GET", f"{BASE}/versions", query={"tag": "customer:1"}).body["items"]] == [
        "1.0.0"
    ]
    assert [v["version"] for v in call("GET", f"{BASE}/versions", query={"metadata.acc": "0.9"}).body["items"]] == [
        "1.0.0"
    ]
    # a version by alias, with its headers, and 304 for a cache that has it
    version = call("GET", f"{BASE}/versions/stable")
    assert version.headers["X-Artifact-Version"] == "2.0.0"
    assert version.headers["ETag"] == f'"{version.body["digest"]}"'
    assert call("GET", f"{BASE}/versions/stable", headers={"If-None-Match": version.headers["ETag"]}).status == 304
    # files, one file, download
    assert [e["path"] for e in call("GET", f"{BASE}/versions/2.0.0/files").body["items"]] == ["f0.bin", "raw/d.csv"]
    redirect = call("GET", f"{BASE}/versions/latest/files/f0.bin")
    assert redirect.status == 302
    assert requests.get(redirect.headers["Location"], timeout=10).content == b"two"
    assert call("GET", f"{BASE}/versions/latest/files/raw/d.csv").headers["Location"] == "https://example.com/d.csv"
    assert_error(call("GET", f"{BASE}/versions/latest/files/nope.bin"), 404, "not_found")
    download = call("GET", f"{BASE}/versions/latest/download").body
    assert [f["path"] for f in download["files"]] == ["f0.bin"]
    assert [r["path"] for r in download["remote"]] == ["raw/d.csv"]


def test_resolve_name_at_alias_to_bytes_in_two_requests(call: Call) -> None:
    log(call, b"v1", aliases=["stable"])
    # the record
    record = call("GET", f"/v1/resolve/{P}/{N}@stable")
    assert (record.status, record.body["version"]) == (200, "1.0.0")
    assert call("GET", f"/v1/resolve/{P}/{N}").body["version"] == "1.0.0"  # latest by default
    # ?file= answers a 302 whose target is the bytes
    redirect = call("GET", f"/v1/resolve/{P}/{N}@stable", query={"file": "f0.bin"})
    assert redirect.status == 302
    assert requests.get(redirect.headers["Location"], timeout=10).content == b"v1"
    # ?at= before the alias existed
    assert_error(call("GET", f"/v1/resolve/{P}/{N}@stable", query={"at": "2001-01-01T00:00:00Z"}), 404, "not_found")


# ---------------------------------------------------------------- changing


def test_alias_routes(call: Call) -> None:
    log(call, b"1", aliases=["stable"])
    log(call, b"2")
    alias = f"{BASE}/aliases/stable"
    assert_error(call("PUT", alias, body={"version": "2.0.0", "expected_version": "9.0.0"}), 412, "precondition_failed")
    moved = call("PUT", alias, body={"version": "2.0.0", "expected_version": "1.0.0"})
    assert (moved.status, moved.body["version"]) == (200, "2.0.0")
    assert_error(call("PUT", f"{BASE}/aliases/latest", body={"version": "1.0.0"}), 409, "alias_conflict")
    history = call("GET", f"{alias}/history").body["items"]
    assert [(h["version"], h["previous_version"]) for h in history] == [("2.0.0", "1.0.0"), ("1.0.0", None)]
    assert call("DELETE", alias).status == 204
    assert_error(call("GET", f"{BASE}/versions/stable"), 404, "not_found")
    assert_error(call("DELETE", alias), 404, "not_found")


def test_patch_delete_and_usage_routes(call: Call) -> None:
    log(call, b"1", metadata={"a": 1}, aliases=["stable"])
    patched = call("PATCH", f"{BASE}/versions/1.0.0", body={"metadata": {"a": None, "b": 2}, "tags_add": ["gold"]})
    assert (patched.body["metadata"], patched.body["tags"]) == ({"b": 2}, ["gold"])
    used = call("POST", f"{BASE}/versions/stable/usages", body={"run_id": "run-43"})
    assert (used.status, used.body["version"]) == (201, "1.0.0")
    assert_error(call("DELETE", f"{BASE}/versions/1.0.0"), 409, "alias_conflict")
    deleted = call("DELETE", f"{BASE}/versions/1.0.0", query={"force": "true"})
    assert (deleted.status, deleted.body["state"]) == (200, "deleted")
    assert call("GET", BASE).body["latest"] is None


API_ROUTES = {
    ("post", "/v1/projects/{project}/artifacts/{name}/uploads"),
    ("post", "/v1/projects/{project}/artifacts/{name}/uploads/{upload_id}/files"),
    ("post", "/v1/projects/{project}/artifacts/{name}/uploads/{upload_id}/blobs/{sha256}/complete"),
    ("post", "/v1/projects/{project}/artifacts/{name}/uploads/{upload_id}/commit"),
    ("get", "/v1/projects/{project}/artifacts"),
    ("get", "/v1/projects/{project}/artifacts/{name}"),
    ("get", "/v1/projects/{project}/artifacts/{name}/versions"),
    ("get", "/v1/projects/{project}/artifacts/{name}/versions/{ref}"),
    ("patch", "/v1/projects/{project}/artifacts/{name}/versions/{ref}"),
    ("delete", "/v1/projects/{project}/artifacts/{name}/versions/{ref}"),
    ("get", "/v1/projects/{project}/artifacts/{name}/versions/{ref}/files"),
    ("get", "/v1/projects/{project}/artifacts/{name}/versions/{ref}/download"),
    ("post", "/v1/projects/{project}/artifacts/{name}/versions/{ref}/usages"),
    ("put", "/v1/projects/{project}/artifacts/{name}/aliases/{alias}"),
    ("delete", "/v1/projects/{project}/artifacts/{name}/aliases/{alias}"),
    ("get", "/v1/projects/{project}/artifacts/{name}/aliases/{alias}/history"),
    ("get", "/v1/resolve/{project}/{name_ref}"),
    ("get", "/v1/projects/{project}/artifacts/{name}/versions/{ref}/lineage"),
    ("get", "/v1/projects/{project}/runs/{run_id}"),
}


def test_openapi_document_matches_the_routes(call: Call) -> None:
    # When the served document is read
    document = call("GET", "/v1/openapi.json")
    assert document.status == 200
    served = {(method, path) for path, item in document.body["paths"].items() for method in item}
    # Then it holds every route of API.md, each with its answer model, and the file route
    assert served >= API_ROUTES
    file_routes = {p for m, p in served if m == "get" and "/files/" in p}
    assert len(file_routes) == 1
    commit = document.body["paths"]["/v1/projects/{project}/artifacts/{name}/uploads/{upload_id}/commit"]["post"]
    assert "VersionRecord" in json.dumps(commit["responses"]["201"])
    assert "ErrorBody" in json.dumps(commit["responses"]["400"])


# ---------------------------------------------------------------- bad input: a clear 400, nothing written


def test_malformed_and_mistyped_bodies_are_400(call: Call) -> None:
    assert_error(call("POST", f"{BASE}/uploads", body="{not json"), 400, "invalid_request")
    wrong = call("POST", f"{BASE}/uploads", body={"files": [{"path": "a", "size": "big", "sha256": "0" * 64}]})
    assert_error(wrong, 400, "invalid_request")
    assert "size" in wrong.body["error"]["message"]
    assert_error(call("POST", f"{BASE}/uploads", body={"version": "1.0.0", "bump": "major"}), 400, "invalid_request")
    assert_error(call("GET", "/v1/nothing/here"), 404, "not_found")


SHA = "0" * 64
BAD_REQUESTS: list[tuple[str, str, str, Any]] = [
    # (rule, method, path, body)
    ("project starts with a letter or digit", "POST", f"/v1/projects/-vision/artifacts/{N}/uploads", {}),
    ("project at most 100 characters", "POST", f"/v1/projects/{'p' * 101}/artifacts/{N}/uploads", {}),
    ("name starts with a letter or digit", "POST", f"/v1/projects/{P}/artifacts/.hidden/uploads", {}),
    ("name at most 128 characters", "POST", f"/v1/projects/{P}/artifacts/{'n' * 129}/uploads", {}),
    ("name of A-Z a-z 0-9 . _ -", "POST", f"/v1/projects/{P}/artifacts/a%20b/uploads", {}),
    ("version is semver", "POST", f"{BASE}/uploads", {"version": "1.0"}),
    ("version has no leading zero", "POST", f"{BASE}/uploads", {"version": "01.0.0"}),
    ("alias starts with a lower-case letter", "POST", f"{BASE}/uploads", {"aliases": ["Prod"]}),
    ("alias never parses as a version", "POST", f"{BASE}/uploads", {"aliases": ["1.0.0"]}),
    ("alias at most 64 characters", "POST", f"{BASE}/uploads", {"aliases": ["a" * 65]}),
    ("alias latest is reserved", "POST", f"{BASE}/uploads", {"aliases": ["latest"]}),
    ("tag has no control character", "POST", f"{BASE}/uploads", {"tags": ["a\nb"]}),
    ("tag at most 128 characters", "POST", f"{BASE}/uploads", {"tags": ["t" * 129]}),
    ("at most 64 tags", "POST", f"{BASE}/uploads", {"tags": [f"t{i}" for i in range(65)]}),
    ("type of A-Z a-z 0-9 . _ -", "POST", f"{BASE}/uploads", {"type": "my model"}),
    ("path has no .. segment", "POST", f"{BASE}/uploads", {"files": [{"path": "../x", "size": 1, "sha256": SHA}]}),
    ("path is relative", "POST", f"{BASE}/uploads", {"files": [{"path": "/etc/passwd", "size": 1, "sha256": SHA}]}),
    ("path has no empty segment", "POST", f"{BASE}/uploads", {"files": [{"path": "a//b", "size": 1, "sha256": SHA}]}),
    ("path has no . segment", "POST", f"{BASE}/uploads", {"files": [{"path": "a/./b", "size": 1, "sha256": SHA}]}),
    ("path has no backslash", "POST", f"{BASE}/uploads", {"files": [{"path": "a\\..\\b", "size": 1, "sha256": SHA}]}),
    ("path has no NUL", "POST", f"{BASE}/uploads", {"files": [{"path": "a\u0000b", "size": 1, "sha256": SHA}]}),
    ("path at most 1024 bytes", "POST", f"{BASE}/uploads", {"files": [{"path": "é" * 513, "size": 1, "sha256": SHA}]}),
    ("path is not empty", "POST", f"{BASE}/uploads", {"files": [{"path": "", "size": 1, "sha256": SHA}]}),
    (
        "remote path has no .. segment",
        "POST",
        f"{BASE}/uploads",
        {"remote": [{"uri": "s3://b/k", "path": "x/../../y"}]},
    ),
    ("sha256 is 64 hex digits", "POST", f"{BASE}/uploads", {"files": [{"path": "a", "size": 1, "sha256": "../../x"}]}),
    ("metadata nests at most 8 deep", "POST", f"{BASE}/uploads", {"metadata": {"a": [[[[[[[[1]]]]]]]]}}),
    ("a path listed twice", "POST", f"{BASE}/uploads", {"files": [{"path": "a", "size": 1, "sha256": SHA}] * 2}),
    (
        "at most 1,000 files a request",
        "POST",
        f"{BASE}/uploads",
        {"files": [{"path": f"{i}", "size": 1, "sha256": SHA} for i in range(1001)]},
    ),
]


@pytest.mark.parametrize(("rule", "method", "path", "body"), BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_each_naming_rule_is_400_and_writes_nothing(
    call: Call, aws: dict[str, Any], rule: str, method: str, path: str, body: Any
) -> None:
    # When a request breaks the rule
    answer = call(method, path, body=body)
    # Then it is 400 invalid_request with a message, and neither the table nor the bucket holds anything
    assert_error(answer, 400, "invalid_request")
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET)


def test_metadata_over_64_kib_is_413(call: Call, aws: dict[str, Any]) -> None:
    answer = call("POST", f"{BASE}/uploads", body={"metadata": {"blob": "x" * 70_000}})
    assert_error(answer, 413, "too_large")
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0


def test_a_path_with_dot_dot_never_becomes_an_s3_key(call: Call, aws: dict[str, Any]) -> None:
    # Given a version logged with an odd but valid path, and attempts at traversal in every route
    log(call, b"x")
    for path in (f"{BASE}/versions/latest/files/../../../etc/passwd", f"{BASE}/versions/latest/files/%2e%2e/x"):
        assert call("GET", path).status in (400, 404)
    assert call("GET", f"/v1/resolve/{P}/{N}@latest", query={"file": "../f0.bin"}).status == 400
    # Then every key in the bucket is a content address
    keys = [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"{P}/blobs/sha256/{hashlib.sha256(b'x').hexdigest()[:2]}/{hashlib.sha256(b'x').hexdigest()}"]


def test_a_commit_that_lost_a_race_is_counted_in_commit_retries(
    call: Call, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a DynamoDB store whose first write of a commit loses the race to another writer
    from artreg.registry.ports import HeadMoved

    store = sys.modules["artreg.api.lambda_entry"].registry.store
    apply, lost = store.apply, []

    def first_loses(change: Any) -> None:
        if not lost:
            lost.append(change)
            raise HeadMoved(store.get_head(P, N))
        apply(change)

    monkeypatch.setattr(store, "apply", first_loses)
    capsys.readouterr()
    # When a version is logged through the API function
    committed = log(call, b"weights")
    # Then the commit is retried and made, and the function's metrics count the retry
    assert (committed.status, committed.body["version"], len(lost)) == (201, "1.0.0", 1)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["CommitRetries"] for m in emitted if "CommitRetries" in m] == [[1.0]]  # one retry, one datum
