"""template.yaml: it lints, it translates, and what it deploys is what the code expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import create_autospec

import boto3
import pytest
from cfnlint.api import lint, lint_file
from moto import mock_aws
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from tests.support.template import (
    TEMPLATE_PATH,
    create_bucket,
    create_event_bus,
    create_lineage_queue,
    create_table,
    load_template,
    with_parameters,
)

REGION = "eu-west-1"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0f8c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SAM translator reads the region of boto3's default session; moto needs fake credentials.
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _translate() -> dict[str, Any]:
    template = load_template()
    # `sam package` swaps local code folders for S3 URIs before the transform runs: do the same.
    resources = template["Resources"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artreg-packages/{name}.zip"
    resources["ArtifactsLayer"]["Properties"]["ContentUri"] = "s3://artreg-packages/layer.zip"
    # Offline: the template names no managed policy, so the loader is never asked for IAM's list.
    policy_loader = create_autospec(ManagedPolicyLoader, instance=True)
    policy_loader.load.return_value = {}
    return transform(template, {}, policy_loader)


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        return _translate()


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every inline policy of every role, an `Fn::If` branch counting as a statement."""
    for name, role in _resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                for branch in branches:
                    if branch != {"Ref": "AWS::NoValue"}:
                        yield name, branch


def _blocking(matches: list[Any]) -> list[str]:
    return [str(m) for m in matches if m.rule.id[0] in "EW"]


def test_template_passes_cfn_lint() -> None:
    # Given the SAM template as written (any ignore lives in its own Metadata, with a comment)
    # When cfn-lint checks it
    matches = lint_file(TEMPLATE_PATH, config={"regions": ["us-east-1", REGION]})
    # Then it reports no error and no warning
    assert _blocking(matches) == []


def test_translated_template_passes_cfn_lint(translated: dict[str, Any]) -> None:
    # Given the CloudFormation that SAM makes of the template
    # When cfn-lint checks it as plain CloudFormation
    matches = lint(json.dumps(translated), config={"regions": [REGION]})
    # Then it reports no error and no warning either
    assert _blocking(matches) == []


def test_every_route_needs_iam_auth(translated: dict[str, Any]) -> None:
    # Given the HTTP API's OpenAPI body
    (api,) = _resources(translated, "AWS::ApiGatewayV2::Api").values()
    body = api["Properties"]["Body"]
    operations = [op for path in body["paths"].values() for op in path.values()]
    # Then every operation is SigV4-authorized
    assert operations
    assert all(op.get("security") == [{"AWS_IAM": []}] for op in operations)
    assert body["components"]["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_api_stage_writes_json_access_logs(translated: dict[str, Any]) -> None:
    # Given the API's stage
    (stage,) = _resources(translated, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    # Then it logs one JSON object a request to the template's access log group
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "requestId" in json.loads(settings["Format"])


def test_no_role_may_scan_or_use_wildcards_on_data(translated: dict[str, Any]) -> None:
    # Given every statement of every role's inline policies
    statements = list(_role_statements(translated))
    assert statements
    for role, statement in statements:
        actions = _as_list(statement["Action"])
        data_actions = [a for a in actions if a.startswith(("dynamodb:", "s3:"))]
        # Then none allows a scan or a whole service, nor a data action on every resource
        assert "dynamodb:Scan" not in actions, role
        assert not {"dynamodb:*", "s3:*", "*"} & set(actions), role
        assert not (data_actions and "*" in _as_list(statement["Resource"])), role
    # And SAM's managed policies for DynamoDB or S3 are not used either
    for role in _resources(translated, "AWS::IAM::Role").values():
        arns = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        assert "DynamoDB" not in arns
        assert "S3" not in arns


def test_remote_read_permission_only_when_buckets_are_given(translated: dict[str, Any]) -> None:
    # Given the condition on the remote-bucket parameter
    condition = translated["Conditions"]["HasRemoteReadBuckets"]
    role = translated["Resources"]["ApiFunctionRole"]
    conditional = [
        s["Fn::If"] for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"] if "Fn::If" in s
    ]
    # Then the remote read statement exists only when the list is not empty
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "RemoteReadBucketArns"}]}, ""]}]}
    assert [(c[0], c[1]["Action"], c[2]) for c in conditional if c[0] != "HasKmsKey"] == [
        ("HasRemoteReadBuckets", ["s3:GetObject", "s3:GetObjectVersion"], {"Ref": "AWS::NoValue"})
    ]


def test_bucket_policy_denies_insecure_transport(translated: dict[str, Any]) -> None:
    # Given the bucket policy
    (policy,) = _resources(translated, "AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Then it denies everything over plain HTTP
    assert any(
        s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and s["Action"] == "s3:*"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_table_has_recovery_stream_and_ttl(translated: dict[str, Any]) -> None:
    # Given the table
    table = translated["Resources"]["Table"]
    props = table["Properties"]
    # Then it is kept, recoverable, streamed with both images, and expires uploads
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_bucket_is_private_and_encrypted(translated: dict[str, Any]) -> None:
    # Given the bucket
    bucket = translated["Resources"]["Bucket"]
    props = bucket["Properties"]
    # Then it blocks every public access, encrypts at rest (SSE-S3, or SSE-KMS with KmsKeyArn) and is kept
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    (rule,) = with_parameters(translated, props["BucketEncryption"]["ServerSideEncryptionConfiguration"])
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    encryption = with_parameters(translated, props["BucketEncryption"], {"KmsKeyArn": KEY})
    (rule,) = encryption["ServerSideEncryptionConfiguration"]
    assert rule == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY},
        "BucketKeyEnabled": True,
    }
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_every_function_has_a_log_group_with_retention(translated: dict[str, Any]) -> None:
    # Given the functions and log groups
    functions = _resources(translated, "AWS::Lambda::Function")
    groups = {
        json.dumps(g["Properties"]["LogGroupName"]): g["Properties"]
        for g in _resources(translated, "AWS::Logs::LogGroup").values()
    }
    # Then each function has its /aws/lambda/<name> group, with a retention
    assert functions
    for name in functions:
        group = groups.get(json.dumps({"Fn::Sub": f"/aws/lambda/${{{name}}}"}))
        assert group is not None, name
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_functions_get_the_settings_the_code_reads(translated: dict[str, Any]) -> None:
    # Given the API function
    function = translated["Resources"]["ApiFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    # Then it runs on the runtime and architecture of the layer and knows its resources
    assert (function["Runtime"], function["Architectures"], function["Handler"]) == (
        "python3.12",
        ["arm64"],
        "app.lambda_handler",
    )
    assert variables["ARTREG_TABLE_NAME"] == {"Ref": "Table"}
    assert variables["ARTREG_BUCKET_NAME"] == {"Ref": "Bucket"}
    assert variables["ARTREG_EVENT_BUS_NAME"] == {"Ref": "EventBus"}


@mock_aws
def test_moto_resources_follow_the_template() -> None:
    # Given the template's own table and bucket properties
    props = load_template()["Resources"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    events = boto3.client("events", region_name=REGION)

    # When the support module builds them, and a bus, on moto
    create_table(dynamodb, "artreg-test")
    create_bucket(s3, "artreg-test-blobs")
    bus_arn = create_event_bus(events, "artreg-test")

    # Then the table has the template's keys, stream and TTL
    table = dynamodb.describe_table(TableName="artreg-test")["Table"]
    assert table["KeySchema"] == props["Table"]["Properties"]["KeySchema"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ttl = dynamodb.describe_time_to_live(TableName="artreg-test")["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("expires_at", "ENABLED")
    # And the bucket is versioned, encrypted, private and cleaned up as the template says
    assert s3.get_bucket_versioning(Bucket="artreg-test-blobs")["Status"] == "Enabled"
    (sse,) = s3.get_bucket_encryption(Bucket="artreg-test-blobs")["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket="artreg-test-blobs")["PublicAccessBlockConfiguration"]
    assert block == props["Bucket"]["Properties"]["PublicAccessBlockConfiguration"]
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="artreg-test-blobs")["Rules"]}
    assert rules["AbortIncompleteMultipartUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert rules["ExpireNoncurrentVersions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    (cors,) = s3.get_bucket_cors(Bucket="artreg-test-blobs")["CORSRules"]
    assert cors["ExposeHeaders"] == ["ETag"]
    # And the bus exists under the returned ARN
    assert events.describe_event_bus(Name="artreg-test")["Arn"] == bus_arn


# ---------------------------------------------------------------- events and lineage


def _statements(template: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    """The inline statements of a function's role, by Sid (a conditional one as when its condition holds)."""
    policies = template["Resources"][role]["Properties"]["Policies"]
    return {
        s["Sid"]: s
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
        for s in (s["Fn::If"][1:2] if "Fn::If" in s else [s])
    }


def _key_use(*services: str) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """The KMS statement a role has with KmsKeyArn: decrypt and data keys, through these services only."""
    endpoints = [{"Fn::Sub": f"{s}.${{AWS::Region}}.${{AWS::URLSuffix}}"} for s in services]
    condition = {"StringEquals": {"kms:ViaService": endpoints}}
    return (["kms:Decrypt", "kms:GenerateDataKey"], {"Ref": "KmsKeyArn"}, condition)


def test_the_publisher_may_read_the_stream_put_on_the_bus_and_report_failures_only(
    translated: dict[str, Any],
) -> None:
    # Given the publisher's role
    statements = _statements(translated, "PublisherFunctionRole")
    # Then it reads the table's stream, puts events on the registry's bus and writes its failure queue, nothing else
    assert {k: (sorted(_as_list(s["Action"])), s["Resource"]) for k, s in statements.items()} == {
        "TableStream": (
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
            {"Fn::GetAtt": ["Table", "StreamArn"]},
        ),
        "RegistryBus": (["events:PutEvents"], {"Fn::GetAtt": ["EventBus", "Arn"]}),
        "OnFailureDestination": (["sqs:SendMessage"], {"Fn::GetAtt": ["PublisherFailureQueue", "Arn"]}),
        "RegistryKey": _key_use("dynamodb", "events", "sqs")[:2],
    }
    key = statements["RegistryKey"]
    assert (key["Action"], key["Resource"], key["Condition"]) == _key_use("dynamodb", "events", "sqs")
    # And no managed policy beyond logs and tracing (SAM's stream policy reads every stream)
    arns = json.dumps(translated["Resources"]["PublisherFunctionRole"]["Properties"]["ManagedPolicyArns"])
    assert "DynamoDB" not in arns
    assert "SQS" not in arns


def test_the_lineage_function_may_only_touch_lineage_items_and_its_queue(translated: dict[str, Any]) -> None:
    statements = _statements(translated, "LineageFunctionRole")
    items = statements["LineageItems"]
    assert sorted(items["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    assert items["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert items["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["R#*", "G#*"]}}
    queue = statements["LineageQueue"]
    assert queue["Resource"] == {"Fn::GetAtt": ["LineageQueue", "Arn"]}
    assert set(queue["Action"]) >= {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    assert set(statements) == {"LineageItems", "LineageQueue", "RegistryKey"}
    key = statements["RegistryKey"]
    assert (key["Action"], key["Resource"], key["Condition"]) == _key_use("dynamodb", "sqs")
    assert "SQS" not in json.dumps(translated["Resources"]["LineageFunctionRole"]["Properties"]["ManagedPolicyArns"])


def test_the_stream_mapping_filters_retries_bisects_and_keeps_failures(translated: dict[str, Any]) -> None:
    # Given the publisher's event source mapping
    mapping = translated["Resources"]["PublisherStreamMapping"]["Properties"]
    # Then it reads the table's stream, bisects failing batches, reports partial failures, and sends what
    # keeps failing to the alarmed failure queue
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert mapping["FunctionName"] == {"Ref": "PublisherFunction"}
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 < mapping["MaximumRetryAttempts"] <= 10_000
    assert mapping["BatchSize"] <= 1000
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["PublisherFailureQueue", "Arn"]}}
    }
    # And its filters are JSON patterns on the keys (what they let through is tested against real records
    # in tests/integration/test_events.py)
    patterns = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert [p["eventName"] for p in patterns] == [["INSERT"], ["MODIFY"], ["MODIFY"], ["INSERT", "MODIFY"]]


def test_the_lineage_rule_feeds_a_queue_with_a_dead_letter_queue(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    rule = resources["LineageRule"]["Properties"]
    # The rule takes the registry's commit and usage events off its bus
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"] == {
        "source": [{"Ref": "EventSource"}],
        "detail-type": ["ArtifactVersionCommitted", "ArtifactVersionUsed"],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["LineageQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["LineageDeadLetterQueue", "Arn"]}}
    # The queue redrives to the dead-letter queue, and only that rule may send to them
    queue = resources["LineageQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["LineageDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * resources["LineageFunction"]["Properties"]["Timeout"]
    (statement,) = resources["LineageQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["LineageRule", "Arn"]}}}
    # And the lineage function reads the queue, reporting partial failures
    mapping = resources["LineageQueueMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["LineageQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_dead_letter_queue_has_an_alarm_on_its_depth(translated: dict[str, Any]) -> None:
    alarms = _resources(translated, "AWS::CloudWatch::Alarm").values()
    watched = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
        and a["Properties"]["Threshold"] == 0
    }
    assert watched == {"PublisherFailureQueue", "LineageDeadLetterQueue", "VerifierFailureQueue"}
    # and every queue is encrypted: with SQS's key, or KmsKeyArn when given
    for queue in _resources(translated, "AWS::SQS::Queue").values():
        assert with_parameters(translated, queue["Properties"])["SqsManagedSseEnabled"] is True
        with_key = with_parameters(translated, queue["Properties"], {"KmsKeyArn": KEY})
        assert with_key["KmsMasterKeyId"] == KEY
        assert "SqsManagedSseEnabled" not in with_key


def test_the_bus_is_archived_for_replay(translated: dict[str, Any]) -> None:
    (archive,) = _resources(translated, "AWS::Events::Archive").values()
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert archive["Properties"]["EventPattern"] == {"source": [{"Ref": "EventSource"}]}


@mock_aws
def test_the_lineage_queue_built_from_the_template_gets_the_rule_s_events() -> None:
    # Given the bus, and the lineage rule and queues built from the template on moto
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    create_event_bus(events, "artreg-test")
    queue_url = create_lineage_queue(events, sqs, "artreg-test", source="artreg")
    # When a commit event, a usage event and an alias move are put on the bus
    entries = [
        {"EventBusName": "artreg-test", "Source": "artreg", "DetailType": kind, "Detail": json.dumps({"kind": kind})}
        for kind in ("ArtifactVersionCommitted", "ArtifactVersionUsed", "AliasMoved")
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0  # type: ignore[arg-type]
    # Then the queue holds the first two only
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["detail-type"] for m in messages) == [
        "ArtifactVersionCommitted",
        "ArtifactVersionUsed",
    ]
    # And the queue redrives to its dead-letter queue as the template says
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5


# ---------------------------------------------------------------- janitor and protection


def test_the_janitor_runs_hourly_and_daily_and_may_only_expire_uploads_reclaim_blobs_and_note_changes(
    translated: dict[str, Any],
) -> None:
    resources = translated["Resources"]
    # Given the janitor's schedule rules
    rules = [
        r["Properties"]
        for r in _resources(translated, "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression") is not None
    ]
    # Then it runs every hour, and every day with the task of re-checking remote references, at a minute
    # of its own (with a reserved concurrency of 1, a run beside another would be throttled)
    assert {(r["ScheduleExpression"], r["Targets"][0].get("Input")) for r in rules} == {
        ("cron(0 * * * ? *)", None),
        ("cron(30 3 * * ? *)", '{"task": "remote-refs"}'),
    }
    for rule in rules:
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["JanitorFunction", "Arn"]}
    # And its role writes upload and expiry-index items only, reads heads and versions, and touches blobs
    # and manifests only
    policies = resources["JanitorFunctionRole"]["Properties"]["Policies"]
    statements = {
        s["Sid"]: s
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
        for s in (s["Fn::If"][1:2] if "Fn::If" in s else [s])
    }
    assert set(statements) == {
        "UploadItems",
        "ReadVersions",
        "JanitorCheckpoints",
        "NoteRemoteChanges",
        "AbortMultipartUploads",
        "ListBlobs",
        "ReclaimBlobs",
        "ReadManifests",
        "RemoteReferences",  # only when RemoteReadBucketArns names buckets
        "RegistryKey",  # only with KmsKeyArn
    }
    items = statements["UploadItems"]
    assert items["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert items["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["U#*", "X#*"]}}
    assert "dynamodb:Scan" not in items["Action"]
    versions = statements["ReadVersions"]
    assert versions["Action"] == "dynamodb:Query"
    assert versions["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["PROJECTS", "P#*", "A#*"]}}
    checkpoints = statements["JanitorCheckpoints"]
    assert set(checkpoints["Action"]) == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"}
    assert checkpoints["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["J#*"]}}
    notes = statements["NoteRemoteChanges"]
    assert (notes["Action"], notes["Condition"]) == (
        "dynamodb:PutItem",
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["C#*"]}},
    )
    abort = statements["AbortMultipartUploads"]
    assert abort["Action"] == "s3:AbortMultipartUpload"
    assert abort["Resource"] == {"Fn::Sub": "${Bucket.Arn}/*/blobs/*"}
    reclaim = statements["ReclaimBlobs"]
    assert reclaim["Resource"] == {"Fn::Sub": "${Bucket.Arn}/*/blobs/*"}
    assert "s3:DeleteObject" not in reclaim["Action"], "only a version it tagged, never the current object"
    assert statements["ReadManifests"]["Resource"] == {"Fn::Sub": "${Bucket.Arn}/*/manifests/*"}
    # And it is told the grace period
    variables = resources["JanitorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["ARTREG_BLOB_GRACE_DAYS"] == {"Ref": "BlobGracePeriodDays"}


def test_the_verifier_settles_blob_versions_only_and_only_the_api_may_invoke_it(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    # Given the verifier's role
    statements = dict(_statements(translated, "VerifierFunctionRole"))
    # Then it may read, tag and delete one version of a blob, and nothing outside blobs/
    settle = statements.pop("SettleBlobs")
    assert settle["Resource"] == {"Fn::Sub": "${Bucket.Arn}/*/blobs/*"}
    assert set(settle["Action"]) == {
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectVersion",
    }
    # (never the current object by its name: no DeleteObject, no PutObject)
    assert not {"s3:DeleteObject", "s3:PutObject", "s3:PutObjectTagging"} & set(settle["Action"])
    assert statements.pop("RegistryBucket") == {
        "Sid": "RegistryBucket",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]},
    }
    failure = statements.pop("OnFailureDestination")
    assert (failure["Action"], failure["Resource"]) == (
        "sqs:SendMessage",
        {"Fn::GetAtt": ["VerifierFailureQueue", "Arn"]},
    )
    assert set(statements) == {"RegistryKey"}  # only with KmsKeyArn
    # And of managed policies, only SAM's basic ones (logs, X-Ray): no table, no bus
    managed = resources["VerifierFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert [arn.rsplit("/", 1)[-1] for arn in managed] == ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"]

    # Given the API's role / Then it may invoke the verifier, and no other function, and is told its name
    invoking = [
        (role, s)
        for role, s in _role_statements(translated)
        if any(a.startswith("lambda:") for a in _as_list(s["Action"]))
    ]
    assert [(role, s["Action"], s["Resource"]) for role, s in invoking] == [
        ("ApiFunctionRole", "lambda:InvokeFunction", {"Fn::GetAtt": ["VerifierFunction", "Arn"]})
    ]
    variables = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["ARTREG_VERIFIER_FUNCTION_NAME"] == {"Ref": "VerifierFunction"}


def test_the_verifier_runs_asynchronously_with_retries_a_failure_queue_and_a_window_that_covers_them(
    translated: dict[str, Any],
) -> None:
    resources = translated["Resources"]
    function = resources["VerifierFunction"]["Properties"]
    (config,) = [r["Properties"] for r in _resources(translated, "AWS::Lambda::EventInvokeConfig").values()]
    # Then it has Lambda's longest timeout, a whole vCPU, and a cap on its concurrency
    assert (function["Timeout"], function["MemorySize"]) == (900, 1769)
    assert 1 <= function["ReservedConcurrentExecutions"] <= 20
    assert (function["Handler"], function["Architectures"]) == ("app.lambda_handler", ["arm64"])
    # And its asynchronous events are retried, then described in its alarmed failure queue
    assert config["FunctionName"] == {"Ref": "VerifierFunction"}
    assert config["Qualifier"] == "$LATEST"
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["VerifierFailureQueue", "Arn"]}}
    }
    # And the API counts a blob as being verified exactly as long as a run of it may still come and end:
    # the oldest event Lambda still runs, plus a run, plus a margin; and every try with its timeout fits
    window = int(resources["ApiFunction"]["Properties"]["Environment"]["Variables"]["ARTREG_VERIFY_WINDOW_SECONDS"])
    assert window >= config["MaximumEventAgeInSeconds"] + function["Timeout"] + 60
    assert window >= (config["MaximumRetryAttempts"] + 1) * function["Timeout"] + 180  # Lambda waits 1, then 2 min


def test_deletion_protection_follows_its_parameter(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    assert translated["Parameters"]["DeletionProtection"]["Default"] == "Enabled"
    assert translated["Conditions"]["ProtectFromDeletion"] == {"Fn::Equals": [{"Ref": "DeletionProtection"}, "Enabled"]}
    # The table's own deletion protection
    assert resources["Table"]["Properties"]["DeletionProtectionEnabled"] == {
        "Fn::If": ["ProtectFromDeletion", True, False]
    }
    # And a bucket policy statement that denies deleting the bucket to everyone
    statements = resources["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (protect,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
    assert protect[0] == "ProtectFromDeletion"
    assert (protect[1]["Effect"], protect[1]["Principal"], protect[1]["Action"]) == ("Deny", "*", "s3:DeleteBucket")
    assert protect[2] == {"Ref": "AWS::NoValue"}


def test_every_setting_parameter_reaches_the_functions(translated: dict[str, Any]) -> None:
    # Given the Globals' environment, as SAM copies it into each function
    for name in ("ApiFunction", "PublisherFunction", "LineageFunction", "JanitorFunction", "VerifierFunction"):
        variables = translated["Resources"][name]["Properties"]["Environment"]["Variables"]
        # Then each function gets the stack's settings from its parameters
        assert variables["ARTREG_UPLOAD_EXPIRY_SECONDS"] == {"Ref": "UploadExpirySeconds"}, name
        assert variables["ARTREG_PRESIGN_SECONDS"] == {"Ref": "PresignSeconds"}, name
        assert variables["ARTREG_MULTIPART_THRESHOLD"] == {"Ref": "MultipartThreshold"}, name


def test_functions_skip_pydantics_plugin_lookup(translated: dict[str, Any]) -> None:
    # Given each function's environment (the functions use no pydantic plugin)
    for name in ("ApiFunction", "PublisherFunction", "LineageFunction", "JanitorFunction", "VerifierFunction"):
        variables = translated["Resources"][name]["Properties"]["Environment"]["Variables"]
        # Then pydantic does not read every installed distribution's entry points at its first model build
        assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__", name


def test_outputs_name_what_a_caller_needs() -> None:
    outputs = load_template()["Outputs"]
    assert {"ApiUrl", "BucketName", "TableName", "EventBusName", "EventSource"} <= set(outputs)


def test_the_layer_is_built_by_its_makefile_for_arm64() -> None:
    layer = load_template()["Resources"]["ArtifactsLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (TEMPLATE_PATH.parent / "layer" / "Makefile").read_text()
    assert "build-ArtifactsLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--python-version 3.12" in makefile


def test_the_projects_listing_is_a_route_of_its_own_with_iam_auth(translated: dict[str, Any]) -> None:
    # GET /v1/projects (beyond API.md) is named apart, so a caller's policy can allow or leave it out
    (api,) = _resources(translated, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["Body"]["paths"]["/v1/projects"]["get"]["security"] == [{"AWS_IAM": []}]
    # and the API function may Query the table (the PROJECTS partition) but never Scan it
    (role,) = [r for n, r in _resources(translated, "AWS::IAM::Role").items() if n.startswith("ApiFunction")]
    actions = {
        a
        for p in role["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if isinstance(s, dict)
        for a in _list(s.get("Action", []))
    }
    assert "dynamodb:Query" in actions
    assert "dynamodb:Scan" not in actions


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
