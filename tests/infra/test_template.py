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

from tests.support.template import TEMPLATE_PATH, create_bucket, create_event_bus, create_table, load_template

REGION = "eu-west-1"


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
    resources["ApiFunction"]["Properties"]["CodeUri"] = "s3://artreg-packages/api.zip"
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
    (role,) = _resources(translated, "AWS::IAM::Role").values()
    conditional = [
        s["Fn::If"] for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"] if "Fn::If" in s
    ]
    # Then the remote read statement exists only when the list is not empty
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "RemoteReadBucketArns"}]}, ""]}]}
    assert [(c[0], c[1]["Action"], c[2]) for c in conditional] == [
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
    # Then it blocks every public access, encrypts at rest and is kept
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
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
