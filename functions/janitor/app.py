"""The janitor Lambda, on an EventBridge schedule: expires pending uploads past their expiry and aborts
their multipart uploads (artreg.registry.janitor). A run handles a bounded number; the rest waits."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.aws.clients import aws_janitor
from artreg.settings import settings

logger = Logger(service="artreg")
metrics = Metrics(namespace="artreg", service="artreg")
tracer = Tracer(service="artreg", patch_modules=["botocore"])
janitor = aws_janitor(settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    swept = janitor.expire_uploads(limit=settings().janitor_batch)
    metrics.add_metric(name="UploadsExpired", unit=MetricUnit.Count, value=swept.expired)
    metrics.add_metric(name="MultipartUploadsAborted", unit=MetricUnit.Count, value=swept.aborted)
    logger.info("swept", extra={"expired": swept.expired, "aborted": swept.aborted})
    return {"expired": swept.expired, "aborted": swept.aborted}
