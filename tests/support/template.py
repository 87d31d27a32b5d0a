"""`template.yaml` as data, and moto resources built from its own properties.

Integration tests create their table, bucket and bus with these helpers, so that a change
to the template changes what the tests run against: the two cannot drift apart.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfnlint.decode import cfn_yaml

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template (template.yaml, or another) with its intrinsic tags as long form (`!Ref X` ->
    `{"Ref": "X"}`), as plain dicts (a fresh copy each time: a caller may change it)."""
    loaded: dict[str, Any] = json.loads(_template_json(path))
    return loaded


@functools.cache
def _template_json(path: Path) -> str:
    """Decoded once per run: every moto fixture builds its resources from it."""
    # cfn-lint's decoder handles every short-form tag; the JSON round trip drops its node classes.
    return json.dumps(cfn_yaml.load(str(path)))


_NO_VALUE = object()


def _condition(template: dict[str, Any], value: Any, parameters: dict[str, Any]) -> Any:
    """A condition's (or a condition function's operand's) value with the parameters given, the others at
    their defaults."""
    if isinstance(value, list):
        return [_condition(template, v, parameters) for v in value]
    if not isinstance(value, dict):
        return value
    ((function, operand),) = value.items()
    if function == "Condition":
        return _condition(template, template["Conditions"][operand], parameters)
    if function == "Ref":
        value = parameters.get(operand, template["Parameters"][operand].get("Default"))
        is_list = template["Parameters"][operand]["Type"] == "CommaDelimitedList"
        return ([] if value == "" else value.split(",")) if is_list and isinstance(value, str) else value
    args = _condition(template, operand, parameters)
    functions = {
        "Fn::Equals": lambda: str(args[0]) == str(args[1]),
        "Fn::Not": lambda: not args[0],
        "Fn::And": lambda: all(args),
        "Fn::Or": lambda: any(args),
        "Fn::Join": lambda: args[0].join(args[1]),
    }
    return functions[function]()


def condition_holds(template: dict[str, Any], name: str, parameters: dict[str, Any] | None = None) -> bool:
    """Whether the template's condition `name` holds with `parameters`, the others at their defaults."""
    return bool(_condition(template, template["Conditions"][name], parameters or {}))


def with_parameters(template: dict[str, Any], value: Any, parameters: dict[str, Any] | None = None) -> Any:
    """`value` (a piece of `template`) as CloudFormation makes it with `parameters`, the others at their
    defaults: each `Fn::If` decided, what is AWS::NoValue left out, a `Ref` of a given parameter its value.
    Other intrinsics stay as they are."""
    parameters = parameters or {}
    if isinstance(value, list):
        kept = [with_parameters(template, v, parameters) for v in value]
        return [v for v in kept if v is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        chosen = when_true if _condition(template, template["Conditions"][name], parameters) else when_false
        return with_parameters(template, chosen, parameters)
    if value == {"Ref": "AWS::NoValue"}:
        return _NO_VALUE
    if set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    kept_items = {k: with_parameters(template, v, parameters) for k, v in value.items()}
    return {k: v for k, v in kept_items.items() if v is not _NO_VALUE}


def _properties(logical_id: str) -> dict[str, Any]:
    template = load_template()
    properties: dict[str, Any] = with_parameters(template, template["Resources"][logical_id]["Properties"])
    return properties


def create_table(dynamodb_client: DynamoDBClient, table_name: str, *, stream: bool = True) -> None:
    """Create the registry table as `Table` in the template states it, then switch on its TTL.

    `stream=False` is for load tests only: moto deep-copies the whole table, stream records
    included, once per item of every transaction, which makes a long run quadratic."""
    props = _properties("Table")
    dynamodb_client.create_table(
        TableName=table_name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props["BillingMode"],
        StreamSpecification={"StreamEnabled": True, **props["StreamSpecification"]}
        if stream
        else {"StreamEnabled": False},
    )
    dynamodb_client.get_waiter("table_exists").wait(TableName=table_name)
    ttl = props["TimeToLiveSpecification"]
    dynamodb_client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )


def _renamed(cfn: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Rename CloudFormation keys to the S3 API's; a key with no known name fails, never drops silently."""
    unknown = set(cfn) - set(names)
    if unknown:
        raise ValueError(f"tests/support/template.py does not translate {sorted(unknown)} yet")
    return {names[key]: value for key, value in cfn.items()}


_ENCRYPTION_RULE = {
    "ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault",
    "BucketKeyEnabled": "BucketKeyEnabled",
}
_LIFECYCLE_RULE = {
    "Id": "ID",
    "Status": "Status",
    "AbortIncompleteMultipartUpload": "AbortIncompleteMultipartUpload",
    "NoncurrentVersionExpiration": "NoncurrentVersionExpiration",
}
_CORS_RULE = {
    "AllowedMethods": "AllowedMethods",
    "AllowedOrigins": "AllowedOrigins",
    "AllowedHeaders": "AllowedHeaders",
    "ExposedHeaders": "ExposeHeaders",
    "MaxAge": "MaxAgeSeconds",
}


def create_bucket(s3_client: S3Client, bucket_name: str) -> None:
    """Create the blob bucket as `Bucket` in the template states it (CloudFormation shapes -> S3 API shapes)."""
    props = _properties("Bucket")
    region = s3_client.meta.region_name
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3_client.create_bucket(Bucket=bucket_name, **location)
    s3_client.put_bucket_ownership_controls(Bucket=bucket_name, OwnershipControls=props["OwnershipControls"])
    s3_client.put_public_access_block(
        Bucket=bucket_name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
    )
    s3_client.put_bucket_encryption(
        Bucket=bucket_name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                _renamed(rule, _ENCRYPTION_RULE)
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
        },
    )
    s3_client.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration=props["VersioningConfiguration"])
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=bucket_name,
        LifecycleConfiguration={
            "Rules": [
                {"Filter": {}, **_renamed(rule, _LIFECYCLE_RULE)} for rule in props["LifecycleConfiguration"]["Rules"]
            ]
        },
    )
    s3_client.put_bucket_cors(
        Bucket=bucket_name,
        CORSConfiguration={
            "CORSRules": [_renamed(rule, _CORS_RULE) for rule in props["CorsConfiguration"]["CorsRules"]]
        },
    )


def create_event_bus(events_client: EventBridgeClient, name: str) -> str:
    """Create the registry's event bus (the template gives it no other property) and return its ARN."""
    arn: str = events_client.create_event_bus(Name=name)["EventBusArn"]
    return arn


def _resolved(value: Any, refs: dict[str, Any]) -> Any:
    """`value` with each `{"Ref": name}` of `refs` replaced by its value."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in refs:
            return refs[value["Ref"]]
        return {k: _resolved(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, refs) for v in value]
    return value


def _create_queue(sqs_client: SQSClient, name: str, logical_id: str, redrive_to: str | None = None) -> str:
    props = _properties(logical_id)
    attributes = {key: str(props[key]) for key in ("VisibilityTimeout", "MessageRetentionPeriod") if key in props}
    if redrive_to is not None:
        redrive = props["RedrivePolicy"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": redrive_to, "maxReceiveCount": redrive["maxReceiveCount"]}
        )
    url: str = sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    return url


def queue_arn(sqs_client: SQSClient, url: str) -> str:
    arn: str = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def create_lineage_queue(events_client: EventBridgeClient, sqs_client: SQSClient, bus: str, *, source: str) -> str:
    """The lineage rule on `bus` (its pattern with the stack's event source) and the lineage queue it feeds,
    with its dead-letter queue, as the template states them; answers the queue's URL."""
    dead = _create_queue(sqs_client, "artreg-lineage-dlq", "LineageDeadLetterQueue")
    url = _create_queue(sqs_client, "artreg-lineage", "LineageQueue", redrive_to=queue_arn(sqs_client, dead))
    rule = _properties("LineageRule")
    events_client.put_rule(
        Name="artreg-lineage",
        EventBusName=bus,
        EventPattern=json.dumps(_resolved(rule["EventPattern"], {"EventSource": source})),
        State=rule["State"],
    )
    (target,) = rule["Targets"]
    events_client.put_targets(
        Rule="artreg-lineage",
        EventBusName=bus,
        Targets=[
            {
                "Id": target["Id"],
                "Arn": queue_arn(sqs_client, url),
                "RetryPolicy": target["RetryPolicy"],
                "DeadLetterConfig": {"Arn": queue_arn(sqs_client, dead)},
            }
        ],
    )
    return url


def publisher_filters() -> list[dict[str, Any]]:
    """The publisher's stream filter patterns, as Lambda reads them."""
    filters = _properties("PublisherStreamMapping")["FilterCriteria"]["Filters"]
    return [json.loads(f["Pattern"]) for f in filters]
