"""The lineage Lambda: the registry's events (a rule on the bus, through an SQS queue with a DLQ) to
lineage edges in the table, idempotently. A message that fails is reported as a partial batch
failure: SQS delivers it again, and after its last receive moves it to the DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.aws.clients import lineage_recorder
from artreg.observability import registry_metrics
from artreg.settings import settings

logger = Logger(service="artreg")
metrics = registry_metrics()
tracer = Tracer(service="artreg", patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS)
recorder = lineage_recorder(settings())


def record_handler(record: SQSRecord) -> None:
    event = record.json_body  # the event as EventBridge delivered it
    made = recorder.record(event["detail-type"], event["detail"])
    metrics.add_metric(name="LineageEdges", unit=MetricUnit.Count, value=made)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
