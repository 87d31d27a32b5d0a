"""`Idempotency-Key` (API.md, "Retries are safe") through the very handler each back end runs: the
Lambda's (Powertools' DynamoDB persistence on moto's table) and the local server's (SQLite)."""

from __future__ import annotations

import hashlib
import importlib
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from artreg.api.idempotency import IdempotentPosts
from artreg.model.wire import MissingBlob
from tests.conftest import BUCKET, TABLE, api_event
from tests.support.folder_blobs import put_blob
from tests.support.lambda_context import LambdaContext

P, N = "vision", "resnet"
BASE = f"/v1/projects/{P}/artifacts/{N}"
DAY = 24 * 3600


@dataclass
class Api:
    """One back end's handler: `send` answers an event as API Gateway would get it back."""

    name: str
    idempotency: IdempotentPosts
    resolve: Callable[[dict[str, Any], Any], dict[str, Any]]  # the resolver alone, without the key's handling
    expiries: Callable[[], list[int]]  # the expiry (epoch seconds) of every stored key record
    put_blob: Callable[[dict[str, Any], bytes], None]  # what a client does with a `missing` entry

    def send(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return self.idempotency.resolve(self.resolve, event, context or LambdaContext())

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        headers = {"Idempotency-Key": key} if key is not None else {}
        answer = self.send(api_event(method, path, headers=headers, **kwargs))
        body = answer.get("body")
        return answer["statusCode"], json.loads(body) if body else None, answer.get("headers") or {}


def _resolve_on(local: Any) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The local server's resolver alone (without the key's handling), on the calling thread's own one."""

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer: dict[str, Any] = local._resolvers.get().resolve(event, context)
        return answer

    return resolve


@pytest.fixture(params=["aws", "local"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    if request.param == "local":
        from artreg.local.server import Local

        local = Local(tmp_path / "data", "http://127.0.0.1:1")

        def local_expiries() -> list[int]:
            if not (tmp_path / "data" / "idempotency.db").exists():
                return []  # the records are opened at the first keyed POST
            with sqlite3.connect(tmp_path / "data" / "idempotency.db") as db:
                return [row[0] for row in db.execute("SELECT expiry FROM idempotency")]

        def local_put(missing: dict[str, Any], data: bytes) -> None:
            put_blob(local.blobs, MissingBlob.model_validate(missing), data)

        yield Api("local", local.idempotency, _resolve_on(local), local_expiries, local_put)
        return
    aws = request.getfixturevalue("aws")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in {
        "ARTREG_TABLE_NAME": TABLE,
        "ARTREG_BUCKET_NAME": BUCKET,
        "ARTREG_EVENT_BUS_NAME": "artreg-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "artreg",
    }.items():
        monkeypatch.setenv(name, value)
    for module in ("functions.api.app", "artreg.api.lambda_entry"):
        sys.modules.pop(module, None)
    from artreg.aws import clients
    from artreg.settings import settings

    for cached in (clients.dynamodb_client, clients.s3_client, settings):
        cached.cache_clear()
    entry = importlib.import_module("artreg.api.lambda_entry")

    def aws_expiries() -> list[int]:
        items = aws["dynamodb"].query(
            TableName=TABLE,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": clients.IDEMPOTENCY_PK}},
        )["Items"]
        return [int(item["expires_at"]["N"]) for item in items]

    def s3_put(missing: dict[str, Any], data: bytes) -> None:
        requests.put(missing["url"], data=data, headers=missing["headers"], timeout=10).raise_for_status()

    yield Api("aws", entry.idempotency, entry.app.resolve, aws_expiries, s3_put)


def files(*contents: bytes) -> list[dict[str, Any]]:
    return [
        {"path": f"f{i}.bin", "size": len(c), "sha256": hashlib.sha256(c).hexdigest()} for i, c in enumerate(contents)
    ]


def versions(api: Api) -> list[str]:
    status, page, _ = api.call("GET", f"{BASE}/versions")
    return [v["version"] for v in page["items"]] if status == 200 else []


# ---------------------------------------------------------------- one logical call acts once


def test_a_repeated_commit_answers_the_first_answer_and_makes_no_second_version(api: Api) -> None:
    # Given a version whose content the registry holds, so that a log with commit: true commits at once
    api.call("POST", f"{BASE}/uploads", key="k-0", body={"files": files(), "metadata": {"n": 0}, "commit": True})
    request = {"files": files(), "metadata": {"n": 1}, "commit": True}
    # When the same log is sent twice with one key (its first answer was lost)
    first = api.call("POST", f"{BASE}/uploads", key="log-1", body=request)
    again = api.call("POST", f"{BASE}/uploads", key="log-1", body=request)
    # Then both answers are the one version made, with the same status and body
    assert first[0] == again[0] == 201
    assert first[1] == again[1]
    assert first[1]["version"] == "2.0.0"
    assert again[2]["X-Artifact-Version"] == "2.0.0"
    assert again[2]["Idempotent-Replayed"] == "true"
    # And only one version was made by it
    assert versions(api) == ["2.0.0", "1.0.0"]
    # And the record is kept at least a day
    assert min(api.expiries()) >= time.time() + DAY - 60


def test_the_same_key_with_another_request_is_422_and_acts_not(api: Api) -> None:
    # Given a log made with a key
    api.call("POST", f"{BASE}/uploads", key="log-1", body={"files": files(), "commit": True})
    # When the key is sent again with another body, or on another artifact's same route
    other_body = api.call(
        "POST", f"{BASE}/uploads", key="log-1", body={"files": files(), "tags": ["x"], "commit": True}
    )
    other_path = api.call(
        "POST", f"/v1/projects/{P}/artifacts/other/uploads", key="log-1", body={"files": files(), "commit": True}
    )
    # Then each is 422 idempotency_key_reused, and nothing more was made
    for status, body, _ in (other_body, other_path):
        assert (status, body["error"]["code"]) == (422, "idempotency_key_reused")
    assert versions(api) == ["1.0.0"]
    assert api.call("GET", f"/v1/projects/{P}/artifacts/other")[0] == 404


def test_the_same_key_in_another_project_is_another_call(api: Api) -> None:
    # Given a log in one project with a key
    api.call("POST", f"{BASE}/uploads", key="log-1", body={"files": files(), "commit": True})
    # When another project uses the same key for the same request
    status, body, _ = api.call(
        "POST", f"/v1/projects/other/artifacts/{N}/uploads", key="log-1", body={"files": files(), "commit": True}
    )
    # Then it acts there
    assert (status, body["project"]) == (201, "other")


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "a\nb", "tab\there"])
def test_a_malformed_key_is_400_and_writes_nothing(api: Api, key: str) -> None:
    # When a log carries a key that is not 1-255 printable ASCII characters
    status, body, _ = api.call("POST", f"{BASE}/uploads", key=key, body={"files": files(), "commit": True})
    # Then it is refused, and nothing is made
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert api.call("GET", BASE)[0] == 404


def test_the_longest_key_and_every_printable_character_are_taken(api: Api) -> None:
    for key in ("x" * 255, "".join(chr(c) for c in range(0x20, 0x7F))):
        status, _, _ = api.call("POST", f"{BASE}/uploads", key=key, body={"files": files(), "commit": True})
        assert status == 201


# ---------------------------------------------------------------- which answers are kept


def test_a_refusal_is_not_kept_so_the_retry_after_a_fix_acts(api: Api) -> None:
    # Given an upload whose blob was not sent, and a commit of it refused as blobs_missing
    data = b"weights"
    _, started, _ = api.call("POST", f"{BASE}/uploads", key="start", body={"files": files(data)})
    commit = f"{BASE}/uploads/{started['upload_id']}/commit"
    status, body, _ = api.call("POST", commit, key="commit-1")
    assert (status, body["error"]["code"]) == (409, "blobs_missing")
    # When the blob is sent, and the commit sent again with the same key
    [missing] = started["missing"]
    api.put_blob(missing, data)
    status, body, headers = api.call("POST", commit, key="commit-1")
    # Then it commits: the refusal was not kept
    assert (status, body["version"]) == (201, "1.0.0")
    assert "Idempotent-Replayed" not in headers


def test_a_repeat_while_the_first_is_handled_is_409_in_progress_with_retry_after(api: Api) -> None:
    # Given a log whose handling is under way
    event = api_event("POST", f"{BASE}/uploads", headers={"Idempotency-Key": "log-1"}, body={"commit": True})
    seen: list[dict[str, Any]] = []

    def first_handling(first: dict[str, Any], context: Any) -> dict[str, Any]:
        # When the same request arrives meanwhile
        seen.append(api.send(first))
        return api.resolve(first, context)

    done = api.idempotency.resolve(first_handling, event, LambdaContext())
    # Then the repeat is told to come back later, and the first one completes
    [repeat] = seen
    assert repeat["statusCode"] == 409
    assert json.loads(repeat["body"])["error"]["code"] == "idempotency_in_progress"
    assert repeat["headers"]["Retry-After"] == "1"
    assert done["statusCode"] == 201
    assert versions(api) == ["1.0.0"]


def test_a_key_whose_request_died_is_free_again_after_its_in_progress_expiry(api: Api) -> None:
    # Given a request that died while handled (the process killed), with no time left to it
    event = api_event("POST", f"{BASE}/uploads", headers={"Idempotency-Key": "log-1"}, body={"commit": True})

    def dies(_: dict[str, Any], __: Any) -> dict[str, Any]:
        raise SystemExit("killed")

    with pytest.raises(SystemExit):
        api.idempotency.resolve(dies, event, LambdaContext(remaining_ms=0))
    time.sleep(0.01)
    # When it is sent again
    answer = api.send(event)
    # Then it acts, once
    assert answer["statusCode"] == 201
    assert versions(api) == ["1.0.0"]


def test_a_get_and_a_post_without_a_key_go_straight_through(api: Api) -> None:
    # Given two logs without a key: each acts
    for _ in range(2):
        assert api.call("POST", f"{BASE}/uploads", body={"commit": True})[0] == 201
    assert versions(api) == ["2.0.0", "1.0.0"]
    # And a GET with a key is not recorded
    assert api.call("GET", BASE, key="read-1")[0] == 200
    assert api.expiries() == []


# ---------------------------------------------------------------- on AWS: the table's policy and stream


def test_the_api_role_allows_exactly_the_table_calls_of_the_key_records(api: Api) -> None:
    if api.name != "aws":
        pytest.skip("the DynamoDB persistence only")
    from artreg.aws import clients
    from tests.support.template import load_template, publisher_filters

    # Given the DynamoDB calls that the key records make, counted on the client they use
    made: set[str] = set()
    events = clients.dynamodb_client().meta.events
    events.register("before-call.dynamodb", lambda model, **_: made.add(f"dynamodb:{model.name}"))
    keyed = api.idempotency.persistence
    # When a call is made, repeated, reused with another body, and one is refused (its record deleted)
    api.call("POST", f"{BASE}/uploads", key="k", body={"commit": True})
    api.call("POST", f"{BASE}/uploads", key="k", body={"commit": True})
    api.call("POST", f"{BASE}/uploads", key="k", body={"commit": True, "tags": ["x"]})
    api.call("POST", f"{BASE}/uploads", key="r", body={"commit": True, "aliases": ["production"]})
    # Then the key records used the four item calls, and every call made is one the API function's
    # table statement grants (TransactWriteItems has no action of its own: IAM checks its items)
    statements = load_template()["Resources"]["ApiFunction"]["Properties"]["Policies"][0]["Statement"]
    [table] = [s for s in statements if isinstance(s, dict) and s.get("Sid") == "RegistryTable"]
    key_records = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert keyed.table_name == TABLE
    assert key_records <= made
    assert made - {"dynamodb:TransactWriteItems"} <= set(table["Action"])
    # And the stream's filter lets no key record through to the publisher
    for pattern in publisher_filters():
        prefixes = [p["prefix"] for p in pattern["dynamodb"]["Keys"]["PK"]["S"]]
        assert not any(clients.IDEMPOTENCY_PK.startswith(p) for p in prefixes)


def test_a_restarted_local_server_frees_the_keys_of_requests_that_died_with_it(tmp_path: Path) -> None:
    from artreg.local.server import Local

    # Given a local server killed while it handled a log (its key still in progress)
    event = api_event("POST", f"{BASE}/uploads", headers={"Idempotency-Key": "log-1"}, body={"commit": True})
    before = Local(tmp_path / "data", "http://127.0.0.1:1")

    def killed(_: dict[str, Any], __: Any) -> dict[str, Any]:
        raise SystemExit("killed")

    with pytest.raises(SystemExit):
        before.idempotency.resolve(killed, event, LambdaContext())
    assert before.handle_api(event)["statusCode"] == 409
    # When the server is started again on its folder, and the client retries
    after = Local(tmp_path / "data", "http://127.0.0.1:1")
    answer = after.handle_api(event)
    # Then the retry acts at once
    assert answer["statusCode"] == 201


def test_when_the_key_records_cannot_be_written_the_call_is_503_and_acts_not(tmp_path: Path) -> None:
    from artreg.local.idempotency import SqlitePersistenceLayer
    from artreg.local.server import Local

    class Locked(SqlitePersistenceLayer):
        def _put_record(self, data_record: Any) -> None:
            raise sqlite3.OperationalError("database is locked")

    # Given a registry whose key records cannot be written just now
    local = Local(tmp_path / "data", "http://127.0.0.1:1")
    posts = IdempotentPosts(Locked(tmp_path / "keys.db"))
    event = api_event("POST", f"{BASE}/uploads", headers={"Idempotency-Key": "log-1"}, body={"commit": True})
    # When a keyed log is sent
    answer = posts.resolve(_resolve_on(local), event, LambdaContext())
    # Then it is 503 with Retry-After, for the client to retry, and nothing was made
    assert (answer["statusCode"], answer["headers"]["Retry-After"]) == (503, "1")
    assert json.loads(answer["body"])["error"]["code"] == "unavailable"
    assert local.handle_api(api_event("GET", BASE))["statusCode"] == 404
