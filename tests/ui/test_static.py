"""The UI's files as `artreg server` serves them (no browser needed): the page, its headers, and nothing
outside the static folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from artreg.ui import STATIC, static_file
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = RunningServer(data=tmp_path_factory.mktemp("static") / "data")
    running.start()
    yield running.url
    running.stop()


def test_the_server_serves_the_ui_with_a_strict_policy(server: str):
    # When a browser opens the server's root
    home = requests.get(f"{server}/", allow_redirects=False, timeout=10)
    page = requests.get(f"{server}/ui/", timeout=10)
    script = requests.get(f"{server}/ui/app.js", timeout=10)
    # Then it is sent to the UI, which runs only its own scripts and cannot be framed
    assert (home.status_code, home.headers["location"]) == (302, "/ui/")
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert script.headers["content-type"].startswith("text/javascript")


def test_the_ui_is_read_only_and_holds_only_its_own_files(server: str):
    assert requests.post(f"{server}/ui/", timeout=10).status_code == 405
    for path in ("/ui/nothing.js", "/ui/%2e%2e/__init__.py", "/ui/../cli.py", "/ui/.hidden.js"):
        answer = requests.get(server + path, timeout=10)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found"), path


@pytest.mark.parametrize("path", ["/ui/../__init__.py", "/ui/sub/app.js", "/ui/__init__.py", "/ui/.x.js", "/v1/x"])
def test_no_path_climbs_out_of_the_static_folder(path: str):
    assert static_file(path) is None


def test_the_ui_uses_no_markup_strings_and_nothing_from_elsewhere():
    # innerHTML or document.write of an API string would let the registry's content run in the page;
    # a URL to another host would break offline use
    for file in Path(STATIC).iterdir():
        text = file.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "https://"):
            assert banned not in text, f"{file.name} uses {banned}"
