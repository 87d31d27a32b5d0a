"""A model over the deployed registry's inline bound logs through the SDK (issue 11): the API completes
its multipart upload and hands it to the verifier function, the commit answers `409 blobs_verifying`
with `Retry-After` until the verifier has run, and the SDK waits and commits again. The API Lambda's
handler runs behind a small HTTP front on moto; the verifier's asynchronous invocation is stood in for
by tests/support/async_lambda.py; the SDK reaches moto's S3 through tests/support/moto_pool.py. The
bounds are tiny (multipart over 5 MiB, inline up to 6 MiB) so that no test moves gigabytes."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from artreg import Artifact, Registry
from artreg.client import ClientSettings, RetryPolicy
from artreg.client.errors import Conflict
from artreg.client.http import Transport
from tests.conftest import BUCKET, TABLE
from tests.support.async_lambda import AsyncLambda
from tests.support.lambda_context import LambdaContext
from tests.support.lambda_front import LambdaFront
from tests.support.moto_pool import MotoPool

P, N = "vision", "resnet"
MiB = 1024**2


@pytest.fixture
def verifier(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncLambda]:
    """The verifier function's handler, run for each asynchronous invocation the API makes (through the
    Lambda client the API's wiring makes: artreg.aws.clients.lambda_client)."""
    from artreg.aws import clients
    from artreg.settings import settings

    for name, value in {
        "ARTREG_TABLE_NAME": TABLE,
        "ARTREG_BUCKET_NAME": BUCKET,
        "ARTREG_EVENT_BUS_NAME": "artreg-test",
        "ARTREG_MULTIPART_THRESHOLD": str(5 * MiB),
        "ARTREG_PART_SIZE": str(5 * MiB),
        "ARTREG_INLINE_VERIFY_LIMIT": str(6 * MiB),
        "ARTREG_VERIFIER_FUNCTION_NAME": "artreg-verifier",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "artreg",
    }.items():
        monkeypatch.setenv(name, value)
    for module in ("functions.api.app", "artreg.api.lambda_entry", "functions.verifier.app"):
        sys.modules.pop(module, None)
    for cached in (clients.dynamodb_client, clients.s3_client, settings):
        cached.cache_clear()
    function = AsyncLambda(importlib.import_module("functions.verifier.app").lambda_handler)
    monkeypatch.setattr(clients, "lambda_client", lambda: function)
    yield function
    function.drain()
    settings.cache_clear()


@pytest.fixture
def front(verifier: AsyncLambda) -> Iterator[LambdaFront]:
    running = LambdaFront(importlib.import_module("functions.api.app").lambda_handler, LambdaContext())
    yield running
    running.close()


def _registry(url: str, tmp_path: Path, on_sleep: Any = None) -> Registry:
    def sleep(seconds: float) -> None:
        if on_sleep is not None:
            on_sleep(seconds)
        time.sleep(0.02)  # the waits asked for, shortened: the test needs their order, not their length

    transport = Transport(url, pool=MotoPool(), retry=RetryPolicy(sleep=sleep))
    settings = ClientSettings(url=url, project=P, progress=False, cache=False, cache_dir=tmp_path / "cache")
    return Registry(settings=settings, transport=transport)


def test_the_sdk_logs_a_model_over_the_inline_bound_waiting_for_its_verification(
    front: LambdaFront, verifier: AsyncLambda, tmp_path: Path
) -> None:
    # Given a model over the inline bound, and the verifier's runs held until the SDK is told to wait
    model = tmp_path / "model.bin"
    model.write_bytes(data := os.urandom(13 * MiB + 11))
    verifier.hold()
    waits: list[float] = []

    def waited(seconds: float) -> None:
        waits.append(seconds)
        verifier.release()

    # When the SDK logs it through the API Lambda's handler
    reg = _registry(front.url, tmp_path, waited)
    logged = reg.log_artifact(Artifact(N, type="model").add(model, "model.bin"))

    # Then it was told to wait (Retry-After of at least 5 s) and committed once the verifier had run
    assert waits
    assert min(waits) >= 5
    assert logged.version == "1.0.0"
    [(function, event)] = verifier.invoked
    assert (function, event["sha256"]) == ("artreg-verifier", hashlib.sha256(data).hexdigest())
    # And the version serves the model's bytes
    target = tmp_path / "download"
    reg.download(N, "1.0.0", target)
    assert (target / "model.bin").read_bytes() == data


def test_a_commit_while_the_verifier_runs_answers_blobs_verifying_with_retry_after(
    front: LambdaFront, verifier: AsyncLambda, tmp_path: Path
) -> None:
    # Given a model over the inline bound sent and completed by hand, the verifier's run held
    data = os.urandom(7 * MiB)
    sha = hashlib.sha256(data).hexdigest()
    verifier.hold()
    base = f"{front.url}/v1/projects/{P}/artifacts/{N}/uploads"
    started = requests.post(base, json={"files": [{"path": "m", "size": len(data), "sha256": sha}]}, timeout=30)
    [target] = started.json()["missing"]
    multipart = target["multipart"]
    etags = []
    for part in multipart["parts"]:
        start = (part["part_number"] - 1) * multipart["part_size"]
        sent = requests.put(part["url"], data=data[start : start + multipart["part_size"]], timeout=30)
        etags.append({"part_number": part["part_number"], "etag": sent.headers["ETag"]})
    upload = f"{base}/{started.json()['upload_id']}"
    completed = requests.post(f"{upload}/blobs/{sha}/complete", json={"parts": etags}, timeout=30)
    assert completed.json() == {"sha256": sha, "completed": True, "verified": False}

    # When it is committed
    answer = requests.post(f"{upload}/commit", timeout=30)
    # Then the answer is 409 blobs_verifying, with Retry-After and the blob named
    assert answer.status_code == 409
    assert 5 <= int(answer.headers["Retry-After"]) <= 60
    error = answer.json()["error"]
    assert error["code"] == "blobs_verifying"
    assert [b["sha256"] for b in error["details"]["verifying"]] == [sha]
    # And once the verifier ran, the same commit makes the version
    verifier.drain()
    assert requests.post(f"{upload}/commit", timeout=30).status_code == 201


def test_the_sdk_gives_up_waiting_after_its_verify_wait(
    front: LambdaFront, verifier: AsyncLambda, tmp_path: Path
) -> None:
    # Given a model over the inline bound whose verification does not end, and an SDK that waits 0 s
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(7 * MiB))
    verifier.hold()
    reg = _registry(front.url, tmp_path)
    reg.settings = reg.settings.updated(verify_wait=0.0)
    # When it logs the model / Then it says the registry is still verifying
    with pytest.raises(Conflict) as waiting:
        reg.log_artifact(Artifact(N).add(model, "model.bin"))
    assert waiting.value.code == "blobs_verifying"
