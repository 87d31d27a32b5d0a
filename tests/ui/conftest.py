"""The UI in a real browser: Debian's chromium driven through its chromedriver by Selenium, headless, with a
profile of its own, against `artreg server` subprocesses. `./scripts/test` installs chromium when it runs as
root; elsewhere, without it, these tests skip and say why. Screenshots go to $ARTREG_UI_SCREENSHOTS, or to
ui-screenshots/ under pytest's base temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import RunningServer
from tests.ui.seed import Seeded, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,900",  # a laptop's screen
)
WAIT_S = 15  # the longest a page may take to show what is waited for, on a busy machine


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"UI TESTS NOT RUN: {', '.join(missing)} missing. Install Debian's chromium and chromium-driver "
            "(./scripts/test does, when run as root)"
        )
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # every answer the page receives, for the test that no credential reaches it
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("ARTREG_UI_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def many_seeding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Starts writing 10,000 versions and a version of 100,000 files in a process of its own, so that the
    other tests run meanwhile."""
    data = tmp_path_factory.mktemp("many")
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "tests.ui.seed", str(data)], cwd=root)
    yield process, data
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, many_seeding: tuple[subprocess.Popen[bytes], Path]
) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("ui")
    server = RunningServer(data=root / "data")
    server.start()
    try:
        yield seed(server.url, root)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def large_url(many_seeding: tuple[subprocess.Popen[bytes], Path]) -> Iterator[str]:
    process, data = many_seeding
    assert process.wait(timeout=300) == 0, "seeding the large artifacts failed"
    server = RunningServer(data=data)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


_loads = count()


def open_page(driver: Any, base_url: str, route: str, ready: str) -> Any:
    """Loads the UI afresh at a hash route (a new document each time, so the page's own list of
    requests starts empty) and waits for the CSS selector `ready`; answers that element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.wait import WebDriverWait

    driver.get(f"{base_url}/ui/?load={next(_loads)}{route}")
    return WebDriverWait(driver, WAIT_S).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))


def api_calls(driver: Any, fragment: str) -> list[str]:
    """The URLs this document fetched that contain `fragment` (the browser's own record of them)."""
    urls: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    return [url for url in urls if fragment in url]


def texts(driver: Any, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]
