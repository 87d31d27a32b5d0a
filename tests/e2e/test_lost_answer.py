"""A lost answer makes no second version (issue 11): through a proxy that drops the answer to the first
`POST .../uploads` with `"commit": true` (the server acted; the client's connection drops), the SDK's
`log_artifact` retries and makes exactly one version, on the local server and on the Lambda's handler."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artreg import Artifact, Registry
from tests.conftest import BUCKET, TABLE, aws_backend
from tests.support.lambda_context import LambdaContext
from tests.support.lambda_front import LambdaFront
from tests.support.proxy import DroppingProxy
from tests.support.server import RunningServer

P, N = "vision", "resnet"


def proxy_to(url: str) -> DroppingProxy:
    """A proxy in front of `url` that loses the answer of the first `POST .../uploads` with `"commit": true`."""
    upstream = url.removeprefix("http://").rsplit(":", 1)
    return DroppingProxy((upstream[0], int(upstream[1])))


def log_through_a_lost_answer(proxy: DroppingProxy, model: Path, tmp_path: Path) -> tuple[str, list[str], int]:
    """The second log of `model` (whose bytes the registry holds, so it commits in its first call),
    through `proxy`, which loses that call's answer: (the version logged, every version, answers lost)."""
    try:
        reg = Registry(proxy.url, project=P, progress=False, cache=False, cache_dir=tmp_path / "cache")
        logged = reg.log_artifact(Artifact(N).add(model, "model.bin"))
        every = [v.version for v in reg.versions(N)]
    finally:
        proxy.close()
    return logged.version, every, proxy.dropped


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(4096))
    return path


def test_on_the_local_server_a_retried_log_makes_one_version(
    server: RunningServer, model: Path, tmp_path: Path
) -> None:
    # Given 1.0.0 of the model, logged straight to the server
    Registry(server.url, project=P, progress=False, cache=False).log_artifact(Artifact(N).add(model, "model.bin"))
    # and a proxy in front of it that clients reach it by: API.md's Host rule wants that host named
    # with --public-url
    proxy = proxy_to(server.url)
    server.stop()
    server.args = ["--public-url", proxy.url]
    server.start()
    # When it is logged again through that proxy, which loses the answer of the committing call
    version, every, dropped = log_through_a_lost_answer(proxy, model, tmp_path)
    # Then the answer was lost once, the SDK's retry got the version made, and there is no other
    assert dropped == 1
    assert version == "2.0.0"
    assert every == ["2.0.0", "1.0.0"]


@pytest.fixture
def lambda_front(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaFront]:
    """The API Lambda's handler behind a small HTTP front, on moto; imported once moto is in place."""
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
    front = LambdaFront(importlib.import_module("functions.api.app").lambda_handler, LambdaContext())
    yield front
    front.close()


def test_on_the_lambda_a_retried_log_makes_one_version(
    aws: dict[str, Any], lambda_front: LambdaFront, model: Path, tmp_path: Path
) -> None:
    # Given 1.0.0 of the model (its blob PUT to moto's S3 in this process: the SDK's own sockets cannot reach it)
    aws_backend(aws).log(P, N, {"model.bin": model.read_bytes()})
    # When it is logged again with the SDK, through the Lambda's handler, losing the committing call's answer
    version, every, dropped = log_through_a_lost_answer(proxy_to(lambda_front.url), model, tmp_path)
    # Then the answer was lost once, the SDK's retry got the version made, and there is no other
    assert dropped == 1
    assert version == "2.0.0"
    assert every == ["2.0.0", "1.0.0"]
