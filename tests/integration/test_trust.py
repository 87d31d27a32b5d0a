"""What a registry must hold to be trusted, on both back ends (issue 11): an upload never moves a
protected alias, an explicit version that exists is refused before any byte is sent, and pinning a
remote reference never reads what the caller could not read itself."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from artreg.model.errors import Conflict, Forbidden, NotFound
from artreg.model.wire import FileEntry, MoveAlias, RemoteSpec, StartUpload, UploadStarted
from artreg.registry.service import Committed
from tests.conftest import FAST, Backend, local_backend

P, N = "vision", "resnet"


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def pending(backend: Backend) -> list[Any]:
    return list(backend.registry.store.pending_uploads(P, backend.registry.clock.now(), timedelta(days=1)))


# ---------------------------------------------------------------- protected aliases


@pytest.mark.parametrize("commit", [False, True])
def test_an_upload_naming_a_protected_alias_is_forbidden_and_writes_nothing(backend: Backend, commit: bool) -> None:
    # Given a registry with the default settings (production is protected)
    stored = backend.blob_keys()
    # When a log asks to move production
    with pytest.raises(Forbidden) as refused:
        backend.registry.start_upload(
            P, N, StartUpload(files=[entry("w.bin", b"w")], aliases=["staging", "production"], commit=commit)
        )
    # Then it is 403 forbidden, naming the alias
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert refused.value.details["aliases"] == ["production"]
    # And nothing was written: no artifact, no upload, no blob
    with pytest.raises(NotFound):
        backend.registry.get_artifact(P, N)
    assert pending(backend) == []
    assert backend.blob_keys() == stored


def test_production_still_moves_through_its_own_route(backend: Backend) -> None:
    # Given a version logged without aliases
    version = backend.log(P, N, {"w.bin": b"w"}).record.version
    # When production is moved through PUT .../aliases/production
    backend.registry.move_alias(P, N, "production", MoveAlias(version=version))
    # Then it resolves
    assert backend.registry.resolve(P, N, "production").version == version


def test_the_protected_aliases_are_a_setting(tmp_path: Path) -> None:
    # Given a registry that protects prod and gate, and not production
    backend = local_backend(tmp_path, replace(FAST, protected_aliases=frozenset({"prod", "gate"})))
    # When a log names production, then gate
    moved = backend.log(P, N, {"w.bin": b"1"}, aliases=["production"]).record
    # Then production moves, and gate is refused
    assert moved.aliases == ["latest", "production"]
    with pytest.raises(Forbidden):
        backend.log(P, N, {"w.bin": b"2"}, aliases=["gate"])


def test_a_commit_of_an_upload_that_names_an_alias_protected_since_is_forbidden(tmp_path: Path) -> None:
    # Given an upload started naming stable, while stable was not protected
    open_backend = local_backend(tmp_path)
    started = open_backend.registry.start_upload(P, N, StartUpload(files=[entry("w.bin", b"w")], aliases=["stable"]))
    assert isinstance(started, UploadStarted)
    open_backend.put_blob(started.missing[0], b"w")
    # When the registry is restarted protecting stable, and the upload is committed
    strict = local_backend(tmp_path, replace(FAST, protected_aliases=frozenset({"stable"})))
    # Then the commit is forbidden and makes no version
    with pytest.raises(Forbidden):
        strict.registry.commit(P, N, started.upload_id)
    with pytest.raises(NotFound):
        strict.registry.get_artifact(P, N)


# ---------------------------------------------------------------- an explicit version that exists


@pytest.mark.parametrize("taken", ["1.0.0", "1.0.0+build.7"])
def test_an_explicit_version_that_exists_is_refused_before_any_byte_is_sent(backend: Backend, taken: str) -> None:
    # Given 1.0.0
    backend.log(P, N, {"w.bin": b"old"}, version="1.0.0")
    stored = backend.blob_keys()
    # When an upload of new content asks for 1.0.0 again (or for it with other build metadata)
    with pytest.raises(Conflict) as refused:
        backend.registry.start_upload(P, N, StartUpload(files=[entry("w.bin", b"new content")], version=taken))
    # Then it is version_exists at once: no URL to send the bytes to, no upload left pending
    assert refused.value.code == "version_exists"
    assert pending(backend) == []
    assert backend.blob_keys() == stored


def test_at_commit_a_version_taken_meanwhile_is_reported_before_missing_blobs(backend: Backend) -> None:
    # Given an upload of 2.0.0 whose blob was never sent
    started = backend.registry.start_upload(P, N, StartUpload(files=[entry("w.bin", b"slow")], version="2.0.0"))
    assert isinstance(started, UploadStarted)
    assert started.missing
    # And another writer that took 2.0.0 meanwhile
    backend.log(P, N, {"w.bin": b"fast"}, version="2.0.0")
    # When the first upload is committed
    with pytest.raises(Conflict) as refused:
        backend.registry.commit(P, N, started.upload_id)
    # Then what it is told is that the version exists, not that a blob is missing
    assert refused.value.code == "version_exists"


# ---------------------------------------------------------------- remote references


def test_a_reference_into_the_registrys_own_bucket_is_never_read(aws: dict[str, Any]) -> None:
    from tests.conftest import BUCKET, aws_backend

    # Given a blob another project holds in the registry's own bucket
    backend = aws_backend(aws)
    other = backend.log("secret-project", "weights", {"w.bin": b"confidential"}).record
    key = next(k for k in backend.blob_keys() if k.startswith("secret-project/"))
    # When a log of this project references it
    uri = f"s3://{BUCKET}/{key}"
    logged = backend.registry.start_upload(P, N, StartUpload(remote=[RemoteSpec(uri=uri, path="w.bin")], commit=True))
    # Then the reference is stored as given, unverified: no size, ETag or version id of it is revealed
    assert isinstance(logged, Committed)
    [remote] = logged.record.remote
    assert (remote.uri, remote.verified, remote.size, remote.etag, remote.version_id) == (uri, False, None, None, None)
    assert other.size == len(b"confidential")


def test_file_references_are_pinned_only_under_the_roots_the_server_allows(tmp_path: Path) -> None:
    # Given a local registry allowed to pin files under shared/, and files there and elsewhere
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    (shared / "train.csv").write_bytes(b"a,b\n")
    (private / "id_rsa").write_bytes(b"key")
    (shared / "link").symlink_to(private / "id_rsa")
    backend = local_backend(tmp_path / "data", file_roots=[shared])
    specs = {
        "allowed": (shared / "train.csv").as_uri(),
        "elsewhere": (private / "id_rsa").as_uri(),
        "absent": (private / "nothing").as_uri(),
        "linked-out": (shared / "link").as_uri(),
        "own-data": (tmp_path / "data" / "blobs").as_uri(),
    }
    # When a version references each
    request = StartUpload(remote=[RemoteSpec(uri=uri, path=path) for path, uri in specs.items()], commit=True)
    logged = backend.registry.start_upload(P, N, request)
    assert isinstance(logged, Committed)
    pinned = {r.path: r for r in logged.record.remote}
    # Then only the file under the allowed root is pinned
    assert pinned["allowed"].verified
    assert pinned["allowed"].size == 4
    # And every other one is stored alike, unverified, whether it exists or not: nothing is revealed
    for path in ("elsewhere", "absent", "linked-out", "own-data"):
        assert (pinned[path].verified, pinned[path].size, pinned[path].etag) == (False, None, None)


def test_no_file_reference_is_pinned_by_default(tmp_path: Path) -> None:
    # Given a local registry told of no root, and a file it can read
    (tmp_path / "train.csv").write_bytes(b"a,b\n")
    backend = local_backend(tmp_path / "data", file_roots=())
    # When a version references it
    spec = RemoteSpec(uri=(tmp_path / "train.csv").as_uri(), path="train.csv")
    logged = backend.registry.start_upload(P, N, StartUpload(remote=[spec], commit=True))
    # Then it is stored unverified: its size and mtime are not revealed
    assert isinstance(logged, Committed)
    assert (logged.record.remote[0].verified, logged.record.remote[0].size) == (False, None)


def test_the_local_server_takes_its_protected_aliases_from_the_flag_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artreg.local.server import Local

    def protected(**given: Any) -> frozenset[str]:
        return Local(tmp_path / "data", "http://127.0.0.1:1", **given).registry.policy.protected_aliases

    # Given no setting, then ARTREG_PROTECTED_ALIASES / Then production, then what the variable names
    monkeypatch.delenv("ARTREG_PROTECTED_ALIASES", raising=False)
    assert protected() == {"production"}
    monkeypatch.setenv("ARTREG_PROTECTED_ALIASES", "prod, gate")
    assert protected() == {"prod", "gate"}
    # And the flag wins over the variable
    assert protected(protected_aliases=["release,x", "y"]) == {"release", "x", "y"}


def test_the_local_janitor_reads_file_references_again_under_the_servers_roots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from artreg import cli
    from artreg.local.server import Local

    # Given a version with a file:// reference pinned under the server's allowed root
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "train.csv").write_bytes(b"a,b\n")
    local = Local(tmp_path / "data", "http://127.0.0.1:1", file_roots=[shared])
    spec = RemoteSpec(uri=(shared / "train.csv").as_uri(), path="train.csv")
    assert isinstance(local.registry.start_upload(P, N, StartUpload(remote=[spec], commit=True)), Committed)

    def janitor(*args: str) -> dict[str, Any]:
        assert cli.main(["janitor", "--data", str(tmp_path / "data"), *args]) == 0
        report: dict[str, Any] = json.loads(capsys.readouterr().out)
        return report["remote"]

    # When the janitor runs with the same root / Then the unchanged reference is not reported
    assert janitor("--allow-file-root", str(shared))["changed"] == 0
    # And without it the reference no longer reads (as after the server stopped allowing the root)
    assert janitor()["changed"] == 1
