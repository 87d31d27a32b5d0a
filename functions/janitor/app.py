"""The janitor Lambda, on two EventBridge schedules (artreg.registry.janitor). Hourly: expires pending
uploads past their expiry and aborts their multipart uploads (a run handles a bounded number; the rest
waits), then condemns and reclaims blobs that nothing lists. Daily (the event's `task` is
`remote-refs`): reads every pinned remote reference again and notes those that changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.aws.clients import aws_janitor
from artreg.observability import registry_metrics
from artreg.settings import settings

logger = Logger(service="artreg")
metrics = registry_metrics()
tracer = Tracer(service="artreg", patch_modules=["botocore"])
janitor = aws_janitor(settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("task") == "remote-refs":
        return recheck_remote_refs()
    return sweep()


def recheck_remote_refs() -> dict[str, Any]:
    remote = janitor.recheck_remote_refs()
    metrics.add_metric(name="RemoteReferencesChecked", unit=MetricUnit.Count, value=remote.checked)
    metrics.add_metric(name="RemoteReferencesChanged", unit=MetricUnit.Count, value=remote.changed)
    outcome = {"checked": remote.checked, "changed": remote.changed, "noted": remote.noted}
    logger.info("remote references re-checked", extra=outcome)
    return outcome


def sweep() -> dict[str, Any]:
    config = settings()
    swept = janitor.expire_uploads(limit=config.janitor_batch)
    blobs = janitor.reclaim_blobs(timedelta(days=config.blob_grace_days), config.policy().upload_ttl)
    metrics.add_metric(name="UploadsExpired", unit=MetricUnit.Count, value=swept.expired)
    metrics.add_metric(name="MultipartUploadsAborted", unit=MetricUnit.Count, value=swept.aborted)
    metrics.add_metric(name="BlobsCondemned", unit=MetricUnit.Count, value=blobs.condemned)
    metrics.add_metric(name="BlobsReclaimed", unit=MetricUnit.Count, value=blobs.reclaimed)
    metrics.add_metric(name="BytesReclaimed", unit=MetricUnit.Bytes, value=blobs.reclaimed_bytes)
    outcome = {
        "expired": swept.expired,
        "aborted": swept.aborted,
        "condemned": blobs.condemned,
        "reclaimed": blobs.reclaimed,
        "reclaimed_bytes": blobs.reclaimed_bytes,
    }
    logger.info("swept", extra=outcome)
    return outcome
