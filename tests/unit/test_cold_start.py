"""What the API function's import leaves for later (its cold start, benchmarks/cold_start.py): no
boto3 client and no pydantic validator is made before a request needs it. Checked in a fresh process,
since this test process has long made both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
}))
"""
# what the other functions (janitor, lineage, publisher) or only a keyed POST use
NOT_FOR_A_RESOLVE = (
    "artreg.registry.janitor",
    "artreg.registry.janitor_walks",
    "artreg.registry.lineage",
    "artreg.aws.eventbridge",
    "artreg.events",
    "aws_lambda_powertools.utilities.idempotency",
)


def test_importing_the_api_function_makes_no_client_and_builds_no_model() -> None:
    # Given the API function's environment
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layer"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "ARTREG_TABLE_NAME": "artreg-test",
        "ARTREG_BUCKET_NAME": "artreg-test-blobs",
        "ARTREG_EVENT_BUS_NAME": "artreg-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "artreg",
    }
    # When a fresh process imports its handler module, as Lambda does
    child = subprocess.run(
        [sys.executable, "-c", PROBE % (NOT_FOR_A_RESOLVE,)],
        cwd=ROOT / "functions" / "api",
        env=env,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    made = json.loads(child.stdout.splitlines()[-1])
    # Then no AWS client was made (a resolve makes DynamoDB's; only a keyed POST, the idempotency store)
    assert made["clients"] == []
    # And no model built its validator yet: a request builds those it touches
    assert made["built"] == []
    assert made["manifest_adapter_built"] is False
    # And nothing that only the other functions, or only a POST with an Idempotency-Key, use was imported
    assert made["loaded"] == []
    # And no route built the models its validation uses (Powertools does that at a route's first request)
    assert made["dependants"] == []
