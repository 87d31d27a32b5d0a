"""The API Lambda: API Gateway (HTTP API, payload 2.0) proxy events to the registry's resolver."""

from __future__ import annotations

import gc
import os
from typing import Any

# The import makes some 90,000 objects that live as long as the process (modules, classes, botocore's and
# Powertools' tables) and almost no garbage (about 700): the collector's passes over them during the import
# find nothing and cost a cold start about 50 ms of CPU (benchmarks/cold_start.py). On Lambda, the collector
# is off for the import, and what it made is frozen out of every later pass (gc.freeze).
ON_LAMBDA = bool(os.environ.get("LAMBDA_TASK_ROOT"))
if ON_LAMBDA:
    gc.disable()

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from artreg.api.lambda_entry import app, idempotency, logger, metrics, tracer  # noqa: E402

if ON_LAMBDA:
    gc.freeze()
    gc.enable()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return idempotency.resolve(app.resolve, event, context)  # a POST with an Idempotency-Key acts once
