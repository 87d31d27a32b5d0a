"""The SDK's HTTP layer without a network: error bodies to error classes, the retry policy, SigV4
signing, and blob transfers (never signed), over a fake urllib3 pool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import urllib3.exceptions as u3
from botocore.credentials import Credentials

from artreg.client import (
    ArtregError,
    ClientSettings,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    Registry,
    Retryable,
    RetryPolicy,
    StreamBroken,
    Throttled,
    TooLarge,
    Unreachable,
)
from artreg.client.errors import error_from_answer
from artreg.client.http import Transport
from artreg.client.sigv4 import SigV4Signer, region_of, wants_sigv4
from tests.support.urllib3_answer import Urllib3Answer

API = "http://127.0.0.1:8080"
DEPLOYED = "https://abc123.execute-api.eu-west-1.amazonaws.com"


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


class FakePool:
    """Answers requests from a script: a response, or an exception to raise."""

    def __init__(self, *answers: Urllib3Answer | BaseException) -> None:
        self.answers = list(answers)
        self.sent: list[Sent] = []

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **_: Any) -> Urllib3Answer:
        data = body if body is None or isinstance(body, bytes) else b"".join(body)
        self.sent.append(Sent(method, url, dict(headers or {}), data))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _error(status: int, code: str, message: str = "no", **details: Any) -> Urllib3Answer:
    body = {"error": {"code": code, "message": message, "details": details}}
    return Urllib3Answer(status, json.dumps(body).encode())


def _ok(data: Any = None, status: int = 200) -> Urllib3Answer:
    return Urllib3Answer(status, json.dumps(data if data is not None else {}).encode())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def policy(self, **kw: Any) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, clock=lambda: self.now, **kw)


# ---------------------------------------------------------------- error bodies


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_request", Invalid),
        (403, "forbidden", Forbidden),
        (404, "not_found", NotFound),
        (409, "version_exists", Conflict),
        (409, "blobs_missing", Conflict),
        (412, "precondition_failed", PreconditionFailed),
        (413, "too_large", TooLarge),
        (429, "throttled", Throttled),
        (503, "unavailable", Retryable),
        (500, "internal", ArtregError),
    ],
)
def test_an_error_body_becomes_its_class_with_code_message_and_details(status: int, code: str, cls: type) -> None:
    # Given an answer with API.md's error body
    body = json.dumps({"error": {"code": code, "message": "what went wrong", "details": {"field": "x"}}}).encode()

    # When it is turned into an exception
    error = error_from_answer(status, body)

    # Then it is the status's class, carrying the body's code, message and details
    assert type(error) is cls
    assert (error.code, error.message, error.details) == (code, "what went wrong", {"field": "x"})


def test_a_body_that_is_not_ours_keeps_the_status_class() -> None:
    # Given API Gateway's and S3's own error answers
    gateway = error_from_answer(403, b'{"message":"Missing Authentication Token"}')
    s3 = error_from_answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
    empty = error_from_answer(502, b"")

    # Then they still map by status, with a readable message
    assert isinstance(gateway, Forbidden)
    assert gateway.message == "Missing Authentication Token"
    assert isinstance(s3, NotFound)
    assert "NoSuchKey" in s3.message
    assert isinstance(empty, Retryable)
    assert empty.message == "HTTP 502"


def test_the_api_raises_the_mapped_error_without_retrying_it() -> None:
    # Given a registry that answers 404
    pool = FakePool(_error(404, "not_found", "no artifact resnet"))
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy())

    # When it is asked / Then NotFound is raised at once
    with pytest.raises(NotFound) as raised:
        transport.json("GET", "/v1/projects/p/artifacts/resnet")
    assert raised.value.message == "no artifact resnet"
    assert len(pool.sent) == 1
    assert clock.sleeps == []


# ---------------------------------------------------------------- retries


def test_two_503s_then_success_are_retried_with_backoff() -> None:
    # Given a registry that is unavailable twice, then answers
    pool = FakePool(_error(503, "unavailable"), _error(503, "unavailable"), _ok({"version": "1.0.0"}, 201))
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy(base_delay=0.5))

    # When a commit is sent
    answer = transport.json("POST", "/v1/projects/p/artifacts/a/uploads/u/commit")

    # Then it was sent three times, with jittered exponential delays in between
    assert answer == {"version": "1.0.0"}
    assert [s.method for s in pool.sent] == ["POST"] * 3
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 0.5
    assert 0 <= clock.sleeps[1] <= 1.0


def test_each_post_carries_one_idempotency_key_the_same_on_every_retry() -> None:
    # Given a registry whose answer to the first try is lost, then busy with it, then answers
    lost = u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    busy = _error(409, "idempotency_in_progress")
    pool = FakePool(lost, busy, _ok({"version": "1.0.0"}, 201), _ok({"version": "2.0.0"}, 201), _ok({"items": []}))
    transport = Transport(API, pool=pool, retry=Clock().policy())

    # When two POSTs (two logical calls) and a GET are made
    first = transport.json("POST", "/v1/projects/p/artifacts/a/uploads", body={"commit": True})
    second = transport.json("POST", "/v1/projects/p/artifacts/a/uploads", body={"commit": True})
    transport.json("GET", "/v1/projects/p/artifacts")

    # Then every try of the first call sent one key (in progress was retried too), the second call another
    keys = [s.headers.get("Idempotency-Key") for s in pool.sent]
    assert (first, second) == ({"version": "1.0.0"}, {"version": "2.0.0"})
    assert keys[0]
    assert keys[0] == keys[1] == keys[2]
    assert keys[3]
    assert keys[3] != keys[0]
    # And a GET carries none
    assert keys[4] is None


def test_a_post_sends_the_key_it_is_given() -> None:
    pool = FakePool(_ok({}, 201))
    Transport(API, pool=pool).api("POST", "/v1/x", body=b"{}", idempotency_key="run-42/log/1")
    assert pool.sent[0].headers["Idempotency-Key"] == "run-42/log/1"


@pytest.mark.parametrize(
    "failure",
    [
        u3.NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
        u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
        u3.ReadTimeoutError(None, "/", "Read timed out."),  # type: ignore[arg-type]
        ConnectionRefusedError(111, "refused"),
    ],
)
def test_a_connection_error_is_retried(failure: BaseException) -> None:
    # Given a connection that fails once
    pool = FakePool(failure, _ok({"items": []}))
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy())

    # When a call is made
    answer = transport.json("GET", "/v1/projects/p/artifacts")

    # Then the second try answered
    assert answer == {"items": []}
    assert len(pool.sent) == 2


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    # Given a registry that never comes back
    pool = FakePool(*[u3.NewConnectionError(None, "refused") for _ in range(10)])  # type: ignore[arg-type]
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy(attempts=4, refused_deadline=60.0))

    # When a call is made / Then it gives up after four tries with Unreachable (a Retryable)
    with pytest.raises(Unreachable, match=r"could not reach 127\.0\.0\.1:8080"):
        transport.json("GET", "/v1/projects/p/artifacts")
    assert len(pool.sent) == 4


def test_a_refused_connection_gives_up_within_the_refused_deadline() -> None:
    # Given nothing listening at the registry's address (and many attempts allowed)
    pool = FakePool(*[u3.NewConnectionError(None, "refused") for _ in range(100)])  # type: ignore[arg-type]
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy(attempts=50, refused_deadline=1.5))

    # When a call is made / Then Unreachable comes once 1.5 s of retries are spent, not after 50 tries
    with pytest.raises(Unreachable):
        transport.json("GET", "/v1/projects/p/artifacts")
    assert sum(clock.sleeps) <= 1.5
    assert len(pool.sent) < 50


def test_a_host_that_answered_before_is_waited_for_when_it_refuses() -> None:
    # Given a registry that answered once, then restarts (refuses connections for a while)
    refusals = [u3.NewConnectionError(None, "refused") for _ in range(8)]  # type: ignore[arg-type]
    pool = FakePool(_ok({"items": []}), *refusals, _ok({"items": [1]}))
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy(attempts=20, base_delay=1.0, refused_deadline=0.5))
    transport.json("GET", "/v1/projects/p/artifacts")

    # When the next call meets the restart / Then it waits it out under the ordinary deadline
    assert transport.json("GET", "/v1/projects/p/artifacts") == {"items": [1]}
    assert len(pool.sent) == 10


def test_a_dropped_connection_is_retried_past_the_refused_deadline() -> None:
    # Given a connection reset (the server was there) many times, then an answer
    resets = [u3.ProtocolError("aborted", ConnectionResetError(104, "reset")) for _ in range(7)]
    pool = FakePool(*resets, _ok({"items": []}))
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy(attempts=10, base_delay=1.0, refused_deadline=0.1))

    # When a call is made / Then the ordinary attempts and deadline apply, and it answers
    assert transport.json("GET", "/v1/projects/p/artifacts") == {"items": []}


def test_the_deadline_stops_retries_early() -> None:
    # Given throttling that asks to wait 5 s each time, and a 12 s deadline
    pool = FakePool(*[Urllib3Answer(429, b"", {"Retry-After": "5"}) for _ in range(6)])
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy(deadline=12.0, max_delay=30.0))

    # When a call is made / Then Retry-After is honoured and no try starts past the deadline
    with pytest.raises(Throttled):
        transport.json("GET", "/v1/projects/p/artifacts")
    assert clock.sleeps == [5.0, 5.0]
    assert len(pool.sent) == 3


# ---------------------------------------------------------------- SigV4


def test_sigv4_is_chosen_by_host_and_the_region_read_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployed URL, a custom one and a local one
    monkeypatch.setenv("AWS_REGION", "ap-south-1")

    # Then only AWS hosts are signed, and the region comes from the host, else the environment
    assert wants_sigv4(DEPLOYED)
    assert not wants_sigv4(API)
    assert region_of(DEPLOYED) == "eu-west-1"
    assert region_of("https://registry.example.com") == "ap-south-1"


def test_api_calls_are_signed_with_the_credentials() -> None:
    # Given a transport that signs with fake credentials
    signer = SigV4Signer("eu-west-1", Credentials("AKID", "SECRET", "TOKEN"))
    pool = FakePool(_ok({"items": []}), _ok({}, 201))
    transport = Transport(DEPLOYED, signer=signer, pool=pool)

    # When a GET and a POST with a body are sent
    transport.json("GET", "/v1/projects/p/artifacts", query=[("type", "model")])
    transport.json("POST", "/v1/projects/p/artifacts/a/versions/1.0.0/usages", body={"run_id": "r"})

    # Then each carries a SigV4 signature for execute-api in the region, and the session token
    for sent in pool.sent:
        auth = sent.headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKID/")
        assert "/eu-west-1/execute-api/aws4_request" in auth
        assert "X-Amz-Date" in sent.headers
        assert sent.headers["X-Amz-Security-Token"] == "TOKEN"
    assert pool.sent[1].body == b'{"run_id":"r"}'


def test_a_registry_on_an_aws_host_signs_and_a_local_one_does_not() -> None:
    # Given two registries, a deployed one with fake credentials
    settings = ClientSettings(cache=False)
    deployed = Registry(DEPLOYED, "vision", settings=settings, credentials=Credentials("AKID", "SECRET"))
    local = Registry(API, "vision", settings=settings)

    # Then only the deployed one has a signer, for its region
    assert deployed.transport.signer is not None
    assert deployed.transport.signer.region == "eu-west-1"
    assert local.transport.signer is None


def test_blob_transfers_are_never_signed() -> None:
    # Given a signing transport
    signer = SigV4Signer("eu-west-1", Credentials("AKID", "SECRET"))
    pool = FakePool(Urllib3Answer(200, b"", {"ETag": '"abc"'}), Urllib3Answer(200, b"bytes"))
    transport = Transport(DEPLOYED, signer=signer, pool=pool)
    url = "https://bucket.s3.amazonaws.com/p/blobs/sha256/ab/abc?X-Amz-Signature=presigned"

    # When a blob is PUT and GOT through presigned URLs
    transport.put_blob(url, {"x-amz-checksum-sha256": "q83v"}, 5, lambda: iter([b"by", b"tes"]))
    got = b"".join(transport.get_blob(url))

    # Then neither request carries an Authorization header
    assert got == b"bytes"
    assert all("Authorization" not in s.headers for s in pool.sent)


# ---------------------------------------------------------------- blob transfers


def test_a_blob_put_sends_exactly_the_answer_headers_and_streams_the_body() -> None:
    # Given a presigned PUT target with its signed headers
    pool = FakePool(Urllib3Answer(200, b"", {"etag": '"e1"'}))
    transport = Transport(API, pool=pool)
    headers = {"x-amz-checksum-sha256": "q83v", "content-length": "6"}

    # When a blob is put
    etag = transport.put_blob("https://s3.example/k", headers, 6, lambda: iter([b"abc", b"def"]))

    # Then the headers are the answer's (no Content-Length added twice), the body streamed, the ETag read
    assert etag == '"e1"'
    assert pool.sent[0].headers == headers
    assert pool.sent[0].body == b"abcdef"


def test_a_blob_put_is_retried_with_a_fresh_body() -> None:
    # Given a blob store that fails with 500 once
    pool = FakePool(
        Urllib3Answer(500, b"<Error><Code>InternalError</Code></Error>"), Urllib3Answer(200, b"", {"ETag": "e"})
    )
    clock = Clock()
    transport = Transport(API, pool=pool, retry=clock.policy())
    bodies: list[int] = []

    def body() -> Iterator[bytes]:
        bodies.append(1)
        return iter([b"part"])

    # When a part is put
    transport.put_blob("https://s3.example/k?partNumber=1", {}, 4, body)

    # Then the body was made again for the second try, with its Content-Length
    assert len(bodies) == 2
    assert [s.body for s in pool.sent] == [b"part", b"part"]
    assert pool.sent[1].headers == {"Content-Length": "4"}


def test_a_download_that_breaks_off_raises_stream_broken() -> None:
    # Given a blob answer whose body drops midway
    class Dropping(Urllib3Answer):
        def stream(self, n: int) -> Iterator[bytes]:
            yield b"half"
            raise u3.ProtocolError("Connection broken: IncompleteRead")

    response = Dropping(200)
    transport = Transport(API, pool=FakePool(response))

    # When it is read / Then the caller learns to start over, and the connection is given back
    with pytest.raises(StreamBroken):
        b"".join(transport.get_blob("https://s3.example/k"))
    assert response.released
