"""Each page of the UI in chromium against a seeded `artreg server`: what a person would look for on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from tests.ui.conftest import WAIT_S, api_calls, open_page, texts
from tests.ui.seed import BIG_FILES, NOTE, PROJECT, Seeded


def wait_text(driver: Any, selector: str, text: str) -> None:
    WebDriverWait(driver, WAIT_S).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))


def test_projects_page_opens_a_project_by_name_and_remembers_it(browser: Any, seeded: Seeded, screenshots: Path):
    # Given a registry whose projects the page may or may not be able to list
    open_page(browser, seeded.url, "#/", "#project-name")
    # When the user opens a project by name
    box = browser.find_element(By.ID, "project-name")
    box.send_keys(PROJECT, Keys.ENTER)
    wait_text(browser, "#artifacts", "resnet")
    # Then its artifacts show, and the projects page offers it afterwards
    open_page(browser, seeded.url, "#/", "#project-name")
    listed = texts(browser, "#projects a") + texts(browser, "#recent-projects a")
    assert PROJECT in listed
    browser.save_screenshot(str(screenshots / "projects.png"))


def test_artifacts_are_filtered_by_type_and_searched_by_name(browser: Any, seeded: Seeded, screenshots: Path):
    # Given the project's page
    open_page(browser, seeded.url, f"#/p/{PROJECT}", "#artifacts tbody tr")
    assert texts(browser, "#artifacts tbody th") == ["iris", "resnet", "shards"]
    browser.save_screenshot(str(screenshots / "artifacts.png"))
    # When the user types part of a name, only matching artifacts stay
    browser.find_element(By.ID, "filter-name").send_keys("ir")
    assert texts(browser, "#artifacts tbody th") == ["iris"]
    # When the user filters by type (the registry filters)
    open_page(browser, seeded.url, f"#/p/{PROJECT}?type=model", "#artifacts tbody tr")
    assert texts(browser, "#artifacts tbody th") == ["resnet"]


def test_artifact_page_shows_versions_and_each_alias_history_in_order(browser: Any, seeded: Seeded, screenshots: Path):
    # Given a model whose `production` alias was promoted, promoted again, then rolled back
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/resnet", ".pager table tbody tr")
    # Then the versions show newest first, with their aliases, tags and producers
    rows = browser.find_elements(By.CSS_SELECTOR, ".pager table tbody tr")
    assert [row.find_element(By.TAG_NAME, "th").text for row in rows] == ["1.1.0", "1.0.0"]
    assert all(word in rows[0].text for word in ("staging", "candidate", "train-2"))
    assert "production" in rows[1].text
    # And the alias's history reads newest first: back to 1.0.0, from 1.0.0 to 1.1.0, first 1.0.0
    history = '[data-alias="production"] ol.timeline li'
    WebDriverWait(browser, WAIT_S).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, history)) == 3)
    moves = [item.find_element(By.TAG_NAME, "a").text for item in browser.find_elements(By.CSS_SELECTOR, history)]
    assert moves == list(reversed(seeded.production_moves))
    assert "(first)" in browser.find_elements(By.CSS_SELECTOR, history)[-1].text
    browser.save_screenshot(str(screenshots / "artifact.png"))


def test_version_page_shows_files_references_and_how_to_fetch(browser: Any, seeded: Seeded, screenshots: Path):
    # Given the first version of the dataset
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/iris/v/1.0.0", ".pager table tbody tr")
    assert browser.find_element(By.ID, "version-title").text == "iris@1.0.0"
    # Then its files, its unverified remote reference and the exact ways to fetch it are shown
    assert [t.split("\n")[0] for t in texts(browser, ".pager tbody th")] == ["raw/iris.data", "test.csv", "train.csv"]
    assert "s3://raw-data/iris/iris.data" in browser.find_element(By.ID, "remote").text
    assert "not verified" in browser.find_element(By.ID, "remote").text
    fetch = browser.find_element(By.CSS_SELECTOR, ".fetch").text
    assert f"artreg://{PROJECT}/iris@1.0.0" in fetch
    assert f"curl -fsSL '{seeded.url}/v1/resolve/{PROJECT}/iris@1.0.0'" in fetch
    assert 'get_artifact("iris", version_or_alias="1.0.0")' in fetch
    # And each file's download link gives its bytes
    link = browser.find_element(By.CSS_SELECTOR, 'a[aria-label="Download train.csv"]').get_attribute("href")
    assert requests.get(link, timeout=10).content == b"a,b\n1,2\n"
    browser.save_screenshot(str(screenshots / "version.png"))


def test_version_page_shows_api_strings_as_text(browser: Any, seeded: Seeded):
    # Given a version whose metadata holds markup
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/iris/v/2.0.0", "pre.json")
    # Then it shows as text, and nothing of it ran
    assert NOTE in browser.find_element(By.CSS_SELECTOR, "pre.json").text
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.title != "pwned"


def test_an_alias_opens_the_version_it_points_at(browser: Any, seeded: Seeded):
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/resnet/v/production", "#version-title")
    assert browser.find_element(By.ID, "version-title").text == "resnet@1.0.0"


def test_files_of_a_large_version_come_a_page_at_a_time(browser: Any, seeded: Seeded, screenshots: Path):
    # Given a version with 1,200 files
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/shards/v/1.0.0", ".pager table tbody tr")
    first = texts(browser, ".pager tbody th")
    assert (len(first), first[0]) == (100, "part-00000.txt")
    assert f"{BIG_FILES:,}" in browser.find_element(By.TAG_NAME, "h1").find_element(By.XPATH, "..").text
    # When the user asks for the next page, the next 100 come, one call each
    browser.find_element(By.XPATH, "//button[contains(., 'Next')]").click()
    wait_text(browser, ".pager tbody th", "part-00100.txt")
    assert len(api_calls(browser, "/versions/1.0.0/files?")) == 2
    browser.save_screenshot(str(screenshots / "files-paged.png"))


def test_diff_of_two_versions_lists_file_and_metadata_changes(browser: Any, seeded: Seeded, screenshots: Path):
    # Given the dataset's page, when the user asks for the diff of its newest version with the one before
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/iris", ".pager table tbody tr")
    browser.find_element(By.CSS_SELECTOR, 'a[aria-label="Compare 1.0.0 with 2.0.0"]').click()
    wait_text(browser, "#diff-status", "added")
    # Then the files added, removed and changed are listed, and the metadata's changes
    changes = {row.split(" ")[0]: row.split(" ")[1] for row in texts(browser, "#files-diff tbody tr")}
    assert changes == {"raw/iris.data": "removed", "test.csv": "removed", "train.csv": "changed", "val.csv": "added"}
    meta = {row.split(" ")[0]: row.split(" ")[1] for row in texts(browser, "#metadata-diff tbody tr")}
    assert meta == {"cleaned": "added", "note": "added", "rows": "changed"}
    # (from one page of each version's files: no more than needed)
    assert browser.find_element(By.ID, "diff-status").text == "1 added, 2 removed, 1 changed (2 file pages read)."
    browser.save_screenshot(str(screenshots / "diff.png"))


def graph_nodes(driver: Any) -> set[str]:
    return {node.get_attribute("data-id") for node in driver.find_elements(By.CSS_SELECTOR, "svg.graph a.node")}


def test_lineage_graph_draws_runs_and_versions_at_the_depth_asked(browser: Any, seeded: Seeded, screenshots: Path):
    # Given the model trained on iris@2.0.0 by train-2 and evaluated by eval-1
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/resnet/v/1.1.0/lineage", "svg.graph a.node")
    # Then the graph shows both ways: the data's own producer upstream, the evaluation downstream
    assert graph_nodes(browser) == {"resnet@1.1.0", "run:train-2", "iris@2.0.0", "run:prep-2", "run:eval-1"}
    edges = {
        (e.get_attribute("data-kind"), e.get_attribute("data-to"))
        for e in browser.find_elements(By.CSS_SELECTOR, "svg.graph path.edge")
    }
    assert {("produced", "resnet@1.1.0"), ("used", "iris@2.0.0")} <= edges
    browser.save_screenshot(str(screenshots / "lineage.png"))
    # When the user draws upstream only, one run away
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/resnet/v/1.1.0/lineage?direction=upstream&depth=1", "svg.graph")
    assert graph_nodes(browser) == {"resnet@1.1.0", "run:train-2", "iris@2.0.0"}
    # And a node is a link the keyboard can follow: the run's page says what it used and produced
    node = browser.find_element(By.CSS_SELECTOR, 'svg.graph a.node[data-id="run:train-2"]')
    browser.execute_script("arguments[0].focus()", node)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait_text(browser, "#run-used", "iris@2.0.0")
    assert browser.find_element(By.ID, "run-produced").text == "resnet@1.1.0"
    browser.save_screenshot(str(screenshots / "run.png"))


def test_keyboard_reaches_and_follows_a_version_link(browser: Any, seeded: Seeded):
    # Given the artifact page, used with the keyboard only
    open_page(browser, seeded.url, f"#/p/{PROJECT}/a/resnet", ".pager table tbody tr")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(40):  # When the user tabs to the first version's link
        focused = browser.switch_to.active_element
        if focused.tag_name == "a" and focused.text == "1.1.0" and focused.find_elements(By.XPATH, "ancestor::tbody"):
            break
        focused.send_keys(Keys.TAB)
    else:
        raise AssertionError("tabbing never reached the version link")
    # Then it shows where the focus is, and Enter opens the version
    assert focused.value_of_css_property("outline-style") != "none"
    focused.send_keys(Keys.ENTER)
    wait_text(browser, "#version-title", "resnet@1.1.0")


def test_a_linked_version_is_drawn_upstream_of_the_version_holding_it(browser: Any, seeded: Seeded):
    # Given a lineage answer with a `linked` edge (a model version holding its training data)
    open_page(browser, seeded.url, "#/", "#project-name")
    drawn = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import("./graph.js").then(({ drawGraph }) => {
          const graph = {
            root: "model@1.0.0",
            nodes: [
              { id: "model@1.0.0", kind: "version", name: "model", version: "1.0.0" },
              { id: "iris@2.0.0", kind: "version", name: "iris", version: "2.0.0" },
            ],
            edges: [{ from: "model@1.0.0", to: "iris@2.0.0", kind: "linked", role: "training_data" }],
          };
          // When the UI draws it
          const svg = drawGraph("vision", graph);
          const x = (id) => Number(svg.querySelector(`a.node[data-id="${id}"] rect`).getAttribute("x"));
          const edge = svg.querySelector("path.linked title").textContent;
          done({ dataLeft: x("iris@2.0.0") < x("model@1.0.0"), edge });
        });
        """
    )
    # Then the data sits left of the model, joined by an edge that names the link's role
    assert drawn["dataLeft"]
    assert "training_data" in drawn["edge"]
