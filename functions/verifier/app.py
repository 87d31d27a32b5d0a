"""The verifier Lambda, invoked asynchronously by the API for a multipart blob too large to re-hash
within an API call (artreg.aws.verifier): re-hashes that object version, then tags it as verified or
deletes it (`S3BlobStore.settle`). A run that fails is retried by Lambda, then sent to the failure
queue; the blob's verifying mark then goes stale and the blob counts as missing (it is sent again)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.aws.clients import blob_verifier
from artreg.aws.verifier import VerifyBlob
from artreg.observability import registry_metrics
from artreg.settings import settings

logger = Logger(service="artreg")
metrics = registry_metrics()
tracer = Tracer(service="artreg", patch_modules=["botocore"])
store = blob_verifier(settings())
METRICS = {"verified": "BlobsVerified", "deleted": "BlobsRefused", "gone": "BlobsGone"}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    blob = VerifyBlob.model_validate(event)
    outcome = store.settle(blob.project, blob.sha256, blob.version_id)
    metrics.add_metric(name=METRICS[outcome], unit=MetricUnit.Count, value=1)
    logger.info("blob settled", extra={**blob.model_dump(), "outcome": outcome})
    return {"outcome": outcome}
