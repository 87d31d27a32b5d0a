"""The API Lambda: API Gateway (HTTP API, payload 2.0) proxy events to the registry's resolver."""

from __future__ import annotations

from typing import Any

from artreg.aws.startup import long_lived

with long_lived():  # on Lambda, the import's objects are kept out of the collector's passes
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from artreg.api.lambda_entry import app, idempotency, logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return idempotency.resolve(app.resolve, event, context)  # a POST with an Idempotency-Key acts once
