"""The example caller policies in infra/policies: they parse, grant execute-api:Invoke on the stack's
API only, and each resource names routes that exist (the API's OpenAPI document), no more than meant."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from cfnlint.api import lint_file

from artreg.api.app import build_app
from tests.support.template import REPO_ROOT, load_template

POLICIES = REPO_ROOT / "infra" / "policies"
VALUES = {"Partition": "aws", "Region": "eu-west-1", "AccountId": "123456789012", "ApiId": "a1b2c3d4e5"}
VALUES |= {"Project": "vision"}
API_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/$default/"
SAMPLES = {"name": "resnet", "ref": "1.2.0", "upload_id": "u" * 26, "sha256": "a" * 64, "alias": "production"}
SAMPLES |= {"name_ref": "resnet@production", "run_id": "run-7"}


def _routes(project: str) -> set[tuple[str, str]]:
    """(METHOD, a path it answers) for every route of the OpenAPI document, in `project`."""
    schema = build_app(MagicMock()).get_openapi_schema()
    routes = set()
    for template, item in schema.paths.items():
        path = template.replace("/.+", "/model/weights.pt").replace("{project}", project)
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)
        for method in ("get", "post", "put", "patch", "delete"):
            if getattr(item, method) is not None:
                routes.add((method.upper(), path))
    return routes


ROUTES = _routes("vision") | _routes("other")


def _policy(name: str) -> dict[str, Any]:
    text = (POLICIES / name).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders <= set(VALUES), placeholders - set(VALUES)
    for key, value in VALUES.items():
        text = text.replace("${" + key + "}", value)
    document: dict[str, Any] = json.loads(text)
    return document


def _allowed(policy: dict[str, Any]) -> set[tuple[str, str]]:
    """The routes (of ROUTES) that some resource of the policy matches, as IAM matches ARN wildcards."""
    allowed = set()
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            pattern = re.compile(".*".join(re.escape(part) for part in resource.split("*")))
            allowed |= {(m, p) for m, p in ROUTES if pattern.fullmatch(f"{API_ARN}{m}{p}")}
    return allowed


@pytest.mark.parametrize("name", sorted(p.name for p in POLICIES.glob("*.json")))
def test_each_policy_parses_and_each_resource_names_existing_routes(name: str) -> None:
    # Given an example policy, its placeholders filled in
    policy = _policy(name)
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        # Then it only invokes the registry's API, on its stage
        assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke")
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource.startswith(API_ARN), resource
            method = resource.removeprefix(API_ARN).split("/", 1)[0]
            assert method in {"GET", "POST", "PUT", "PATCH", "DELETE", "*"}, resource
            # And each resource matches at least one route the API has
            assert _allowed({"Statement": [{"Resource": resource}]}), resource


@pytest.mark.parametrize("name", sorted(p.name for p in POLICIES.glob("*.json")))
def test_each_policy_names_its_partition_as_a_placeholder(name: str) -> None:
    # Given an example policy as written, before its placeholders are filled in
    document = json.loads((POLICIES / name).read_text())
    statements = document["Statement"]
    resources = [r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]
    # Then every resource takes its partition from ${Partition}, as the README says (aws-cn, aws-us-gov too)
    assert all(r.startswith("arn:${Partition}:execute-api:") for r in resources), resources


def test_the_api_is_served_on_the_default_stage() -> None:
    from tests.infra.test_template import _translate

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        translated = _translate()
    stages = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert [s["Properties"]["StageName"] for s in stages] == ["$default"]


def test_the_deploy_role_may_only_resolve_and_download() -> None:
    allowed = _allowed(_policy("deploy-readonly-role.json"))
    assert {m for m, _ in allowed} == {"GET"}
    paths = {p for _, p in allowed}
    assert "/v1/resolve/vision/resnet@production" in paths
    assert any(p.endswith("/files/model/weights.pt") for p in paths)
    assert any(p.endswith("/download") for p in paths)
    assert not any(p.endswith(("/lineage", "/history", "/versions", "/artifacts")) for p in paths)


def test_the_training_role_logs_and_reads_in_its_project_only() -> None:
    allowed = _allowed(_policy("training-role.json"))
    # It can log a version in its project
    commit = "/v1/projects/vision/artifacts/resnet/uploads/" + "u" * 26 + "/commit"
    assert ("POST", "/v1/projects/vision/artifacts/resnet/uploads") in allowed
    assert ("POST", commit) in allowed
    assert ("POST", "/v1/projects/vision/artifacts/resnet/versions/1.2.0/usages") in allowed
    assert ("GET", "/v1/resolve/vision/resnet@production") in allowed
    # But touches no other project
    assert not any("/other/" in p or p.endswith("/other") for _, p in allowed)
    # And may link and unlink versions of its project (a model version gathering its checkpoints)
    link = "/v1/projects/vision/artifacts/resnet/versions/1.2.0/links/model/weights.pt"
    assert {("PUT", link), ("DELETE", link)} <= allowed
    # But neither deletes versions nor moves aliases: its only PUT and DELETE routes are the links'
    assert all("/links/" in p for m, p in allowed if m in ("DELETE", "PUT")), allowed
    assert ("PUT", "/v1/projects/vision/artifacts/resnet/aliases/production") not in allowed


def test_the_training_role_cannot_move_a_protected_alias_by_logging() -> None:
    # Given the registry's default settings and the training role's routes
    from artreg.settings import RegistrySettings

    protected = RegistrySettings().protected_aliases
    allowed = _allowed(_policy("training-role.json"))
    # Then production is protected, so the upload route it may call refuses to move it (tests/integration/test_trust.py)
    assert "production" in protected
    assert ("POST", "/v1/projects/vision/artifacts/resnet/uploads") in allowed
    # And no route it may call names a protected alias in its path
    assert not any(p.rsplit("/", 1)[-1] in protected and "/aliases/" in p for _, p in allowed)


def test_the_release_role_may_only_move_production_in_its_project_and_read() -> None:
    allowed = _allowed(_policy("release-role.json"))
    # It can move and remove production in its project
    assert ("PUT", "/v1/projects/vision/artifacts/resnet/aliases/production") in allowed
    assert ("DELETE", "/v1/projects/vision/artifacts/resnet/aliases/production") in allowed
    # But cannot log, delete versions, or touch another project
    assert {m for m, _ in allowed} == {"GET", "PUT", "DELETE"}
    assert all(p.endswith("/aliases/production") for m, p in allowed if m != "GET")
    assert not any("/other/" in p or p.endswith("/other") for _, p in allowed)


def test_the_admin_role_may_call_every_route() -> None:
    assert _allowed(_policy("admin-role.json")) == ROUTES


def test_every_policy_is_in_the_readme() -> None:
    readme = (Path(REPO_ROOT) / "README.md").read_text()
    for path in POLICIES.glob("*.json"):
        assert f"infra/policies/{path.name}" in readme


def test_samconfig_overrides_only_parameters_the_template_has() -> None:
    import tomllib

    from tests.support.template import load_template

    config = tomllib.loads((REPO_ROOT / "infra" / "samconfig.toml").read_text())
    parameters = set(load_template()["Parameters"])
    for env in ("default", "dev"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        names = {override.split("=", 1)[0] for override in deploy["parameter_overrides"]}
        assert names <= parameters, names - parameters
    assert config["default"]["build"]["parameters"]["use_container"] is False


# ---------------------------------------------------------------- other accounts

CROSS_ACCOUNT = REPO_ROOT / "infra" / "cross-account"


def _caller_role_policies() -> dict[str, list[dict[str, Any]]]:
    """The caller role's statements for each Access, its Fn::Sub resources written as the JSON files' are."""
    template = load_template(CROSS_ACCOUNT / "caller-role.yaml")
    conditions = template["Conditions"]
    policies = {}
    for policy in template["Resources"]["CallerRole"]["Properties"]["Policies"]:
        condition, chosen, otherwise = policy["Fn::If"]
        assert otherwise == {"Ref": "AWS::NoValue"}
        (access,) = {v for v in conditions[condition]["Fn::Equals"] if isinstance(v, str)}
        assert chosen["PolicyName"] == f"{access}-role"
        text = json.dumps(chosen["PolicyDocument"]["Statement"])
        text = re.sub(r'\{"Fn::Sub": ("[^"]*")\}', r"\1", text).replace("${AWS::", "${")
        policies[access] = json.loads(text)
    return policies


def test_the_cross_account_role_grants_what_the_example_policies_do() -> None:
    # Given the role other accounts' jobs assume, for each kind of access it offers
    policies = _caller_role_policies()
    assert set(policies) == set(
        load_template(CROSS_ACCOUNT / "caller-role.yaml")["Parameters"]["Access"]["AllowedValues"]
    )
    for access, statements in policies.items():
        # Then its statements are those of infra/policies/<access>-role.json, which the tests above check
        example = json.loads((POLICIES / f"{access}-role.json").read_text())["Statement"]
        assert _listed(statements) == _listed(example), access


def _listed(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements with each Resource as a list (one resource may be written either way)."""
    return [s | {"Resource": s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]} for s in statements]


def test_only_jobs_of_the_trusted_accounts_with_the_external_id_or_of_the_organization_may_assume_it() -> None:
    template = load_template(CROSS_ACCOUNT / "caller-role.yaml")
    (trust,) = template["Resources"]["CallerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "TrustedAccountIds"}}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"] == {
        "sts:ExternalId": {"Fn::If": ["HasExternalId", {"Ref": "ExternalId"}, {"Ref": "AWS::NoValue"}]},
        "aws:PrincipalOrgID": {"Fn::If": ["HasOrganization", {"Ref": "OrganizationId"}, {"Ref": "AWS::NoValue"}]},
    }
    # And the stack refuses to make a role with neither condition
    (rule,) = template["Rules"].values()
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExternalId"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]},
        ]
    }
    assert template["Parameters"]["ExternalId"]["NoEcho"] is True


@pytest.mark.parametrize("name", sorted(p.name for p in CROSS_ACCOUNT.glob("*.yaml")))
def test_the_cross_account_templates_lint_clean(name: str) -> None:
    matches = lint_file(CROSS_ACCOUNT / name, config={"regions": ["us-east-1", "eu-west-1"]})
    assert [str(m) for m in matches if m.rule.id[0] in "EW"] == []


def test_another_accounts_rule_asks_for_events_the_registry_publishes() -> None:
    template = load_template(CROSS_ACCOUNT / "event-consumer.yaml")
    parameters = template["Parameters"]
    registry = load_template()["Parameters"]
    schemas = {p.stem for p in (REPO_ROOT / "layer" / "artreg" / "events" / "schemas").glob("*.json")}
    assert parameters["EventSource"]["Default"] == registry["EventSource"]["Default"]
    assert set(parameters["DetailTypes"]["Default"].split(",")) <= schemas
    rule = template["Resources"]["ForwardRegistryEvents"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "RegistryEventBusArn"}
    # And the registry's bus policy lets the listed accounts manage such rules: test_operations.py


def test_the_job_side_policy_assumes_one_role() -> None:
    text = (CROSS_ACCOUNT / "job-assume-role.json").read_text()
    policy = json.loads(
        text.replace("${Partition}", "aws")
        .replace("${RegistryAccountId}", "123456789012")
        .replace("${RoleName}", "artreg-training")
    )
    (statement,) = policy["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "sts:AssumeRole",
        "arn:aws:iam::123456789012:role/artreg-training",
    )
