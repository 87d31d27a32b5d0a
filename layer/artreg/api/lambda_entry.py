"""The API function's process-wide objects, made once at cold start: settings, clients, registry,
resolver and Powertools' logger, tracer and metrics."""

from __future__ import annotations

import os
from functools import partial

from aws_lambda_powertools import Tracer

from artreg.api.app import build_app, logger, metrics
from artreg.api.idempotency import IdempotentPosts
from artreg.aws.clients import aws_registry, dynamodb_client, idempotency_store, when_botocore_loads
from artreg.settings import settings

# Only boto calls make subsegments: patching requests, httplib and the rest costs cold start for nothing.
# botocore is loaded by the first AWS call, not by the import (artreg.aws.clients): the patch waits for it.
tracer = Tracer(service="artreg", auto_patch=False)
when_botocore_loads(lambda: tracer.patch(["botocore"]))
registry = aws_registry(settings(), on_retry=lambda: metrics.add_metric(name="CommitRetries", unit="Count", value=1))
app = build_app(registry)
idempotency = IdempotentPosts(partial(idempotency_store, settings()))  # made at the first keyed POST

# An on-demand cold start waits for the import and its first request alike: there the DynamoDB client (and
# botocore) waits for the first request, which needs it. Where Lambda initializes ahead of any request
# (provisioned concurrency, SnapStart), no request waits for the import: the client is made with it.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand") != "on-demand":
    dynamodb_client()

__all__ = ["app", "idempotency", "logger", "metrics", "tracer"]
