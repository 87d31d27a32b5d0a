"""What `artreg server` leaves for later (its start to first answer, benchmarks/transfers.py): the SDK
beyond its settings, and Powertools' idempotency utility with the boto3 it imports, until a keyed POST
needs them. Checked in a fresh process, since this test process has long imported all of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# what `artreg server` does before its first answer (cmd_server, serve), then a resolve, then a keyed POST
PROBE = """
import json, sys, tempfile
from pathlib import Path

def api_event(method, path, body=None, headers=None):  # as the server makes it (tests.conftest imports moto)
    return {"version": "2.0", "rawPath": path, "rawQueryString": "", "headers": {"host": "127.0.0.1:8080",
            "content-type": "application/json", **(headers or {})}, "queryStringParameters": None,
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "",
            "userAgent": ""}, "requestId": "r", "routeKey": "$default", "stage": "$default", "timeEpoch": 0},
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}
from artreg.cli import build_parser, client_settings
from artreg.local.asgi import App
from artreg.local.guard import Guard
from artreg.local.server import Local

args = build_parser().parse_args(["server", "--data", tempfile.mkdtemp()])
given = client_settings(args)
local = Local(Path(given.data), "http://127.0.0.1:8080")
App(local, Guard.for_server("127.0.0.1", 8080))
answers = [local.handle_api(api_event("GET", "/v1/resolve/p/a@latest"))["statusCode"]]
LATER = ("boto3", "urllib3", "artreg.client.registry", "aws_lambda_powertools.utilities.idempotency")
started = [m for m in LATER if m in sys.modules]
post = api_event("POST", "/v1/projects/p/artifacts/a/uploads", body={"commit": True}, headers={"idempotency-key": "k"})
answers += [local.handle_api(post)["statusCode"], local.handle_api(post)["statusCode"]]
print(json.dumps({"started": started, "answers": answers}))
"""


def test_the_server_answers_its_first_request_without_the_sdk_or_boto3() -> None:
    # Given a fresh process that starts the local server as `artreg server` does
    child = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PATH": "", "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    made = json.loads(child.stdout.splitlines()[-1])
    # Then its first answer (a resolve: 404, nothing logged yet) came with none of what only others need
    assert made["started"] == []
    # And a keyed POST still acts once: logged (201), then its repeat answered from the record (201)
    assert made["answers"] == [404, 201, 201]
