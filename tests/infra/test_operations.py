"""template.yaml as an operator runs it: alarms and where they go, the dashboard, throttling and
concurrency, the permissions boundary and the KMS key on everything that takes them, the custom domain,
partition-aware names, the metrics namespace, retained queues, and the API function's canary."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from samtranslator.translator.arn_generator import ArnGenerator

from tests.infra.test_template import KEY, REGION, _resources, _translate
from tests.support.template import REPO_ROOT, condition_holds, load_template, with_parameters

FUNCTIONS = ("ApiFunction", "PublisherFunction", "LineageFunction", "JanitorFunction", "VerifierFunction")
BOUNDARY = "arn:aws:iam::123456789012:policy/team-boundary"
TOPIC = {"Ref": "AlarmTopic"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        return _translate()


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in _resources(template, "AWS::CloudWatch::Alarm").items()}


def _watching(alarms: dict[str, dict[str, Any]], namespace: str, metric: str) -> dict[str, dict[str, Any]]:
    """The alarms on one metric, by what its first dimension names."""
    found = {}
    for alarm in alarms.values():
        if (alarm.get("Namespace"), alarm.get("MetricName")) == (namespace, metric):
            value = alarm["Dimensions"][0]["Value"]
            found[value.get("Ref") or value["Fn::GetAtt"][0]] = alarm
    return found


# ---------------------------------------------------------------- alarms


def test_every_alarm_notifies_the_stacks_topic_and_the_given_one(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    # 5 functions x 2, iterator age, 5xx, latency, table throttles, 3 dead letters, the janitor's two walks' ages
    assert len(alarms) == 19
    for name, alarm in alarms.items():
        # Then each notifies the stack's topic, and AlarmTopicArn when one is given
        assert with_parameters(translated, alarm["AlarmActions"]) == [TOPIC], name
        given = "arn:aws:sns:eu-west-1:123456789012:oncall"
        assert with_parameters(translated, alarm["AlarmActions"], {"AlarmTopicArn": given}) == [TOPIC, given], name
        # (a janitor that reports nothing is behind: see below)
        walk = name in ("JanitorWalkAgeAlarm", "JanitorRemoteWalkAgeAlarm")
        assert alarm["TreatMissingData"] == ("breaching" if walk else "notBreaching"), name


def test_the_janitor_falling_behind_sets_an_alarm_off(translated: dict[str, Any]) -> None:
    # Given the alarm on the janitor's walk age, as the janitor function publishes it
    alarm = _alarms(translated)["JanitorWalkAgeAlarm"]
    function = translated["Resources"]["JanitorFunction"]["Properties"]
    namespace = function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    # Then it watches the metric the function emits (app.py), in the stack's namespace, with Powertools'
    # service dimension
    source = (REPO_ROOT / "functions" / "janitor" / "app.py").read_text()
    assert f'name="{alarm["MetricName"]}"' in source
    assert alarm["Namespace"] == namespace
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "artreg"}]
    # And it goes off when no walk has finished in two days, for three hourly runs in a row
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "GreaterThanThreshold",
        2 * 24 * 3600,
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3600, 3, 3)
    # And when the hourly runs stop reporting at all, since the function is then not running
    assert alarm["TreatMissingData"] == "breaching"


def test_the_remote_reference_walk_falling_behind_sets_an_alarm_off(translated: dict[str, Any]) -> None:
    # Given the alarm on the age of the walk that re-reads pinned remote references, and the daily schedule
    alarm = _alarms(translated)["JanitorRemoteWalkAgeAlarm"]
    function = translated["Resources"]["JanitorFunction"]["Properties"]
    namespace = function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    (daily,) = [
        r["Properties"]
        for r in _resources(translated, "AWS::Events::Rule").values()
        if json.loads(r["Properties"]["Targets"][0].get("Input", "{}")).get("task") == "remote-refs"
    ]
    assert re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", daily["ScheduleExpression"])  # once a day
    # Then it watches the metric the function emits on its daily run, in the stack's namespace
    source = (REPO_ROOT / "functions" / "janitor" / "app.py").read_text()
    assert f'name="{alarm["MetricName"]}"' in source
    assert alarm["MetricName"] != _alarms(translated)["JanitorWalkAgeAlarm"]["MetricName"]
    assert alarm["Namespace"] == namespace
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "artreg"}]
    # And it goes off when no walk has finished in a week, two daily runs in a row (one run a period)
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "GreaterThanThreshold",
        7 * 24 * 3600,
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (24 * 3600, 2, 2)
    # And when the daily runs stop reporting at all
    assert alarm["TreatMissingData"] == "breaching"


def test_every_function_has_its_errors_and_throttles_alarms(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    for metric in ("Errors", "Throttles"):
        watched = _watching(alarms, "AWS/Lambda", metric)
        # Then any error or throttle of any function, within a minute, sets its alarm off
        assert set(watched) == set(FUNCTIONS), metric
        for alarm in watched.values():
            assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
                "Sum",
                0,
                "GreaterThanThreshold",
            )
            assert alarm["Period"] * alarm["EvaluationPeriods"] <= 300


def test_the_publisher_has_an_iterator_age_alarm(translated: dict[str, Any]) -> None:
    (alarm,) = _watching(_alarms(translated), "AWS/Lambda", "IteratorAge").values()
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "PublisherFunction"}}]
    assert alarm["Statistic"] == "Maximum"
    # events more than a minute late, for minutes: well before the stream's 24 hours run out
    assert 0 < alarm["Threshold"] <= 5 * 60 * 1000


def test_the_api_and_the_table_are_alarmed(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    stage = [{"Name": "ApiId", "Value": {"Ref": "Api"}}, {"Name": "Stage", "Value": "$default"}]
    errors = alarms["Api5xxAlarm"]
    assert (errors["Namespace"], errors["MetricName"], errors["Dimensions"]) == ("AWS/ApiGateway", "5xx", stage)
    latency = alarms["ApiLatencyAlarm"]
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Dimensions"]) == ("Latency", "p99", stage)
    assert latency["Threshold"] < 29_000  # under the functions' timeout, or it would never go off
    throttled = {
        (m["MetricStat"]["Metric"]["MetricName"], json.dumps(m["MetricStat"]["Metric"]["Dimensions"]))
        for m in alarms["TableThrottlesAlarm"]["Metrics"]
        if "MetricStat" in m
    }
    table = json.dumps([{"Name": "TableName", "Value": {"Ref": "Table"}}])
    assert throttled == {("ReadThrottleEvents", table), ("WriteThrottleEvents", table)}


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    topic = resources["AlarmTopic"]["Properties"]
    # Without KmsKeyArn, the stack's own key, which lets CloudWatch publish (SNS's AWS-managed key does not)
    assert with_parameters(translated, topic)["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    assert condition_holds(translated, resources["AlarmTopicKey"]["Condition"])
    assert not condition_holds(translated, resources["AlarmTopicKey"]["Condition"], {"KmsKeyArn": KEY})
    key = resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert [sorted(s["Action"]) for s in cloudwatch] == [["kms:Decrypt", "kms:GenerateDataKey*"]]
    # With it, that key
    assert with_parameters(translated, topic, {"KmsKeyArn": KEY})["KmsMasterKeyId"] == KEY
    # And an e-mail subscription only when an address is given
    subscription = resources["AlarmEmailSubscription"]
    assert not condition_holds(translated, subscription["Condition"])
    assert condition_holds(translated, subscription["Condition"], {"AlarmEmail": "oncall@example.com"})
    assert subscription["Properties"]["TopicArn"] == TOPIC


# ---------------------------------------------------------------- dashboard


def _code_metrics() -> set[str]:
    """The metric names the functions and the layer publish (Powertools' add_metric(name=...))."""
    names = set()
    for path in [*(REPO_ROOT / "layer" / "artreg").rglob("*.py"), *(REPO_ROOT / "functions").rglob("*.py")]:
        text = path.read_text()
        if "add_metric" in text:
            names |= set(re.findall(r'name="(\w+)"', text))
    return names


def test_the_dashboard_shows_the_registrys_metrics_beside_the_services(translated: dict[str, Any]) -> None:
    # Given the dashboard's body, its placeholders filled in
    body, variables = translated["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    placeholders = set(re.findall(r"\$\{([^}]+)\}", body))
    assert variables["Namespace"] == {
        "Fn::If": ["HasMetricsNamespace", {"Ref": "MetricsNamespace"}, {"Ref": "AWS::StackName"}]
    }
    for name in placeholders:  # each names a parameter, a resource (or its attribute) or a pseudo parameter
        root = name.split(".")[0]
        assert (
            root in translated["Resources"]
            or root in translated["Parameters"]
            or root in variables
            or root.startswith("AWS::")
        ), name
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    metrics = [m for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]]
    namespaces = {m[0] for m in metrics}
    # Then it shows the registry's own metrics, in the stack's namespace, beside AWS's
    assert {"x", "AWS/Lambda", "AWS/ApiGateway", "AWS/DynamoDB", "AWS/SQS"} <= namespaces
    own = {m[1] for m in metrics if m[0] == "x"}
    assert own >= {"Commits", "CommitRetries", "BytesOffered", "BytesDeduplicated", "ResolveLatency"}
    # And each is a metric the code publishes, with the service dimension Powertools adds
    assert own <= _code_metrics(), own - _code_metrics()
    assert all(m[2:4] == ["service", "artreg"] for m in metrics if m[0] == "x")
    # And its alarm widget lists every alarm
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    listed = {a.removeprefix("${").removesuffix(".Arn}") for a in re.findall(r"\$\{\w+\.Arn\}", body)}
    assert len(alarm_widget["properties"]["alarms"]) == len(listed)
    assert listed == set(_alarms(translated))


def test_the_functions_publish_in_the_stacks_namespace(translated: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        variables = translated["Resources"][name]["Properties"]["Environment"]["Variables"]
        namespace = variables["POWERTOOLS_METRICS_NAMESPACE"]
        # Then by default the stack's name (two stacks in one account keep their metrics apart), or the parameter
        assert with_parameters(translated, namespace) == {"Ref": "AWS::StackName"}, name
        assert with_parameters(translated, namespace, {"MetricsNamespace": "ml/registry"}) == "ml/registry", name


# ---------------------------------------------------------------- throttling and concurrency


def test_the_api_stage_is_throttled(translated: dict[str, Any]) -> None:
    (stage,) = _resources(translated, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    parameters = translated["Parameters"]
    rate, burst = parameters["ApiThrottlingRateLimit"]["Default"], parameters["ApiThrottlingBurstLimit"]["Default"]
    # well under the account's default (10,000 a second), and a burst of at least a second's worth
    assert 0 < rate <= 1000
    assert burst >= rate


def test_the_janitor_never_runs_twice_at_once_and_the_api_may_be_capped(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    assert resources["JanitorFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1
    api = resources["ApiFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in with_parameters(translated, api)
    capped = with_parameters(translated, api, {"ApiReservedConcurrency": 50})
    assert capped["ReservedConcurrentExecutions"] == 50


# ---------------------------------------------------------------- retention, boundary, key


def test_the_queues_are_retained_like_the_table(translated: dict[str, Any]) -> None:
    queues = _resources(translated, "AWS::SQS::Queue")
    assert len(queues) == 4
    for name, queue in queues.items():
        assert (queue["DeletionPolicy"], queue["UpdateReplacePolicy"]) == ("Retain", "Retain"), name


def test_the_permissions_boundary_is_on_every_role(translated: dict[str, Any]) -> None:
    roles = _resources(translated, "AWS::IAM::Role")
    # SAM's roles of the five functions, and CodeDeploy's
    assert {f"{f}Role" for f in FUNCTIONS} | {"ApiDeploymentRole"} == set(roles)
    for name, role in roles.items():
        assert "PermissionsBoundary" not in with_parameters(translated, role["Properties"]), name
        bounded = with_parameters(translated, role["Properties"], {"PermissionsBoundaryArn": BOUNDARY})
        assert bounded["PermissionsBoundary"] == BOUNDARY, name


KEYED = {  # resource type -> the property that names its key
    "AWS::DynamoDB::Table": ("SSESpecification", "KMSMasterKeyId"),
    "AWS::S3::Bucket": (
        "BucketEncryption",
        "ServerSideEncryptionConfiguration",
        0,
        "ServerSideEncryptionByDefault",
        "KMSMasterKeyID",
    ),
    "AWS::SQS::Queue": ("KmsMasterKeyId",),
    "AWS::Logs::LogGroup": ("KmsKeyId",),
    "AWS::Events::EventBus": ("KmsKeyIdentifier",),
    "AWS::Events::Archive": ("KmsKeyIdentifier",),
    "AWS::SNS::Topic": ("KmsMasterKeyId",),
}


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step] if isinstance(step, int) or step in value else None
        if value is None:
            return None
    return value


def test_the_kms_key_encrypts_every_resource_that_takes_one(translated: dict[str, Any]) -> None:
    resources = [(n, r) for n, r in translated["Resources"].items() if r["Type"] in KEYED]
    assert {r["Type"] for _, r in resources} == set(KEYED)
    assert len([1 for _, r in resources if r["Type"] == "AWS::Logs::LogGroup"]) == 6
    for name, resource in resources:
        path = KEYED[resource["Type"]]
        with_key = with_parameters(translated, resource["Properties"], {"KmsKeyArn": KEY})
        # Then with KmsKeyArn every one of them names it
        assert _at(with_key, path) == KEY, name
        # And without, none names a key but the alarm topic's own
        without = _at(with_parameters(translated, resource["Properties"]), path)
        assert without in (None, {"Ref": "AlarmTopicKey"}), name
    table = with_parameters(translated, translated["Resources"]["Table"]["Properties"], {"KmsKeyArn": KEY})
    assert table["SSESpecification"]["SSEType"] == "KMS"


def test_each_function_may_use_the_key_only_through_the_services_it_calls(translated: dict[str, Any]) -> None:
    expected = {
        "ApiFunctionRole": {"dynamodb", "s3"},
        "PublisherFunctionRole": {"dynamodb", "events", "sqs"},
        "LineageFunctionRole": {"dynamodb", "sqs"},
        "JanitorFunctionRole": {"dynamodb", "s3"},
        "VerifierFunctionRole": {"s3", "sqs"},
    }
    for role, services in expected.items():
        policies = translated["Resources"][role]["Properties"]["Policies"]
        for parameters, count in (({}, 0), ({"KmsKeyArn": KEY}, 1)):
            statements = [
                s
                for p in with_parameters(translated, policies, parameters)
                for s in p["PolicyDocument"]["Statement"]
                if any(a.startswith("kms:") for a in s["Action"])
            ]
            assert len(statements) == count, (role, parameters)
            for statement in statements:
                assert statement["Resource"] == KEY
                assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
                via = statement["Condition"]["StringEquals"]["kms:ViaService"]
                assert {v["Fn::Sub"].split(".")[0] for v in via} == services, role


# ---------------------------------------------------------------- domain, partition


def test_a_custom_domain_is_made_only_with_its_name_and_certificate(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    domain = {
        "DomainName": "registry.example.com",
        "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x",
    }
    for name in ("ApiDomain", "ApiDomainMapping"):
        condition = resources[name]["Condition"]
        assert not condition_holds(translated, condition), name
        assert condition_holds(translated, condition, domain), name
    configuration = resources["ApiDomain"]["Properties"]["DomainNameConfigurations"][0]
    assert configuration == {
        "CertificateArn": {"Ref": "CertificateArn"},
        "EndpointType": "REGIONAL",
        "SecurityPolicy": "TLS_1_2",
    }
    mapping = resources["ApiDomainMapping"]["Properties"]
    assert (mapping["ApiId"], mapping["DomainName"]) == ({"Ref": "Api"}, {"Ref": "ApiDomain"})
    outputs = translated["Outputs"]
    assert {outputs[o]["Condition"] for o in ("CustomDomainUrl", "CustomDomainTarget")} == {"HasCustomDomain"}
    # And a domain without a certificate is refused before anything is made
    (rule,) = translated["Rules"].values()
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, str):
        yield key, value


def test_no_partition_or_endpoint_is_hard_coded() -> None:
    # Given the template as SAM makes it in the China partition
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "cn-north-1")
        # the translator keeps the first region it found (it runs in one region, on CloudFormation)
        patch.setattr(ArnGenerator, "BOTO_SESSION_REGION_NAME", "cn-north-1")
        china = _translate()
    for template in (load_template(), china):
        for key, text in _strings({k: template[k] for k in ("Resources", "Outputs")}):
            # Then no ARN says `aws` and no host `amazonaws.com` (AWS::Partition and AWS::URLSuffix do),
            # but a service principal, whose name is the same in every partition
            assert "arn:aws:" not in text, text
            assert "amazonaws.com" not in text or key in {"Service", "Principal"}, (key, text)
    # And the managed policies SAM attaches are China's
    managed = [
        json.dumps(a)
        for r in _resources(china, "AWS::IAM::Role").values()
        for a in r["Properties"]["ManagedPolicyArns"]
    ]
    assert managed
    assert all("arn:aws-cn:" in a or "${AWS::Partition}" in a for a in managed), managed


# ---------------------------------------------------------------- gradual deployment


def test_the_api_function_is_deployed_by_canary_and_rolled_back_on_the_apis_alarms(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    (alias,) = _resources(translated, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]
    (group,) = _resources(translated, "AWS::CodeDeploy::DeploymentGroup").values()
    properties = group["Properties"]
    assert "DEPLOYMENT_STOP_ON_ALARM" in properties["AutoRollbackConfiguration"]["Events"]
    assert {a["Name"]["Ref"] for a in properties["AlarmConfiguration"]["Alarms"]} == {
        "ApiFunctionErrorsAlarm",
        "Api5xxAlarm",
        "ApiLatencyAlarm",
    }
    assert properties["ServiceRoleArn"] == {"Fn::GetAtt": ["ApiDeploymentRole", "Arn"]}
    assert translated["Parameters"]["ApiDeploymentType"]["Default"].startswith("Canary")
    # And the API calls the alias, which lets it
    body = resources["Api"]["Properties"]["Body"]
    (operation,) = body["paths"]["/{proxy+}"].values()
    assert operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"].endswith(":${ApiFunction}:live/invocations")
    permission = resources["ApiInvokesFunction"]["Properties"]
    assert permission["FunctionName"] == {"Ref": alias_name(translated)}
    assert permission["Principal"] == "apigateway.amazonaws.com"


def alias_name(template: dict[str, Any]) -> str:
    (name,) = _resources(template, "AWS::Lambda::Alias")
    return name


# ---------------------------------------------------------------- cross-account events


def test_listed_accounts_may_manage_their_own_rules_on_the_bus_only(translated: dict[str, Any]) -> None:
    policy = translated["Resources"]["EventConsumerRules"]
    assert not condition_holds(translated, policy["Condition"])
    assert condition_holds(translated, policy["Condition"], {"EventConsumerAccountIds": "111122223333"})
    statement = policy["Properties"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "EventConsumerAccountIds"}}
    assert not [a for a in statement["Action"] if a in {"events:PutEvents", "events:*"}]
    assert statement["Resource"]["Fn::Sub"].endswith(":rule/${EventBus}/*")
    # rules that account created, and no other
    assert statement["Condition"] == {"StringEqualsIfExists": {"events:creatorAccount": "${aws:PrincipalAccount}"}}
