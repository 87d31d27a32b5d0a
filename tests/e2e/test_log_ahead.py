"""A log of many files is a pipeline: the next batch of files is walked and hashed while the one
before is offered and sent (artreg.client.upload), so a large folder's upload begins before its last
file is read."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from artreg.client import Artifact, files
from tests.e2e.counting import counted_registry
from tests.support.server import RunningServer


def test_a_log_offers_its_first_files_before_its_last_one_is_hashed(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a folder of 3,500 small files (four requests of files; the first request waits for the
    # second batch, which is cut once the third begins), logged with the manifest cache on
    root = tmp_path / "dataset"
    for i in range(3_500):
        (root / f"d{i % 5}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 5}" / f"{i:05d}.txt").write_bytes(f"sample {i}\n".encode())
    last = sorted(root.rglob("*.txt"))[-1]
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    offered = threading.Event()
    seen_when_last_hashed: list[bool] = []
    request, hash_file = pool.request, files.hash_file

    def watched(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method == "POST" and url.split("?")[0].endswith("/uploads"):
            offered.set()
        return request(method, url, *args, **kwargs)

    def hashing(source: str, *args: Any, **kwargs: Any) -> tuple[str, int]:
        if source == str(last):  # the last file waits (boundedly) for the upload to begin
            seen_when_last_hashed.append(offered.wait(timeout=30))
        return hash_file(source, *args, **kwargs)

    monkeypatch.setattr(pool, "request", watched)
    monkeypatch.setattr(files, "hash_file", hashing)

    # When it is logged
    logged = reg.log_artifact(Artifact("shards", type="dataset").add(root))

    # Then the upload was offered before the last file was hashed, and the version holds every file
    assert seen_when_last_hashed == [True]
    assert logged.file_count == 3_500
