"""Events and lineage on AWS, on moto: the table's stream (records made from the items the DynamoStore
wrote) through the publisher Lambda onto the bus, a rule to SQS, the lineage Lambda from the queue the
template describes, and the lineage routes through the API Lambda."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import jsonschema
import pytest
from moto.events.models import EventPattern

from artreg.aws.dynamodb_stream import event_of_stream_record
from artreg.aws.eventbridge import PublishFailed
from artreg.events import DETAIL_TYPES
from artreg.model.wire import MoveAlias, RemoteEntry, Usage, VersionRecord
from artreg.registry.records import RemoteChange
from tests.conftest import BUCKET, TABLE, Backend, api_event, aws_backend, local_backend
from tests.support.fake_events import FakeEvents
from tests.support.lambda_context import LambdaContext
from tests.support.moto_resources import REGION
from tests.support.streams import TableStream, lambda_event
from tests.support.template import create_lineage_queue, publisher_filters, queue_arn

P = "vision"
BUS = "artreg-test"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class Lambdas:
    publisher: ModuleType
    lineage: ModuleType
    api: ModuleType
    sqs: Any
    capture_url: str  # a queue that a catch-all rule on the bus fills
    lineage_url: str  # the lineage queue, its rule and DLQ as the template states them

    def publish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = self.publisher.lambda_handler(lambda_event(records), LambdaContext())
        return answer

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        result = self.api.lambda_handler(api_event(method, path, **kwargs), LambdaContext())
        return result["statusCode"], json.loads(result["body"]) if result.get("body") else None

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message of a queue, deleted as read."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages += batch

    def sqs_event(self, url: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The SQS event Lambda hands the lineage function for these messages."""
        arn = queue_arn(self.sqs, url)
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795341600000"},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }


@pytest.fixture
def lambdas(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Lambdas]:
    """The three handlers, imported fresh after the environment and moto are in place."""
    for key, value in {
        "ARTREG_TABLE_NAME": TABLE,
        "ARTREG_BUCKET_NAME": BUCKET,
        "ARTREG_EVENT_BUS_NAME": BUS,
        "ARTREG_EVENT_SOURCE": "artreg",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "artreg",
    }.items():
        monkeypatch.setenv(key, value)
    modules = ("functions.publisher.app", "functions.lineage.app", "functions.api.app", "artreg.api.lambda_entry")
    for module in modules:
        sys.modules.pop(module, None)
    from artreg.settings import settings

    # the settings are read again; the boto3 clients (artreg.aws.clients) stay made once per process,
    # as in a Lambda: moto answers them in each test's mock, with that test's state
    settings.cache_clear()
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    capture_url = sqs.create_queue(QueueName="capture")["QueueUrl"]
    events.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": ["artreg"]}))
    events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn(sqs, capture_url)}])
    lineage_url = create_lineage_queue(events, sqs, BUS, source="artreg")
    yield Lambdas(
        importlib.import_module("functions.publisher.app"),
        importlib.import_module("functions.lineage.app"),
        importlib.import_module("functions.api.app"),
        sqs,
        capture_url,
        lineage_url,
    )
    for module in modules:
        sys.modules.pop(module, None)


PINNED = RemoteEntry(path="raw/train.csv", uri="s3://datasets/train.csv", size=10, etag="e1", verified=True)
REMOTE_CHANGE = RemoteChange(
    project=P,
    name="iris",
    version="1.0.0",
    path="raw/train.csv",
    uri="s3://datasets/train.csv",
    state="changed",
    pinned=PINNED,
    observed=PINNED.model_copy(update={"size": 12, "etag": "e2"}),
    checked_at=T0,
)


class FixedClock:
    def now(self) -> datetime:
        return T0


def log(backend: Backend, name: str, data: bytes, **request: Any) -> VersionRecord:
    return backend.log(P, name, {"data.bin": data}, **request).record


def chain(backend: Backend, step: Callable[[], None] = lambda: None) -> None:
    """A dataset, a model trained on it, moved to production and evaluated, the evaluation's metrics
    (an alias set on them and removed), and a dataset version deleted: every kind of event, and every
    kind of item written. `step` runs after each write."""
    registry = backend.registry
    log(backend, "iris", b"iris v1", type="dataset")
    step()
    log(backend, "iris", b"iris v2", type="dataset")
    step()
    train = {"run_id": "train-1", "pipeline": "train", "step": "fit", "inputs": ["iris@1.0.0"]}
    log(backend, "resnet", b"weights", type="model", producer=train)
    step()
    registry.move_alias(P, "resnet", "production", MoveAlias(version="1.0.0"), caller="deployer")
    step()
    registry.record_usage(P, "resnet", "production", Usage(run_id="eval-1", pipeline="eval"))
    step()
    log(backend, "scores", b"0.97", type="metrics", producer={"run_id": "eval-1", "inputs": ["resnet@production"]})
    step()
    registry.move_alias(P, "scores", "candidate", MoveAlias(version="1.0.0"), caller="tester")
    step()
    registry.remove_alias(P, "scores", "candidate", caller="tester")
    step()
    # the model links the dataset (by alias: pinned), is re-pointed, and one link removed
    registry.link(P, "resnet", "production", "training_data", "iris@latest", caller="trainer")
    step()
    registry.link(P, "resnet", "1.0.0", "training_data", "iris@1.0.0", caller="trainer")
    step()
    registry.link(P, "resnet", "1.0.0", "eval_scores", "scores@1.0.0", caller="trainer")
    step()
    registry.unlink(P, "resnet", "1.0.0", "eval_scores", caller="trainer")
    step()
    registry.delete_version(P, "iris", "2.0.0", caller="tester")
    step()
    # the janitor's re-check found a remote reference changed, and a later run saw the same: one event
    for _ in range(2):
        registry.store.note_remote_change(REMOTE_CHANGE)
        step()


@pytest.fixture
def records(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream records of `chain` on the DynamoDB back end."""
    backend = aws_backend(aws)
    stream = TableStream(aws["dynamodb"], TABLE)
    with stream.capture() as captured:
        chain(backend, stream.step)
    return captured


def schema_validator(kind: str) -> jsonschema.Draft202012Validator:
    document = json.loads((resources.files("artreg.events") / "schemas" / f"{kind}.json").read_text())
    return jsonschema.Draft202012Validator(document, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


# ---------------------------------------------------------------- the publisher


def test_events_reach_a_rule_on_the_bus_and_follow_their_schemas(lambdas: Lambdas, records: list[Any]) -> None:
    # When the publisher gets the stream records of the chain
    answer = lambdas.publish(records)
    # Then no record failed, and a rule on the bus delivered one event per change, each as its schema says
    assert answer == {"batchItemFailures": []}
    delivered = [json.loads(m["Body"]) for m in lambdas.drain(lambdas.capture_url)]
    for event in delivered:
        schema_validator(event["detail-type"]).validate(event)
        assert event["source"] == "artreg"
    assert Counter(e["detail-type"] for e in delivered) == {
        "ArtifactVersionCommitted": 4,  # iris 1.0.0 and 2.0.0, resnet 1.0.0, scores 1.0.0
        "AliasMoved": 8,  # latest of each commit, production, candidate set and removed, latest of iris back
        "ArtifactVersionUsed": 1,
        "ArtifactVersionDeleted": 1,
        "RemoteReferenceChanged": 1,  # noted twice, the same observation
        "ArtifactVersionLinked": 3,  # made, re-pointed, made
        "ArtifactVersionUnlinked": 1,
    }
    # And the commit of the model says which version of the dataset its run used
    (model,) = [e["detail"] for e in delivered if e["detail"].get("name") == "resnet" and "producer" in e["detail"]]
    assert model["producer"]["inputs"] == ["iris@1.0.0"]
    (moved,) = [e["detail"] for e in delivered if e["detail"].get("alias") == "production"]
    assert (moved["version"], moved["previous_version"], moved["by"]) == ("1.0.0", None, "deployer")
    assert moved["digest"] == model["digest"]
    # And the links say what the model holds: the dataset pinned by alias, then re-pointed
    linked = [e["detail"] for e in delivered if e["detail-type"] == "ArtifactVersionLinked"]
    assert [(d["role"], d["target"]["version"], (d["previous_target"] or {}).get("version")) for d in linked] == [
        ("training_data", "2.0.0", None),
        ("training_data", "1.0.0", "2.0.0"),
        ("eval_scores", "1.0.0", None),
    ]
    (unlinked,) = [e["detail"] for e in delivered if e["detail-type"] == "ArtifactVersionUnlinked"]
    assert (unlinked["role"], unlinked["target"]["name"], unlinked["by"]) == ("eval_scores", "scores", "trainer")


def test_the_same_stream_batch_twice_publishes_the_same_event_ids(lambdas: Lambdas, records: list[Any]) -> None:
    # When the same batch is delivered twice (Lambda retries a stream batch from where it failed)
    lambdas.publish(records)
    first = [json.loads(m["Body"])["detail"]["event_id"] for m in lambdas.drain(lambdas.capture_url)]
    lambdas.publish(records)
    second = [json.loads(m["Body"])["detail"]["event_id"] for m in lambdas.drain(lambdas.capture_url)]
    # Then the second delivery carries exactly the same event ids
    assert sorted(first) == sorted(second)
    assert len(set(first)) == len(first) == 19


def test_the_stream_filters_let_through_exactly_the_records_that_are_events(records: list[Any]) -> None:
    # Given the template's filter criteria, and the records of every kind of item the chain wrote
    filters = [EventPattern.load(json.dumps(f)) for f in publisher_filters()]
    kinds = {(r["eventName"], r["dynamodb"]["Keys"]["SK"]["S"][:2]) for r in records}
    assert {("INSERT", "L#"), ("MODIFY", "L#"), ("REMOVE", "L#"), ("MODIFY", "V#"), ("INSERT", "U")} <= kinds
    assert {("INSERT", "K#"), ("MODIFY", "K#"), ("REMOVE", "K#"), ("INSERT", "B#"), ("INSERT", "J#")} <= kinds
    for record in records:
        # Then a record reaches the function if and only if the publisher makes an event of it
        passes = any(f.matches_event(record) for f in filters)
        assert passes == (event_of_stream_record(record) is not None), record["dynamodb"]["Keys"]


def test_a_bus_that_keeps_refusing_fails_the_batch_and_a_blip_does_not(
    lambdas: Lambdas, records: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bus that throttles two entries of the first call, then takes them
    published = [e.event_id for e in map(event_of_stream_record, records) if e is not None]
    victims = [published[2], published[7]]
    flaky = FakeEvents(fail=lambda call, event_id: call == 0 and event_id in victims)
    monkeypatch.setattr(lambdas.publisher.publisher, "client", flaky)
    monkeypatch.setattr(lambdas.publisher.publisher, "_sleep", lambda _: None)
    # When the publisher gets the batch (19 events)
    # Then those two entries went again, alone, and the batch succeeded
    assert lambdas.publish(records) == {"batchItemFailures": []}
    assert [len(c) for c in flaky.calls] == [10, 2, 9]
    assert flaky.ids(1) == victims
    # Given a bus that never takes them
    monkeypatch.setattr(lambdas.publisher.publisher, "client", FakeEvents(fail=lambda call, event_id: True))
    # Then the invocation fails: Lambda retries and bisects the batch, then sends it to the on-failure queue
    with pytest.raises(PublishFailed):
        lambdas.publish(records)


def test_a_record_that_cannot_be_read_is_a_partial_failure_and_the_rest_is_published(
    lambdas: Lambdas, records: list[Any]
) -> None:
    # Given a batch where one version record is damaged
    broken = json.loads(json.dumps(records))
    victim = next(r for r in broken if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["SK"]["S"].startswith("V#"))
    victim["dynamodb"]["NewImage"]["rec"] = {"S": "{not json"}
    # When the publisher gets it
    answer = lambdas.publish(broken)
    # Then that record is reported (the stream retries from it) and the others' events are on the bus
    assert answer == {"batchItemFailures": [{"itemIdentifier": victim["dynamodb"]["SequenceNumber"]}]}
    assert len(lambdas.drain(lambdas.capture_url)) == 18


# ---------------------------------------------------------------- lineage


def test_the_lineage_function_records_each_edge_once(lambdas: Lambdas, records: list[Any], aws: dict[str, Any]) -> None:
    # Given the chain's events delivered to the lineage queue by the template's rule
    lambdas.publish(records)
    messages = lambdas.drain(lambdas.lineage_url)
    assert Counter(json.loads(m["Body"])["detail-type"] for m in messages) == {
        "ArtifactVersionCommitted": 4,
        "ArtifactVersionUsed": 1,
    }
    event = lambdas.sqs_event(lambdas.lineage_url, messages)
    # When the lineage function gets them, and then gets them all again
    first = lambdas.lineage.lambda_handler(event, LambdaContext())
    second = lambdas.lineage.lambda_handler(event, LambdaContext())
    # Then nothing failed, and each edge is recorded once, in each direction
    assert first == second == {"batchItemFailures": []}
    items = aws["dynamodb"].scan(TableName=TABLE)["Items"]
    lineage = sorted((i["PK"]["S"], i["SK"]["S"][:2]) for i in items if i["PK"]["S"][:2] in ("R#", "G#"))
    assert Counter(pk.split("#")[0] for pk, _ in lineage) == {"R": 4, "G": 4}
    assert len(lineage) == len(set(lineage))


def test_a_message_the_lineage_function_cannot_read_is_retried_alone(lambdas: Lambdas, records: list[Any]) -> None:
    lambdas.publish(records)
    messages = lambdas.drain(lambdas.lineage_url)
    event = lambdas.sqs_event(lambdas.lineage_url, messages)
    event["Records"][1]["body"] = json.dumps({"detail-type": "ArtifactVersionUsed", "detail": {"project": P}})
    answer = lambdas.lineage.lambda_handler(event, LambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_the_lineage_routes_answer_from_what_was_recorded(lambdas: Lambdas, records: list[Any]) -> None:
    # Given the chain's lineage recorded by the lineage function
    lambdas.publish(records)
    messages = lambdas.drain(lambdas.lineage_url)
    lambdas.lineage.lambda_handler(lambdas.sqs_event(lambdas.lineage_url, messages), LambdaContext())
    base = f"/v1/projects/{P}/artifacts"

    # When the model's lineage is asked for, both ways
    status, graph = lambdas.call("GET", f"{base}/resnet/versions/production/lineage")
    # Then it is the dataset, the run that trained on it, the model, the run that evaluated it, its metrics
    assert status == 200
    assert graph["root"] == "resnet@1.0.0"
    assert {n["id"] for n in graph["nodes"]} == {
        "iris@1.0.0",
        "run:train-1",
        "resnet@1.0.0",
        "run:eval-1",
        "scores@1.0.0",
    }
    assert {(e["from"], e["kind"], e["to"]) for e in graph["edges"]} == {
        ("run:train-1", "used", "iris@1.0.0"),
        ("run:train-1", "produced", "resnet@1.0.0"),
        ("run:eval-1", "used", "resnet@1.0.0"),
        ("run:eval-1", "produced", "scores@1.0.0"),
        ("resnet@1.0.0", "linked", "iris@1.0.0"),  # the model's training_data link
    }
    train = next(n for n in graph["nodes"] if n["id"] == "run:train-1")
    assert (train["kind"], train["run_id"], train["pipeline"], train["step"]) == ("run", "train-1", "train", "fit")
    # And upstream only stops at the model's run and what it used
    status, up = lambdas.call("GET", f"{base}/resnet/versions/1.0.0/lineage", query={"direction": "upstream"})
    assert {n["id"] for n in up["nodes"]} == {"iris@1.0.0", "run:train-1", "resnet@1.0.0"}
    # And a run says what it produced and used
    status, run = lambdas.call("GET", f"/v1/projects/{P}/runs/eval-1")
    assert (status, run) == (
        200,
        {"run_id": "eval-1", "produced": ["scores@1.0.0"], "used": ["resnet@1.0.0"], "next_cursor": None},
    )
    # And what is not there, or not allowed, is said so
    assert lambdas.call("GET", f"/v1/projects/{P}/runs/nobody")[0] == 404
    bad_depth = lambdas.call("GET", f"{base}/resnet/versions/1.0.0/lineage", query={"depth": "11"})
    assert (bad_depth[0], bad_depth[1]["error"]["code"]) == (400, "invalid_request")
    assert lambdas.call("GET", f"{base}/resnet/versions/1.0.0/lineage", query={"direction": "sideways"})[0] == 400
    assert lambdas.call("GET", f"{base}/resnet/versions/9.0.0/lineage")[0] == 404


# ---------------------------------------------------------------- the same events from both back ends


def test_both_back_ends_emit_the_same_events(aws: dict[str, Any], tmp_path: Path) -> None:
    # Given the same chain of changes, at the same time, on DynamoDB and on SQLite
    dynamo, sqlite = aws_backend(aws), local_backend(tmp_path)
    for backend in (dynamo, sqlite):
        backend.registry.clock = FixedClock()
    table = TableStream(aws["dynamodb"], TABLE)
    with table.capture() as stream:
        chain(dynamo, table.step)
    chain(sqlite)
    # When the stream's records are turned into events, and the SQLite outbox is read
    from_stream = [e for e in (event_of_stream_record(r) for r in stream) if e is not None]
    from_outbox = [e for _, e in sqlite.registry.store.outbox_pending("test", 1000)]  # type: ignore[attr-defined]

    # Then they are the same events, with the same ids and details
    def key(event: Any) -> str:
        return event.detail_type + event.detail_json()

    assert sorted(map(key, from_stream)) == sorted(map(key, from_outbox))
    assert {e.detail_type for e in from_outbox} == set(DETAIL_TYPES)
