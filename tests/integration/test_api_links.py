"""The links routes of API.md (Links) through the real Lambda handler, on moto."""

from __future__ import annotations

from typing import Any

from tests.integration.test_api import Call, assert_error, call, files  # noqa: F401 - `call` is a fixture

P = "vision"
ARTIFACTS = f"/v1/projects/{P}/artifacts"
FRAUD = f"{ARTIFACTS}/fraud/versions/1.0.0"


def log(call: Call, name: str, content: bytes, **request: Any) -> dict[str, Any]:  # noqa: F811 - the imported fixture
    import hashlib

    import requests

    started = call("POST", f"{ARTIFACTS}/{name}/uploads", body={"files": files(content), **request})
    assert started.status in (200, 201), started.body
    if started.body.get("state") == "committed":
        return dict(started.body)
    for missing in started.body["missing"]:
        assert missing["sha256"] == hashlib.sha256(content).hexdigest()
        requests.put(missing["url"], data=content, headers=missing["headers"], timeout=10).raise_for_status()
    committed = call("POST", f"{ARTIFACTS}/{name}/uploads/{started.body['upload_id']}/commit")
    assert committed.status == 201, committed.body
    return dict(committed.body)


def test_link_routes_pin_list_compare_and_swap_and_unlink(call: Call) -> None:  # noqa: F811 - the imported fixture
    # Given a dataset at stable and a model version
    iris = log(call, "iris", b"iris v1", type="dataset", aliases=["stable"])
    log(call, "iris", b"iris v2", type="dataset")
    log(call, "fraud", b"weights", type="model")
    # When the model links the dataset by alias, under a role with segments
    made = call("PUT", f"{FRAUD}/links/data/training", body={"target": "iris@stable"})
    # Then the link is pinned to the version the alias named, by the caller
    assert made.status == 200, made.body
    assert made.body["role"] == "data/training"
    assert made.body["target"] == {"name": "iris", "version": "1.0.0", "digest": iris["digest"]}
    assert made.body["by"].startswith("arn:aws:sts::")
    # And the record carries it inline; the listings say it both ways
    record = call("GET", FRAUD).body
    assert [x["role"] for x in record["links"]] == ["data/training"]
    assert record["links_truncated"] is False
    links = call("GET", f"{FRAUD}/links").body
    assert ([x["target"]["version"] for x in links["items"]], links["next_cursor"]) == (["1.0.0"], None)
    by = call("GET", f"{ARTIFACTS}/iris/versions/stable/linked-by").body["items"]
    assert [(x["role"], x["source"]["name"], x["source"]["version"]) for x in by] == [
        ("data/training", "fraud", "1.0.0")
    ]
    # When it is re-pointed with a stale If-Match: 412, unchanged; with the current digest: moved
    stale = call(
        "PUT", f"{FRAUD}/links/data/training", body={"target": "iris@2.0.0"}, headers={"If-Match": '"' + "0" * 64 + '"'}
    )
    assert_error(stale, 412, "precondition_failed")
    moved = call(
        "PUT",
        f"{FRAUD}/links/data/training",
        body={"target": "iris@2.0.0"},
        headers={"If-Match": f'"{iris["digest"]}"'},
    )
    assert (moved.status, moved.body["target"]["version"]) == (200, "2.0.0")
    # And deleting the linked dataset version is refused unless forced
    assert_error(call("DELETE", f"{ARTIFACTS}/iris/versions/2.0.0"), 409, "linked")
    # When it is unlinked: 204, and gone both ways
    assert call("DELETE", f"{FRAUD}/links/data/training").status == 204
    assert call("GET", f"{FRAUD}/links").body["items"] == []
    assert call("GET", f"{ARTIFACTS}/iris/versions/2.0.0/linked-by").body["items"] == []
    assert_error(call("DELETE", f"{FRAUD}/links/data/training"), 404, "not_found")


def test_a_bad_role_is_400_and_a_missing_target_404_and_neither_writes(call: Call) -> None:  # noqa: F811 - the imported fixture
    log(call, "iris", b"iris v1", type="dataset")
    log(call, "fraud", b"weights", type="model")
    before = call("GET", FRAUD).body
    for role in ("Training", "a/b/c/d/e", "a//b", "x" * 65, "%20x"):
        assert_error(call("PUT", f"{FRAUD}/links/{role}", body={"target": "iris@1.0.0"}), 400, "invalid_request")
    for target in ("iris@9.0.0", "nothing@latest", "iris@staging"):
        assert_error(call("PUT", f"{FRAUD}/links/training_data", body={"target": target}), 404, "not_found")
    assert_error(call("PUT", f"{FRAUD}/links/training_data", body={"target": "bad name@1"}), 400, "invalid_request")
    assert_error(call("PUT", f"{FRAUD}/links/training_data", body={}), 400, "invalid_request")
    upload = call("POST", f"{ARTIFACTS}/fraud/uploads", body={"files": files(b"w2"), "links": {"x": "iris@9.0.0"}})
    assert_error(upload, 404, "not_found")
    assert call("GET", FRAUD).body == before
    assert call("GET", f"{ARTIFACTS}/fraud").body["latest"] == "1.0.0"


def test_an_upload_links_at_commit(call: Call) -> None:  # noqa: F811 - the imported fixture
    log(call, "iris", b"iris v1", type="dataset", aliases=["stable"])
    record = log(call, "fraud", b"weights", type="model", links={"training_data": "iris@stable"})
    assert [(x["role"], x["target"]["version"]) for x in record["links"]] == [("training_data", "1.0.0")]


def test_the_openapi_document_has_the_link_routes(call: Call) -> None:  # noqa: F811 - the imported fixture
    paths = call("GET", "/v1/openapi.json").body["paths"]
    version = "/v1/projects/{project}/artifacts/{name}/versions/{ref}"
    assert "get" in paths[f"{version}/links"]
    assert "get" in paths[f"{version}/linked-by"]
    (role_route,) = [p for p in paths if p.startswith(f"{version}/links/")]
    assert {"put", "delete"} <= set(paths[role_route])


def test_the_runs_route_lists_runs_most_recent_first(call: Call) -> None:  # noqa: F811 - the imported fixture
    # Given a project with no run recorded yet, the list is empty (the listing itself: test_runs.py)
    assert call("GET", f"/v1/projects/{P}/runs").body == {"items": [], "next_cursor": None}
    # Then a page is asked for as any other, and a cursor of another listing is refused
    assert_error(call("GET", f"/v1/projects/{P}/runs", query={"cursor": "eyJhZnRlciI6IDF9"}), 400, "invalid_request")
    assert_error(call("GET", f"/v1/projects/{P}/runs", query={"limit": "0"}), 400, "invalid_request")


def test_a_link_of_a_version_with_build_metadata_names_its_role(call: Call) -> None:  # noqa: F811 - the fixture
    # Given a model version with build metadata, which a client percent-encodes in a path (`+` is `%2B`)
    log(call, "iris", b"iris v1", type="dataset")
    log(call, "fraud", b"weights", type="model", version="1.0.0+build.7")
    at = f"{ARTIFACTS}/fraud/versions/1.0.0%2Bbuild.7"
    # When it links the dataset under a role, and then removes the link
    made = call("PUT", f"{at}/links/data/training", body={"target": "iris@1.0.0"})
    listed = call("GET", f"{at}/links").body["items"]
    removed = call("DELETE", f"{at}/links/data/training")
    # Then the role is the one in the path, not the whole path, and the link is gone after
    assert (made.status, made.body["role"]) == (200, "data/training"), made.body
    assert [x["role"] for x in listed] == ["data/training"]
    assert removed.status == 204, removed.body
    assert call("GET", f"{at}/links").body["items"] == []
