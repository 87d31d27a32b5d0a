"""The SDK logs a large version that differs from `latest` by a few files as an upload from it (API.md:
`base`), when its manifest cache knows `latest`: what it sends is the changes, and the version is the
one a full upload of the same folder makes. Against `artreg server`, every request counted."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from artreg.client import Artifact, LoggedArtifact, Registry
from artreg.client import upload as upload_module
from artreg.client.manifests import KEEP
from tests.e2e.counting import CountingPool, counted_registry
from tests.support.server import RunningServer

N = 1500  # more than one request of files


@pytest.fixture
def client(server: RunningServer, tmp_path: Path) -> tuple[Registry, CountingPool]:
    return counted_registry(server.url, tmp_path / "cache")


def shards(root: Path, count: int = N) -> Path:
    for i in range(count):
        (root / f"{i // 500}").mkdir(parents=True, exist_ok=True)
        (root / f"{i // 500}" / f"{i:04d}.txt").write_text(f"shard {i}")
    return root


def dataset(root: Path, name: str = "shards") -> Artifact:
    return Artifact(name, type="dataset").add(root)


def uploads_posted(pool: CountingPool) -> int:
    return sum(1 for s in pool.api_calls if s.method == "POST" and s.path.endswith("/uploads"))


def test_a_few_changed_files_are_sent_alone_and_make_the_version_a_full_upload_makes(
    client: tuple[Registry, CountingPool], server: RunningServer, tmp_path: Path
) -> None:
    reg, pool = client
    # Given a dataset of 1,500 files logged by this client
    root = shards(tmp_path / "shards")
    reg.log_artifact(dataset(root))
    # When one file changes, one is added and one removed, and it is logged again
    (root / "0" / "0007.txt").write_text("shard 7, again")
    (root / "2" / "new.txt").write_text("new")
    (root / "1" / "0600.txt").unlink()
    pool.reset()
    second = reg.log_artifact(dataset(root))
    # Then the SDK asked for latest, started one upload from it, sent the two files' bytes, committed
    assert [(s.method, s.path.rsplit("/", 1)[-1]) for s in pool.api_calls] == [
        ("GET", "latest"),
        ("POST", "uploads"),
        ("POST", "commit"),
    ]
    assert pool.blob_bytes == len("shard 7, again") + len("new")
    assert pool.api_bytes < 2000  # the changes, not a manifest of 1,500 files
    # And the version holds the folder as it is now, with the digest a full upload of it gives
    assert (second.version, second.file_count) == ("2.0.0", N)
    with Registry(server.url, project="vision", progress=False, cache=False) as full_client:
        full = full_client.log_artifact(dataset(root))
    assert full.digest == second.digest
    assert {f.path for f in second.iter_files()} == {p.relative_to(root).as_posix() for p in root.rglob("*.txt")}


def test_a_refused_base_falls_back_to_a_full_upload_once(
    client: tuple[Registry, CountingPool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, pool = client
    # Given a dataset logged by this client, whose version is deleted right after the SDK reads latest
    root = shards(tmp_path / "shards")
    reg.log_artifact(dataset(root))
    (root / "0" / "0001.txt").write_text("shard 1, again")
    read_latest = upload_module._latest

    def latest_then_deleted(registry: Registry, name: str) -> LoggedArtifact | None:
        found = read_latest(registry, name)
        registry.delete_version(name, "1.0.0")
        return found

    monkeypatch.setattr(upload_module, "_latest", latest_then_deleted)
    # When it is logged again
    pool.reset()
    second = reg.log_artifact(dataset(root))
    # Then the upload from the deleted base was refused, and one full upload made the version
    assert uploads_posted(pool) == 2
    assert (second.version, second.file_count) == ("2.0.0", N)
    assert {f.path: f.size for f in second.iter_files()}["0/0001.txt"] == len("shard 1, again")
    # And the copy of the base's manifest made while the refused upload went was dropped: the cache
    # holds only the rows of the manifests it keeps
    assert reg.manifests is not None
    with contextlib.closing(sqlite3.connect(reg.manifests.path)) as db:
        stray = db.execute("SELECT COUNT(*) FROM entries WHERE manifest NOT IN (SELECT id FROM manifests)")
        assert stray.fetchone() == (0,)


def test_without_a_known_latest_the_upload_is_a_full_one(
    client: tuple[Registry, CountingPool], server: RunningServer, tmp_path: Path
) -> None:
    reg, pool = client
    # Given a dataset whose latest version another client logged (this one has not seen its manifest)
    root = shards(tmp_path / "shards")
    with Registry(server.url, project="vision", progress=False, cache_dir=tmp_path / "other") as other:
        other.log_artifact(dataset(root))
    (root / "0" / "0002.txt").write_text("changed")
    # When this client logs it
    pool.reset()
    second = reg.log_artifact(dataset(root))
    # Then every file is offered (two requests of files), and only the changed bytes are sent
    assert uploads_posted(pool) == 1
    assert sum(1 for s in pool.api_calls if s.path.endswith("/files")) == 1
    assert pool.blob_bytes == len("changed")
    assert second.version == "2.0.0"


def test_a_downloaded_version_is_the_base_of_the_next_log(
    client: tuple[Registry, CountingPool], server: RunningServer, tmp_path: Path
) -> None:
    reg, pool = client
    # Given a dataset another client logged, downloaded by this one
    with Registry(server.url, project="vision", progress=False, cache_dir=tmp_path / "other") as other:
        other.log_artifact(dataset(shards(tmp_path / "shards")))
    copy = tmp_path / "copy"
    reg.download("shards", root=copy)
    # When a file of the copy changes and the copy is logged
    (copy / "1" / "0777.txt").write_text("edited")
    pool.reset()
    second = reg.log_artifact(dataset(copy))
    # Then it went as an upload from the downloaded version: the change alone was sent
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["latest", "uploads", "commit"]
    assert pool.blob_bytes == len("edited")
    assert (second.version, second.file_count) == ("2.0.0", N)


def test_the_cache_keeps_a_bounded_number_of_manifests(client: tuple[Registry, CountingPool], tmp_path: Path) -> None:
    reg, _ = client
    # Given more large artifacts logged than the cache keeps manifests of
    root = shards(tmp_path / "shards", count=1001)
    for i in range(KEEP + 2):
        reg.log_artifact(dataset(root, name=f"set-{i}"))
    # Then it keeps the last KEEP, dropping the oldest
    assert reg.manifests is not None
    kept = reg.manifests.keys()
    assert len(kept) == KEEP
    assert all(f'"set-{i}"' in key for i, key in zip(range(2, KEEP + 2), kept, strict=True))


def test_a_version_logged_from_a_base_is_the_base_of_the_next(
    client: tuple[Registry, CountingPool], server: RunningServer, tmp_path: Path
) -> None:
    reg, pool = client
    # Given a dataset logged, then logged again from it with a file changed, one added and one removed
    root = shards(tmp_path / "shards")
    reg.log_artifact(dataset(root))
    (root / "0" / "0003.txt").write_text("shard 3, again")
    (root / "2" / "extra.txt").write_text("extra")
    (root / "1" / "0501.txt").unlink()
    reg.log_artifact(dataset(root))
    # When another file changes and it is logged a third time
    (root / "2" / "1499.txt").write_text("shard 1499, again")
    pool.reset()
    third = reg.log_artifact(dataset(root))
    # Then the second version's manifest was kept: only the change was sent, from it
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["latest", "uploads", "commit"]
    assert pool.blob_bytes == len("shard 1499, again")
    # And the version is the one a full upload of the folder makes
    with Registry(server.url, project="vision", progress=False, cache=False) as full_client:
        full = full_client.log_artifact(dataset(root))
    assert (third.version, third.file_count, third.digest) == ("3.0.0", N, full.digest)
    # And an unchanged re-log with if_changed is answered by the one GET
    pool.reset()
    again = reg.log_artifact(dataset(root), if_changed=True)
    assert (again.version, again.created) == ("4.0.0", False)
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["latest"]
