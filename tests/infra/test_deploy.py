"""The template's resources that moto's CloudFormation can make, deployed as a stack to it from the
translated template itself: what it makes is what the code expects. The tests' own fixtures build the same
resources from the same properties (tests/support/template.py).

What is deployed is every resource of a type moto's CloudFormation implements (its model map), less what it
cannot make from this template, and less whatever refers to something left out:
- the functions, their versions, alias, permissions and mappings (moto would need their code packages);
- the lineage rule (moto hands a rule the bus object where the bus name belongs, and fails).
Of what it makes, it drops some properties: the table's TTL and point-in-time recovery, the bucket's
versioning, encryption and lifecycle. tests/infra/test_template.py checks all of those on the translated
template, and tests/support/template.py applies them to the fixtures the integration tests run on."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from tests.infra.test_template import REGION, _translate

STACK = "artreg"
BUS = f"artreg-{STACK}"  # the template's name for it (moto answers a Ref of a bus with its object, not its name)
NOT_MADE_HERE = {"AWS::Lambda::Function", "AWS::Lambda::LayerVersion"}  # code packages
MOTO_BUGS = {"LineageRule"}
# What must be in the stack: a resource that moves out of it has to be said here
DEPLOYED = {
    "Table",
    "Bucket",
    "EventBus",
    "EventArchive",
    "PublisherFailureQueue",
    "LineageQueue",
    "LineageDeadLetterQueue",
    "AlarmTopic",
    "AlarmTopicKey",
    "ApiAccessLogGroup",
    "ApiFunctionRole",
    "PublisherFunctionRole",
    "LineageFunctionRole",
    "JanitorFunctionRole",
    "VerifierFunctionRole",
    "VerifierFailureQueue",
    "ApiDeploymentRole",
}


def _references(value: Any) -> set[str]:
    """The logical names a piece of a template refers to (Ref, GetAtt, and ${...} of Sub)."""
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    if "Ref" in value:
        return {value["Ref"]}
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return {target[0] if isinstance(target, list) else target.split(".")[0]}
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        names = {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]}
        if isinstance(value["Fn::Sub"], list):  # the variables it defines are not references
            variables = value["Fn::Sub"][1]
            return (names - set(variables)) | _references(list(variables.values()))
        return names
    return set().union(*map(_references, value.values())) if value else set()


def _as_sub(value: Any) -> Any:
    """The same JSON with each {"Ref": name} as "${name}", for Fn::Sub to fill in."""
    if isinstance(value, dict):
        return f"${{{value['Ref']}}}" if set(value) == {"Ref"} else {k: _as_sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_sub(v) for v in value]
    return value


def _stand_in(value: Any, functions: set[str]) -> Any:
    """The same JSON with the ARN of each of `functions` (GetAtt X.Arn) as a made-up ARN of its name."""
    if isinstance(value, dict):
        target = value.get("Fn::GetAtt")
        if set(value) == {"Fn::GetAtt"} and isinstance(target, list) and target[0] in functions:
            return f"arn:aws:lambda:{REGION}:123456789012:function:{target[0]}"
        return {k: _stand_in(v, functions) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_in(v, functions) for v in value]
    return value


def _deployable(translated: dict[str, Any]) -> dict[str, Any]:
    """The resources moto's CloudFormation can make, without those that refer to one it cannot. A role
    whose policy names a function (the API's may invoke the verifier) is made with a stand-in ARN."""
    supported = get_model_map()
    functions = {name for name, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    resources = {
        name: _stand_in(r, functions) if r["Type"] == "AWS::IAM::Role" else r
        for name, r in translated["Resources"].items()
        if r["Type"] in supported and r["Type"] not in NOT_MADE_HERE and name not in MOTO_BUGS
    }
    while True:
        outside = {
            name
            for name, r in resources.items()
            if {n for n in _references(r) if not n.startswith("AWS::")} - set(resources) - set(translated["Parameters"])
        }
        if not outside:
            return resources
        resources = {name: r for name, r in resources.items() if name not in outside}


def _data_plane(translated: dict[str, Any]) -> dict[str, Any]:
    """The deployable resources, with the parameters and conditions they use; everything they refer to
    is in it."""
    resources = _deployable(translated)
    referenced = _references(list(resources.values()))
    conditions = translated.get("Conditions", {})
    used_conditions = {
        name: conditions[name]
        for name in conditions
        if name in json.dumps(resources) or any(name in json.dumps(c) for c in conditions.values())
    }
    referenced |= _references(list(used_conditions.values()))
    parameters = {name: p for name, p in translated["Parameters"].items() if name in referenced}
    unknown = referenced - set(resources) - set(parameters) - {n for n in referenced if n.startswith("AWS::")}
    assert not unknown, f"the data plane refers to resources outside it: {unknown}"
    for resource in resources.values():  # CloudFormation takes a Json property as an object or its text;
        properties = resource["Properties"]  # moto's archive takes only the text
        if resource["Type"] == "AWS::Events::Archive" and isinstance(properties.get("EventPattern"), dict):
            properties["EventPattern"] = {"Fn::Sub": json.dumps(_as_sub(properties["EventPattern"]))}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": parameters,
        "Conditions": used_conditions,
        "Resources": resources,
        "Outputs": {
            "Table": {"Value": {"Ref": "Table"}},
            "Bucket": {"Value": {"Ref": "Bucket"}},
        },
    }


@pytest.fixture(scope="module")
def stack() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        template = _data_plane(_translate())
        with mock_aws():
            cloudformation = boto3.client("cloudformation", region_name=REGION)
            cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
            (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
            outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
            yield described, outputs


def test_what_moto_can_make_deploys_as_a_stack(stack: Any) -> None:
    described, outputs = stack
    # Then the stack is made, and names its table and bucket
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert set(outputs) == {"Table", "Bucket"}
    # And it holds every resource moto can make (no more falls out of it unseen)
    made = boto3.client("cloudformation", region_name=REGION).list_stack_resources(StackName=STACK)
    assert {r["LogicalResourceId"] for r in made["StackResourceSummaries"]} == DEPLOYED


def test_the_alarm_topic_is_encrypted_with_the_stacks_key(stack: Any) -> None:
    sns = boto3.client("sns", region_name=REGION)
    (topic,) = sns.list_topics()["Topics"]
    attributes = sns.get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"]
    kms = boto3.client("kms", region_name=REGION)
    # (moto's describe_key fails on a key policy made by CloudFormation)
    assert attributes["KmsMasterKeyId"] in {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert kms.get_key_rotation_status(KeyId=attributes["KmsMasterKeyId"])["KeyRotationEnabled"] is True


def test_the_roles_are_made_with_the_functions_policies(stack: Any) -> None:
    iam = boto3.client("iam", region_name=REGION)
    roles = {r["RoleName"]: r for r in iam.list_roles()["Roles"]}
    publisher = next(name for name in roles if "PublisherFunctionRole" in name)
    (policy_name,) = iam.list_role_policies(RoleName=publisher)["PolicyNames"]
    # (moto answers the document as the text of a Python dict)
    document = str(iam.get_role_policy(RoleName=publisher, PolicyName=policy_name)["PolicyDocument"])
    sids = set(re.findall(r"""["']Sid["']: ?["'](\w+)["']""", document))
    assert sids == {"TableStream", "RegistryBus", "OnFailureDestination"}  # no key statement without a key
    assert "arn:aws:dynamodb:eu-west-1:123456789012:table/" in document


def test_the_deployed_table_has_the_keys_and_stream_the_store_and_publisher_use(stack: Any) -> None:
    _, outputs = stack
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=outputs["Table"])["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_deployed_bucket_takes_a_blob(stack: Any) -> None:
    _, outputs = stack
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=outputs["Bucket"], Key="vision/blobs/sha256/ab/" + "ab" * 32, Body=b"x")
    assert s3.head_object(Bucket=outputs["Bucket"], Key="vision/blobs/sha256/ab/" + "ab" * 32)["ContentLength"] == 1


def test_the_deployed_bus_is_archived_and_the_queues_are_there(stack: Any) -> None:
    events = boto3.client("events", region_name=REGION)
    bus = events.describe_event_bus(Name=BUS)
    (archive,) = events.list_archives(EventSourceArn=bus["Arn"])["Archives"]
    assert archive["State"] == "ENABLED"
    sqs = boto3.client("sqs", region_name=REGION)
    queues = sqs.list_queues()["QueueUrls"]
    assert len(queues) == 4  # lineage, its dead-letter queue, the publisher's and the verifier's failure queues
