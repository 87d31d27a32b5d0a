"""The API function's process-wide objects, made once at cold start: settings, clients, registry,
resolver and Powertools' logger, tracer and metrics."""

from __future__ import annotations

from functools import partial

from aws_lambda_powertools import Tracer

from artreg.api.app import build_app, logger, metrics
from artreg.api.idempotency import IdempotentPosts
from artreg.aws.clients import aws_registry, idempotency_store, when_botocore_loads
from artreg.settings import settings

# Only boto calls make subsegments: patching requests, httplib and the rest costs cold start for nothing.
# botocore is loaded by the first AWS call, not by the import (artreg.aws.clients): the patch waits for it.
tracer = Tracer(service="artreg", auto_patch=False)
when_botocore_loads(lambda: tracer.patch(["botocore"]))
registry = aws_registry(settings(), on_retry=lambda: metrics.add_metric(name="CommitRetries", unit="Count", value=1))
app = build_app(registry)
idempotency = IdempotentPosts(partial(idempotency_store, settings()))  # made at the first keyed POST

__all__ = ["app", "idempotency", "logger", "metrics", "tracer"]
