"""GET /v1/projects (beyond API.md, for the web UI): the projects that hold an artifact, in name order,
paged, on both back ends."""

from __future__ import annotations

import pytest

from artreg.model.errors import Invalid
from tests.conftest import Backend


def test_projects_are_listed_in_name_order_a_page_at_a_time(backend: Backend) -> None:
    # Given artifacts in three projects (one of them with two artifacts)
    for project, name in (("vision", "resnet"), ("audio", "wav2vec"), ("vision", "vit"), ("nlp", "bert")):
        backend.log(project, name, {"a.bin": project.encode()})
    # When the projects are listed two at a time
    first = backend.registry.list_projects(limit=2)
    second = backend.registry.list_projects(limit=2, cursor=first.next_cursor)
    # Then each project comes once, in name order, and the last page says there is no more
    assert [p.project for p in first.items] == ["audio", "nlp"]
    assert [p.project for p in second.items] == ["vision"]
    assert second.next_cursor is None
    assert [p.project for p in backend.registry.list_projects().items] == ["audio", "nlp", "vision"]


def test_no_project_before_the_first_commit(backend: Backend) -> None:
    assert backend.registry.list_projects().items == []


@pytest.mark.parametrize("cursor", ["not a cursor!", "e30x", "WzFd"])
def test_a_cursor_the_api_never_handed_out_is_400(backend: Backend, cursor: str) -> None:
    with pytest.raises(Invalid):
        backend.registry.list_projects(cursor=cursor)
