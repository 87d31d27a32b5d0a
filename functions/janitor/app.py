"""The janitor Lambda, on two EventBridge schedules (artreg.registry.janitor). Hourly: expires pending
uploads past their expiry and aborts their multipart uploads (a run handles a bounded number; the rest
waits), then takes the next step of the walk that condemns and reclaims blobs nothing lists. Daily (the
event's `task` is `remote-refs`): the next step of the walk that reads every pinned remote reference
again and notes those that changed. Each run stops within the time Lambda gives it, less a margin for
its last item and its checkpoint; `JanitorWalkAgeSeconds` and `JanitorRemoteWalkAgeSeconds` say how
old each unfinished walk is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.aws.clients import aws_janitor
from artreg.observability import registry_metrics
from artreg.registry.budget import TimeBudget
from artreg.settings import settings

logger = Logger(service="artreg")
metrics = registry_metrics()
tracer = Tracer(service="artreg", patch_modules=["botocore"])
janitor = aws_janitor(settings())
MARGIN_S = 30.0  # the last item (a page of 200 blobs' HEADs) and the checkpoint's write fit in it


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = TimeBudget(context.get_remaining_time_in_millis() / 1000 - MARGIN_S)
    if event.get("task") == "remote-refs":
        return recheck_remote_refs(budget)
    return sweep(budget)


def recheck_remote_refs(budget: TimeBudget) -> dict[str, Any]:
    remote = janitor.recheck_remote_refs(budget)
    walk_age = janitor.walk_ages()["remote"].total_seconds()
    metrics.add_metric(name="RemoteReferencesChecked", unit=MetricUnit.Count, value=remote.checked)
    metrics.add_metric(name="RemoteReferencesChanged", unit=MetricUnit.Count, value=remote.changed)
    metrics.add_metric(name="JanitorRemoteWalkAgeSeconds", unit=MetricUnit.Seconds, value=walk_age)
    outcome = {"checked": remote.checked, "changed": remote.changed, "noted": remote.noted, "walk_age_s": walk_age}
    logger.info("remote references re-checked", extra=outcome)
    return outcome


def sweep(budget: TimeBudget) -> dict[str, Any]:
    config = settings()
    swept = janitor.expire_uploads(limit=config.janitor_batch, budget=budget)
    blobs = janitor.reclaim_blobs(timedelta(days=config.blob_grace_days), config.policy().upload_ttl, budget=budget)
    walk_age = janitor.walk_ages()["blobs"].total_seconds()
    metrics.add_metric(name="UploadsExpired", unit=MetricUnit.Count, value=swept.expired)
    metrics.add_metric(name="MultipartUploadsAborted", unit=MetricUnit.Count, value=swept.aborted)
    metrics.add_metric(name="BlobsCondemned", unit=MetricUnit.Count, value=blobs.condemned)
    metrics.add_metric(name="BlobsReclaimed", unit=MetricUnit.Count, value=blobs.reclaimed)
    metrics.add_metric(name="BytesReclaimed", unit=MetricUnit.Bytes, value=blobs.reclaimed_bytes)
    metrics.add_metric(name="JanitorWalkAgeSeconds", unit=MetricUnit.Seconds, value=walk_age)
    outcome = {
        "expired": swept.expired,
        "aborted": swept.aborted,
        "condemned": blobs.condemned,
        "reclaimed": blobs.reclaimed,
        "reclaimed_bytes": blobs.reclaimed_bytes,
        "walk_age_s": walk_age,
    }
    logger.info("swept", extra=outcome)
    return outcome
