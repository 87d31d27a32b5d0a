"""The publisher Lambda: the table's DynamoDB stream (filtered by the event source mapping to the
changes that are events) to the registry's EventBridge bus.

Powertools' BatchProcessor decodes the records one by one (one that cannot be decoded is reported
as a partial batch failure, and the stream retries from it); their events are then put on the bus in
batches of up to 10, failed entries retried. Events that EventBridge keeps refusing raise, so that
Lambda retries the batch, bisects it, and in the end sends it to the on-failure queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.aws.clients import event_publisher
from artreg.aws.dynamodb_stream import event_of_stream_record
from artreg.events import Event
from artreg.observability import registry_metrics
from artreg.settings import settings

logger = Logger(service="artreg")
metrics = registry_metrics()
tracer = Tracer(service="artreg", patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
publisher = event_publisher(settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    found: list[Event] = []

    def decode(record: DynamoDBRecord) -> None:
        made = event_of_stream_record(record.raw_event)
        if made is not None:
            found.append(made)

    with processor(records=event["Records"], handler=decode):
        processor.process()
    publisher.publish(found)  # raises PublishFailed when entries keep failing
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=len(found))
    return dict(processor.response())
