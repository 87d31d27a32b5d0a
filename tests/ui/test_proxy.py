"""`artreg ui --url` in front of the API Lambda's own handler (on moto, behind a tiny HTTP front that
plays API Gateway): its calls go upstream signed with SigV4, the page works through it, and neither the
page nor any other site gets the credentials or the use of them."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.conftest import BUCKET, TABLE, api_event
from tests.support.lambda_context import LambdaContext
from tests.support.server import ARTREG
from tests.ui.conftest import open_page

# the user's credentials, as the proxy's environment holds them: none of these may reach the page
KEY_ID = "AKIAUIPROXYTEST00001"
SECRET = "uiProxySecretAccessKeyThatNeverLeaves0001"
TOKEN = "uiProxySessionTokenThatNeverLeaves0001"
P, N = "vision", "resnet"


@dataclass
class Front:
    """API Gateway in miniature: HTTP requests become proxy events for the handler; it keeps the headers
    of every request it was sent."""

    url: str
    invoke: Any
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def front(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Front]:
    monkeypatch.setenv("ARTREG_TABLE_NAME", TABLE)
    monkeypatch.setenv("ARTREG_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("ARTREG_EVENT_BUS_NAME", "artreg-test")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "artreg")
    for module in ("functions.api.app", "artreg.api.lambda_entry"):
        sys.modules.pop(module, None)
    from artreg.aws import clients
    from artreg.settings import settings

    for cached in (clients.dynamodb_client, clients.s3_client, settings):
        cached.cache_clear()
    handler = importlib.import_module("functions.api.app").lambda_handler
    lock = threading.Lock()  # one invocation at a time, as one Lambda instance

    def invoke(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with lock:
            return dict(handler(api_event(method, path, **kwargs), LambdaContext()))

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # headers and body in two writes (see tests/support/lambda_front.py)

        def do_any(self) -> None:
            split = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.seen.append((split.path, headers))
            raw = self.rfile.read(int(headers.get("content-length") or 0)).decode() or None
            answer = invoke(self.command, split.path, body=raw, query=dict(parse_qsl(split.query)), headers=headers)
            data = (answer.get("body") or "").encode()
            self.send_response(answer["statusCode"])
            for name, value in (answer.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_any

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Front(f"http://127.0.0.1:{server.server_address[1]}", invoke)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(front: Front, tmp_path: Path) -> Iterator[str]:
    yield from run_proxy(front.url, tmp_path, "--sigv4", "--region", "us-east-1")


def run_proxy(api_url: str, home: Path, *options: str) -> Iterator[str]:
    """`artreg ui` as the user runs it, with credentials of its own in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN, HOME=str(home))
    process = subprocess.Popen(
        [ARTREG, "ui", "--url", api_url, "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "artreg ui exited before serving"
    yield json.loads(line)["url"].removesuffix("/ui/")
    process.terminate()
    process.wait(timeout=10)


def seed(front: Front) -> None:
    for epochs in (1, 2):
        body = {"type": "model", "metadata": {"epochs": epochs}, "commit": True}
        assert front.invoke("POST", f"/v1/projects/{P}/artifacts/{N}/uploads", body=body)["statusCode"] == 201
    moved = front.invoke("PUT", f"/v1/projects/{P}/artifacts/{N}/aliases/production", body={"version": "1.0.0"})
    assert moved["statusCode"] == 200


def leaked(text: str) -> bool:
    return any(secret in text for secret in (KEY_ID, SECRET, TOKEN))


def answers_leak(browser: Any) -> tuple[int, list[str]]:
    """Every answer this document received since the last look (headers and body, from the browser's
    own record): how many, and the URLs of those that carry a credential."""
    messages = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    received = [m["params"] for m in messages if m["method"] == "Network.responseReceived"]
    leaks = []
    for params in received:
        body = browser.execute_cdp_cmd("Network.getResponseBody", {"requestId": params["requestId"]})["body"]
        if leaked(json.dumps(params["response"].get("headers", {}))) or leaked(body):
            leaks.append(params["response"]["url"])
    return len(received), leaks


def test_the_page_works_through_signed_calls_and_never_sees_the_credentials(
    browser: Any, front: Front, proxy: str, screenshots: Path
):
    # Given a deployed registry (the Lambda handler) with a model, and `artreg ui` in front of it
    seed(front)
    browser.get_log("performance")  # what earlier tests left
    # When the user opens the model's page through it
    open_page(browser, proxy, f"#/p/{P}/a/{N}", ".pager table tbody tr")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".pager tbody th")] == ["2.0.0", "1.0.0"]
    first_page = answers_leak(browser)
    open_page(browser, proxy, f"#/p/{P}/a/{N}/v/production", ".pager")
    assert browser.find_element(By.ID, "version-title").text == "resnet@1.0.0"
    # Then the commands it shows name the deployed API, not the proxy
    fetch = browser.find_element(By.CSS_SELECTOR, ".fetch").text
    assert "--aws-sigv4 'aws:amz:us-east-1:execute-api'" in fetch
    assert f"'{front.url}/v1/resolve/{P}/{N}@1.0.0'" in fetch
    assert f'Registry("{front.url}", project="{P}", sigv4=True)' in fetch
    browser.save_screenshot(str(screenshots / "proxy-version.png"))

    # And every call upstream was signed with the user's credentials
    calls = [(path, headers) for path, headers in front.seen if path.startswith("/v1/")]
    assert calls
    for _, headers in calls:
        assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
        assert "/us-east-1/execute-api/aws4_request" in headers["authorization"]
        assert headers["x-amz-security-token"] == TOKEN
        assert "cookie" not in headers
    # And no answer the browser received carries any of them, in its headers or its body
    second_page = answers_leak(browser)
    assert first_page[0] + second_page[0] > 10  # the UI's files and its API calls
    assert first_page[1] + second_page[1] == []
    assert not leaked(browser.page_source)
    assert not leaked(browser.execute_script("return JSON.stringify(localStorage) + document.cookie"))


def test_other_sites_and_names_cannot_use_the_proxy(front: Front, proxy: str):
    # Given `artreg ui` with the user's credentials, and a registry behind it
    seed(front)
    api = f"{proxy}/v1/projects/{P}/artifacts/{N}"
    port = urlsplit(proxy).port
    assert requests.get(api, headers={"Origin": proxy}, timeout=10).status_code == 200  # its own page
    before = len(front.seen)
    # When another web page, or a name rebound to 127.0.0.1, calls it
    refused = [
        requests.get(api, headers={"Origin": "https://evil.example"}, timeout=10),
        requests.delete(f"{api}/aliases/production", headers={"Origin": "null"}, timeout=10),
        requests.get(api, headers={"Host": f"evil.example:{port}"}, timeout=10),
        requests.get(api, headers={"Sec-Fetch-Site": "cross-site"}, timeout=10),
    ]
    # Then each is refused with API.md's error, and nothing went upstream
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [(403, "forbidden")] * 4
    assert len(front.seen) == before
    # And the UI itself is read-only and at /ui/
    assert requests.post(f"{proxy}/ui/", timeout=10).status_code == 405
    home = requests.get(f"{proxy}/", allow_redirects=False, timeout=10)
    assert (home.status_code, home.headers["location"]) == (302, "/ui/")
    config = requests.get(f"{proxy}/ui/config.json", timeout=10)
    assert config.json() == {"api_url": front.url, "signed": True, "region": "us-east-1"}


def test_an_unreachable_registry_is_a_clear_503(tmp_path: Path):
    # Given `artreg ui` in front of a URL where nothing listens
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for proxy_url in run_proxy(url, tmp_path, "--no-sigv4"):
        # When the page asks it for anything
        answer = requests.get(f"{proxy_url}/v1/projects/{P}/artifacts", timeout=10)
        # Then it says the registry is unavailable, in API.md's shape
        assert (answer.status_code, answer.json()["error"]["code"]) == (503, "unavailable")


def test_artreg_ui_needs_the_api_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    from artreg.cli import EXIT_USAGE, main

    monkeypatch.delenv("ARTREG_URL", raising=False)
    assert main(["ui"]) == EXIT_USAGE
    assert "--url" in capsys.readouterr().err
