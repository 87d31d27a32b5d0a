"""Which back end offers staged blobs (a large file sent before its SHA-256 is known): the local
folder store does, up to its multipart threshold; S3 stores an object under the key its URL names and
offers none, so a client there logs exactly as API.md says."""

from __future__ import annotations

import pytest

from artreg.model.errors import ArtregError
from artreg.model.wire import Stage
from tests.conftest import Backend

P = "vision"
MiB = 1024**2


def test_only_the_folder_store_offers_staging_urls(backend: Backend) -> None:
    # When URLs are asked for a file of 4 MiB and one over the local store's multipart threshold (8 MiB here)
    offered = backend.registry.stage(P, Stage(sizes=[4 * MiB, 9 * MiB])).staging
    # Then each size is answered in order; the folder store gives a URL to the first alone, S3 to none
    assert [t.size for t in offered] == [4 * MiB, 9 * MiB]
    local = backend.name == "local"
    assert [t.url is not None for t in offered] == ([True, False] if local else [False, False])


def test_a_staging_request_names_a_valid_project(backend: Backend) -> None:
    with pytest.raises(ArtregError) as refused:
        backend.registry.stage("Not A Project!", Stage(sizes=[MiB]))
    assert refused.value.status == 400
