"""What the API function's import leaves for later (its cold start, benchmarks/cold_start.py): no
client, no botocore and no pydantic validator is made or loaded before a request needs it. Checked in a
fresh process, since this test process has long made all of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# the import, then what it made: clients (lru_cache'd makers) and validators (a deferred model has
# none until its first use)
PROBE = """
import json, sys
NOT_FOR_A_RESOLVE = %r
import app
from artreg.aws import clients
from artreg.model import manifest, wire
from artreg.registry import cursors, records
print(json.dumps({
    "clients": [f.__name__ for f in (clients.dynamodb_client, clients.s3_client, clients.events_client)
                if f.cache_info().currsize],
    "built": [m.__name__ for m in (wire.VersionRecord, wire.StartUpload, wire.ErrorBody, records.Head,
                                   records.StoredVersion, cursors.BeforeVersion) if m.__pydantic_complete__],
    "manifest_adapter_built": manifest.ENTRIES.pydantic_complete,
    "loaded": sorted(m for m in sys.modules if m in NOT_FOR_A_RESOLVE),
    # Powertools builds a route's Dependant (a pydantic adapter per parameter and documented answer) on
    # the route's first request; were it to build them at registration again, every route would pay at import
    "dependants": [r.func.__name__ for r in app.app._static_routes + app.app._dynamic_routes if r._dependant],
    # the clients are botocore's: boto3 would load s3transfer, which nothing here uses
    "sdk": sorted(m for m in ("boto3", "s3transfer") if m in sys.modules),
}))
"""
# the first AWS call with tracing on, as on Lambda: X-Ray must still wrap botocore's calls. botocore's
# session and client modules (and its documentation machinery) load with the first client
TRACED_PROBE = """
import json, sys
import app
loaded_at_import = sorted(m for m in ("botocore.session", "botocore.client") if m in sys.modules)
from artreg.aws import clients
clients.deferred(clients.dynamodb_client).meta  # the DynamoDB client, made on first use as the registry's is
import botocore.client
print(json.dumps({"loaded_at_import": loaded_at_import, "traced": getattr(botocore.client, "_xray_enabled", False)}))
"""
# the collector as the import leaves it, then as the first client leaves it
GC_PROBE = """
import gc, json
import app
imported = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
from artreg.aws import clients
clients.deferred(clients.dynamodb_client).meta
print(json.dumps({"import": imported, "client": {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}))
"""
# a resolve on moto (of an artifact the table does not hold: a 404 in API.md's shape), then what it built
RESOLVE_PROBE = """
import json
from moto import mock_aws
with mock_aws():
    import boto3
    from tests.support.template import create_table
    create_table(boto3.client("dynamodb"), "artreg-test")
    import app
    from tests.conftest import api_event
    from tests.support.lambda_context import LambdaContext
    from artreg.model import wire
    from artreg.registry import cursors, records
    answer = app.lambda_handler(api_event("GET", "/v1/resolve/vision/resnet@staging"), LambdaContext())
print(json.dumps({
    "status": answer["statusCode"],
    "code": json.loads(answer["body"])["error"]["code"],
    "dependants": [r.func.__name__ for r in app.app._static_routes + app.app._dynamic_routes if r._dependant],
    "built": [m.__name__ for m in (wire.StartUpload, wire.AddFiles, wire.CompleteBlob, wire.UploadStarted,
                                   wire.VersionPage, wire.LineageGraph, records.Upload, cursors.BeforeVersion)
              if m.__pydantic_complete__],
}))
"""
# what the other functions (janitor, lineage, publisher), only a keyed POST, only a version string or only
# the SDK use
NOT_FOR_A_RESOLVE = (
    "artreg.registry.janitor",
    "artreg.registry.janitor_walks",
    "artreg.registry.lineage",
    "artreg.aws.eventbridge",
    "artreg.events",
    "aws_lambda_powertools.utilities.idempotency",
    "semver",  # parses version strings only: a resolve of an alias never needs it
    "pydantic_settings",  # the SDK's settings file; the functions read their ARTREG_* with pydantic alone
)


# the API function's environment
ENV = {
    "PYTHONPATH": str(ROOT / "layer"),
    "AWS_DEFAULT_REGION": "us-east-1",
    "ARTREG_TABLE_NAME": "artreg-test",
    "ARTREG_BUCKET_NAME": "artreg-test-blobs",
    "ARTREG_EVENT_BUS_NAME": "artreg-test",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "artreg",
}


def _import_in_a_fresh_process(probe: str, env: dict[str, str]) -> dict[str, Any]:
    """Imports the handler module as Lambda does (its folder the working directory), then runs `probe`."""
    base = {k: v for k, v in os.environ.items() if k != "LAMBDA_TASK_ROOT"}
    where = ROOT / "functions" / "api"
    command = [sys.executable, "-c", probe]
    child = subprocess.run(command, cwd=where, env={**base, **env}, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    made: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return made


def test_importing_the_api_function_makes_no_client_and_builds_no_model() -> None:
    # Given the API function's environment
    # When a fresh process imports its handler module, as Lambda does
    made = _import_in_a_fresh_process(PROBE % (NOT_FOR_A_RESOLVE,), ENV)
    # Then no AWS client was made (a resolve makes DynamoDB's; only a keyed POST, the idempotency store)
    assert made["clients"] == []
    # And no model built its validator yet: a request builds those it touches
    assert made["built"] == []
    assert made["manifest_adapter_built"] is False
    # And nothing that only the other functions, or only a POST with an Idempotency-Key, use was imported
    assert made["loaded"] == []
    # And no route built the models its validation uses (Powertools does that at a route's first request)
    assert made["dependants"] == []
    # And neither boto3 nor its s3transfer was imported, nor botocore's session and client
    assert made["sdk"] == []


def test_where_lambda_initializes_ahead_of_requests_the_import_makes_the_dynamodb_client() -> None:
    # Given the API function's environment under provisioned concurrency or SnapStart, where no request
    # waits for the import, then on demand
    for kind, made_at_import in (
        ("provisioned-concurrency", ["dynamodb_client"]),
        ("snap-start", ["dynamodb_client"]),
        ("on-demand", []),
    ):
        # When a fresh process imports its handler module
        made = _import_in_a_fresh_process(PROBE % (NOT_FOR_A_RESOLVE,), {**ENV, "AWS_LAMBDA_INITIALIZATION_TYPE": kind})
        # Then the import made the client the first request needs only where no request waits for it
        assert made["clients"] == made_at_import, kind


def test_the_first_aws_call_loads_botocore_traced_by_x_ray() -> None:
    # Given the API function's environment on Lambda, tracing on as `Tracing: Active` has it (off Lambda,
    # X-Ray's centralized sampler loads botocore itself)
    traced = {k: v for k, v in ENV.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    traced |= {"LAMBDA_TASK_ROOT": str(ROOT / "functions" / "api"), "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}
    traced |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    # When a fresh process imports its handler module, then makes its first client
    made = _import_in_a_fresh_process(TRACED_PROBE, traced)
    # Then botocore was loaded by the client, not by the import
    assert made["loaded_at_import"] == []
    # And X-Ray patched it before the client's first call: every AWS call is still a subsegment
    assert made["traced"] is True


def test_on_lambda_the_import_and_first_client_leave_the_collector_on_and_their_objects_out_of_its_passes() -> None:
    # Given the API function's environment on Lambda (which names the task root), then anywhere else
    on_lambda = {**ENV, "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "api")}
    # When a fresh process imports its handler module
    lambda_gc, elsewhere_gc = (_import_in_a_fresh_process(GC_PROBE, env) for env in (on_lambda, ENV))
    # Then on Lambda the collector is on again, and what the import made is frozen (never walked again)
    assert lambda_gc["import"]["enabled"] is True
    assert lambda_gc["import"]["frozen"] > 10_000
    # And so are botocore's modules and the client's service model, once the first client is made
    assert lambda_gc["client"]["enabled"] is True
    assert lambda_gc["client"]["frozen"] > lambda_gc["import"]["frozen"] + 10_000
    # And elsewhere (the tests, which import the handler afresh many times) nothing is frozen
    assert elsewhere_gc["import"] == elsewhere_gc["client"] == {"enabled": True, "frozen": 0}


def test_a_resolve_builds_the_validation_of_its_own_route_only() -> None:
    # Given the API function's environment, on moto
    on_moto = {**ENV, "PYTHONPATH": f"{ROOT / 'layer'}{os.pathsep}{ROOT}"}
    on_moto |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    # When a fresh process imports its handler module and resolves an alias the registry does not hold
    made = _import_in_a_fresh_process(RESOLVE_PROBE, on_moto)
    # Then the answer is API.md's 404
    assert (made["status"], made["code"]) == (404, "not_found")
    # And only the resolve route built its Dependant (the pydantic adapters its validation uses)
    assert made["dependants"] == ["resolve"]
    # And no model of an upload, a listing or a lineage built its validator: their first requests do
    assert made["built"] == []
