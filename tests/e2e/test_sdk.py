"""The Python SDK against `artreg server`, as a training or deploy job uses it: log a folder, get it
back by alias or version, download it, move aliases, delete versions. Every request goes over HTTP
and is counted on the client side (tests/e2e/counting.py), so that what a user pays in round trips
and bytes is asserted too."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

import pytest
import requests

from artreg.client import (
    Artifact,
    Conflict,
    Invalid,
    LoggedArtifact,
    NotFound,
    PreconditionFailed,
    Registry,
    RetryPolicy,
    Unreachable,
)
from tests.e2e.counting import CountingPool, counted_registry
from tests.support.server import RunningServer

REMOTE = "https://data.example.com/imagenet/train.csv"


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under `root`, by its relative POSIX path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder: binary weights, text, an empty file, a nested file, and two files with the same bytes."""
    root = tmp_path / "model"
    files = {
        "weights.bin": os.urandom(256 * 1024),
        "config.json": b'{"layers": 50, "classes": 1000}',
        "labels/classes.txt": b"cat\ndog\nbird\n",
        "labels/copy-of-classes.txt": b"cat\ndog\nbird\n",
        "empty.txt": b"",
        "nested/a/b/c/deep.bin": os.urandom(1000),
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


@pytest.fixture
def client(server: RunningServer, tmp_path: Path) -> tuple[Registry, CountingPool]:
    return counted_registry(server.url, tmp_path / "cache")


@pytest.fixture
def reg(client: tuple[Registry, CountingPool]) -> Registry:
    return client[0]


@pytest.fixture
def pool(client: tuple[Registry, CountingPool]) -> CountingPool:
    return client[1]


def resnet(model_dir: Path, *, aliases: Iterable[str] = (), tags: Iterable[str] = ()) -> Artifact:
    """The model folder as a training job logs it: metadata, and a reference to its training data."""
    art = Artifact("resnet", type="model", metadata={"framework": "pytorch", "epochs": 90}, aliases=aliases, tags=tags)
    art.add(model_dir)
    art.add_remote(REMOTE, "raw/train.csv")
    return art


def log_two_versions(reg: Registry, tmp_path: Path) -> tuple[LoggedArtifact, LoggedArtifact]:
    first, second = tmp_path / "v1.bin", tmp_path / "v2.bin"
    first.write_bytes(b"version one")
    second.write_bytes(b"version two")
    return (
        reg.log_artifact(Artifact("resnet", type="model").add(first, "model.bin")),
        reg.log_artifact(Artifact("resnet", type="model").add(second, "model.bin")),
    )


# ---------------------------------------------------------------- logging and reading back


def test_a_logged_folder_comes_back_by_alias_and_by_version(reg: Registry, model_dir: Path) -> None:
    # Given a model folder logged with metadata, an alias, tags and a reference to data elsewhere
    logged = reg.log_artifact(resnet(model_dir, aliases={"staging"}, tags={"customer:1", "resnet50"}), run_id="run-42")

    # When a deploy job asks for it by alias, and an auditor by version
    by_alias = reg.get_artifact("resnet@staging")
    by_version = reg.get_artifact("resnet", "1.0.0")

    # Then both are the first version, with everything it was logged with
    assert logged.version == by_alias.version == by_version.version == "1.0.0"
    assert logged.digest == by_alias.digest == by_version.digest
    assert by_alias.type == "model"
    assert by_alias.metadata == {"framework": "pytorch", "epochs": 90}
    assert set(by_alias.aliases) == {"latest", "staging"}
    assert set(by_alias.tags) == {"customer:1", "resnet50"}
    assert by_alias.producer is not None
    assert by_alias.producer.run_id == "run-42"
    local = tree(model_dir)
    assert {f.path: f.size for f in by_alias.files} == {p: len(b) for p, b in local.items()}
    assert by_alias.file_count == len(local)
    assert by_alias.size == sum(len(b) for b in local.values())
    # and the reference is kept as given, not fetched, and not claimed verified
    [remote] = by_alias.remote
    assert (remote.path, remote.uri, remote.verified) == ("raw/train.csv", REMOTE, False)
    # and a plain HTTP client resolving that path is sent to the URI itself
    answer = requests.get(
        f"{reg.url}/v1/resolve/vision/resnet@staging",
        params={"file": "raw/train.csv"},
        allow_redirects=False,
        timeout=10,
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, REMOTE)


def test_a_download_gives_back_every_byte(reg: Registry, model_dir: Path, tmp_path: Path) -> None:
    # Given a logged model folder
    reg.log_artifact(resnet(model_dir, aliases={"staging"}))

    # When it is downloaded by alias into a new folder
    result = reg.download("resnet@staging", root=tmp_path / "out")

    # Then the folder holds exactly the logged files, byte for byte, and the reference is listed, not fetched
    assert tree(tmp_path / "out") == tree(model_dir)
    assert result.version == "1.0.0"
    assert result.downloaded == len(tree(model_dir))
    assert [r.uri for r in result.remote] == [REMOTE]
    assert not (tmp_path / "out" / "raw").exists()


def test_logging_unchanged_content_again_sends_no_bytes_in_one_round_trip(
    reg: Registry, pool: CountingPool, model_dir: Path
) -> None:
    # Given a version already logged
    first = reg.log_artifact(resnet(model_dir))
    assert pool.blob_bytes > 0

    # When the same content is logged again
    pool.reset()
    second = reg.log_artifact(resnet(model_dir))

    # Then a new version is committed with the same digest, and no file byte went over the wire
    assert (first.version, second.version) == ("1.0.0", "2.0.0")
    assert second.digest == first.digest
    assert pool.blob_bytes == 0
    assert pool.blob_calls == []
    assert len(pool.sent) <= 2, pool.sent


def test_if_changed_keeps_the_latest_version_when_nothing_changed(
    reg: Registry, pool: CountingPool, model_dir: Path
) -> None:
    # Given a version already logged
    first = reg.log_artifact(resnet(model_dir))

    # When the same content is logged with if_changed
    pool.reset()
    again = reg.log_artifact(resnet(model_dir), if_changed=True)

    # Then the answer is the existing version; no version was added, nothing was uploaded
    assert again.version == first.version == "1.0.0"
    assert reg.summary("resnet").version_count == 1
    assert pool.blob_bytes == 0
    assert len(pool.sent) <= 2, pool.sent


def test_if_changed_over_a_thousand_files_asks_once_and_sends_nothing(
    reg: Registry, pool: CountingPool, tmp_path: Path
) -> None:
    # Given a dataset of 1,500 files logged (more than one request can offer)
    root = tmp_path / "shards"
    for i in range(1500):
        (root / f"{i // 500}").mkdir(parents=True, exist_ok=True)
        (root / f"{i // 500}" / f"{i:04d}.txt").write_text(f"shard {i}")
    first = reg.log_artifact(Artifact("shards", type="dataset").add(root))
    assert first.file_count == 1500

    # When the same content is logged with if_changed
    pool.reset()
    again = reg.log_artifact(Artifact("shards", type="dataset").add(root), if_changed=True)

    # Then one request answered the existing version, and nothing was sent
    assert again.version == first.version == "1.0.0"
    assert len(pool.sent) == 1, pool.sent
    assert pool.blob_bytes == 0
    # And once one file changes, a new version is logged, with only that file uploaded
    (root / "0" / "0000.txt").write_text("shard 0, again")
    pool.reset()
    changed = reg.log_artifact(Artifact("shards", type="dataset").add(root), if_changed=True)
    assert changed.version == "2.0.0"
    assert pool.blob_bytes == len("shard 0, again")


def test_downloads_skip_what_is_in_place_and_come_from_the_cache(
    reg: Registry, pool: CountingPool, model_dir: Path, tmp_path: Path
) -> None:
    # Given a logged version, downloaded once (which fills the local cache)
    reg.log_artifact(resnet(model_dir))
    count = len(tree(model_dir))
    first = reg.download("resnet", root=tmp_path / "a")
    assert (first.downloaded, first.from_cache, first.skipped) == (count, 0, 0)
    cached = [p for p in (tmp_path / "cache" / "blobs").rglob("*") if p.is_file()]
    assert len(cached) == len({b for b in tree(model_dir).values()})  # one cached blob per distinct content

    # When it is downloaded into the same folder again
    pool.reset()
    again = reg.download("resnet", root=tmp_path / "a")
    # Then every file is skipped: one API call, no blob fetched
    assert (again.downloaded, again.from_cache, again.skipped, again.bytes) == (0, 0, count, 0)
    assert (len(pool.api_calls), pool.blob_calls) == (1, [])

    # When it is downloaded into another folder
    pool.reset()
    other = reg.download("resnet", root=tmp_path / "b")
    # Then every file comes from the cache, none from the server, and the bytes are right
    assert (other.downloaded, other.from_cache, other.bytes) == (0, count, 0)
    assert pool.blob_calls == []
    assert tree(tmp_path / "b") == tree(model_dir)


def test_a_downloaded_file_edited_in_place_is_restored_by_the_next_download(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    # Given a downloaded version (its files hard linked with the cache), one of them then edited in place
    reg.log_artifact(resnet(model_dir))
    reg.download("resnet", root=tmp_path / "a")
    with (tmp_path / "a" / "weights.bin").open("r+b") as file:
        file.write(b"tampered")

    # When it is downloaded again, there and into another folder
    reg.download("resnet", root=tmp_path / "a")
    reg.download("resnet", root=tmp_path / "b")

    # Then both folders hold the logged bytes: the edit spoiled neither the folder nor the cache
    assert tree(tmp_path / "a") == tree(model_dir)
    assert tree(tmp_path / "b") == tree(model_dir)


@pytest.mark.slow
def test_a_version_of_2500_files_logs_in_batches_and_downloads(
    reg: Registry, pool: CountingPool, tmp_path: Path
) -> None:
    # Given a dataset folder of 2,500 small files
    root = tmp_path / "shards"
    for i in range(2500):
        folder = root / f"part-{i // 500:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.txt").write_bytes(f"sample {i}\n".encode())

    # When it is logged
    logged = reg.log_artifact(Artifact("shards", type="dataset").add(root))

    # Then one version holds all of them, offered in 3 batches of at most 1,000 (start, 2 more, commit),
    # their blobs sent in bundles of 250 (4 + 4 + 2)
    assert (logged.version, logged.file_count, logged.files_truncated) == ("1.0.0", 2500, True)
    assert len(logged.files) == 1000
    assert len(pool.api_calls) == 4, [s.path for s in pool.api_calls]
    assert len(pool.blob_calls) == 10
    assert sum(1 for _ in logged.iter_files()) == 2500

    # When it is downloaded into a new folder
    pool.reset()
    result = reg.download("shards", "1.0.0", tmp_path / "out")

    # Then every file is there, byte for byte, listed in 3 pages
    assert result.downloaded == 2500
    assert tree(tmp_path / "out") == tree(root)
    assert len(pool.api_calls) == 3


# ---------------------------------------------------------------- lineage, aliases, deletion


def test_use_artifact_resolves_the_alias_and_records_the_usage(reg: Registry, model_dir: Path) -> None:
    # Given a version holding stable
    reg.log_artifact(resnet(model_dir, aliases={"stable"}))

    # When an evaluation run declares that it uses resnet@stable
    used = reg.use_artifact("resnet@stable", run_id="run-43", pipeline="eval", step="score")

    # Then it gets the version that stable points at
    assert (used.name, used.version) == ("resnet", "1.0.0")
    # and a usage of an alias that does not exist is refused
    with pytest.raises(NotFound):
        reg.use_artifact("resnet@staging", run_id="run-43")


def test_a_recorded_usage_shows_in_the_run_and_the_lineage(reg: Registry, model_dir: Path) -> None:
    # Given resnet@1.0.0 produced by run-42 and holding staging, then used by run-43
    reg.log_artifact(resnet(model_dir, aliases={"staging"}), run_id="run-42", pipeline="train")
    reg.use_artifact("resnet@staging", run_id="run-43", pipeline="eval")

    # When anyone asks what each run did, and where the version came from and went
    used = requests.get(f"{reg.url}/v1/projects/vision/runs/run-43", timeout=10)
    produced = requests.get(f"{reg.url}/v1/projects/vision/runs/run-42", timeout=10)
    graph = requests.get(f"{reg.url}/v1/projects/vision/artifacts/resnet/versions/staging/lineage", timeout=10)

    # Then the usage and the staging are both recorded against 1.0.0
    assert (used.status_code, produced.status_code, graph.status_code) == (200, 200, 200), graph.text
    assert (used.json()["used"], used.json()["produced"]) == (["resnet@1.0.0"], [])
    assert (produced.json()["produced"], produced.json()["used"]) == (["resnet@1.0.0"], [])
    edges = {(e["from"], e["kind"], e["to"]) for e in graph.json()["edges"]}
    assert edges == {("run:run-42", "produced", "resnet@1.0.0"), ("run:run-43", "used", "resnet@1.0.0")}


def test_an_alias_moves_only_from_the_version_the_caller_expects(reg: Registry, tmp_path: Path) -> None:
    # Given versions 1.0.0 and 2.0.0, production created on 1.0.0 (expected: it did not exist yet)
    log_two_versions(reg, tmp_path)
    reg.set_alias("resnet", "production", "1.0.0", expected_version=None)

    # When a deploy moves it to 2.0.0, expecting 1.0.0
    moved = reg.set_alias("resnet", "production", "2.0.0", expected_version="1.0.0")
    assert moved.version == "2.0.0"

    # Then a second deploy that still expects 1.0.0, or expects none, fails with a 412, and nothing moves
    with pytest.raises(PreconditionFailed) as stale:
        reg.set_alias("resnet", "production", "1.0.0", expected_version="1.0.0")
    assert (stale.value.code, stale.value.status) == ("precondition_failed", 412)
    with pytest.raises(PreconditionFailed):
        reg.set_alias("resnet", "production", "1.0.0", expected_version=None)
    assert reg.get_artifact("resnet@production").version == "2.0.0"
    # and `latest` is the registry's own
    with pytest.raises(Conflict) as kept:
        reg.set_alias("resnet", "latest", "1.0.0")
    assert kept.value.code == "alias_conflict"
    # and the history shows the two moves, newest first
    history = [(m.previous_version, m.version) for m in reg.alias_history("resnet", "production")]
    assert history == [("1.0.0", "2.0.0"), (None, "1.0.0")]


def test_deleting_a_version_that_an_alias_holds_needs_force(reg: Registry, tmp_path: Path) -> None:
    # Given versions 1.0.0 and 2.0.0, production on 2.0.0
    log_two_versions(reg, tmp_path)
    reg.set_alias("resnet", "production", "2.0.0")

    # When 2.0.0 is deleted without force
    with pytest.raises(Conflict) as held:
        reg.delete_version("resnet", "2.0.0")
    # Then it is refused and nothing changed
    assert held.value.status == 409
    assert reg.get_artifact("resnet@production").version == "2.0.0"

    # When it is deleted with force
    deleted = reg.delete_version("resnet", "2.0.0", force=True)

    # Then it is gone, with its alias; latest falls back to 1.0.0
    assert deleted.state == "deleted"
    with pytest.raises(NotFound):
        reg.get_artifact("resnet", "2.0.0")
    with pytest.raises(NotFound):
        reg.get_artifact("resnet@production")
    assert reg.get_artifact("resnet").version == "1.0.0"
    assert [v.version for v in reg.versions("resnet")] == ["1.0.0"]
    # and deleting the last version, that only latest holds, needs no force
    assert reg.delete_version("resnet", "1.0.0").state == "deleted"


def test_failures_are_the_sdk_exceptions_with_a_code(reg: Registry, tmp_path: Path) -> None:
    # Given one logged version
    log_two_versions(reg, tmp_path)

    # Then what does not exist is NotFound
    with pytest.raises(NotFound) as missing:
        reg.get_artifact("no-such-model")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    with pytest.raises(NotFound):
        reg.get_artifact("resnet", "9.9.9")
    # and an explicit version that exists is a Conflict
    with pytest.raises(Conflict) as taken:
        reg.log_artifact(Artifact("resnet", type="model").add(tmp_path / "v1.bin"), version="1.0.0")
    assert taken.value.code == "version_exists"
    # and so is a version of another type under the same name
    with pytest.raises(Conflict) as retyped:
        reg.log_artifact(Artifact("resnet", type="dataset").add(tmp_path / "v1.bin"))
    assert retyped.value.code == "type_mismatch"
    # and a request the server finds malformed is Invalid
    with pytest.raises(Invalid) as bad:
        list(reg.versions("resnet", page_size=1_000_000))
    assert (bad.value.code, bad.value.status) == ("invalid_request", 400)
    # and a name that breaks the rules is refused before anything is sent
    with pytest.raises(Invalid):
        Artifact("no spaces allowed")


def test_a_registry_that_cannot_be_reached_is_unreachable(tmp_path: Path) -> None:
    # Given a port that nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    reg = Registry(url, "vision", progress=False, cache_dir=tmp_path / "cache", retry=RetryPolicy(attempts=2))

    # When a job asks for a version
    with pytest.raises(Unreachable) as down:
        reg.get_artifact("resnet@production")

    # Then it is told the registry could not be reached
    assert down.value.code == "unreachable"
