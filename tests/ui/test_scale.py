"""The UI on a registry of realistic size: pages read one page of a long list, never all of it. (After
the other UI tests, which run while these artifacts are being written.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By

from tests.ui.conftest import api_calls, open_page, texts
from tests.ui.seed import HUGE, HUGE_FILES, MANY, MANY_VERSIONS, PROJECT


def test_artifact_with_ten_thousand_versions_loads_one_page_in_one_call(
    browser: Any, large_url: str, screenshots: Path
):
    # Given an artifact with 10,000 versions
    open_page(browser, large_url, f"#/p/{PROJECT}/a/{MANY}", ".pager table tbody tr")
    # Then its page shows the count and the newest versions, from one versions call
    assert browser.find_element(By.ID, "version-count").text == f"{MANY_VERSIONS:,}"
    versions = texts(browser, ".pager tbody th")
    assert (versions[0], len(versions)) == (f"1.0.{MANY_VERSIONS - 1}", 25)
    assert len(api_calls(browser, f"/artifacts/{MANY}/versions?")) == 1
    browser.save_screenshot(str(screenshots / "artifact-10000-versions.png"))


def test_version_with_a_hundred_thousand_files_loads_one_page_of_them(browser: Any, large_url: str, screenshots: Path):
    # Given a version of 100,000 files
    open_page(browser, large_url, f"#/p/{PROJECT}/a/{HUGE}/v/latest", ".pager table tbody tr")
    # Then its page says how many, and shows the first 100 from one files call
    assert f"{HUGE_FILES:,} files" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    shown = texts(browser, ".pager tbody th")
    assert (len(shown), shown[0]) == (100, "shard-000000.bin")
    assert len(api_calls(browser, "/versions/1.0.0/files?")) == 1
    browser.save_screenshot(str(screenshots / "version-100000-files.png"))
