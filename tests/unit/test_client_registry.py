"""`Registry` against a scripted fake of the urllib3 pool (no network, no server): what it sends to
log, page, move aliases and download, and what it makes of the answers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from artreg.client import Artifact, ClientSettings, Invalid, LoggedArtifact, Registry, RetryPolicy, split_ref
from artreg.client import upload as client_upload
from artreg.client.files import HashedFile
from artreg.client.http import Transport
from tests.support.urllib3_answer import Urllib3Answer

API = "http://registry.test"
BLOBS = "blobs.test"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record(name: str = "resnet", version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "project": "vision",
        "name": name,
        "type": "model",
        "version": version,
        "state": "committed",
        "created_at": "2026-11-22T10:00:00Z",
        "aliases": ["latest"],
        "size": 0,
        "file_count": 0,
        "digest": "d" * 64,
        **extra,
    }


def _json(data: Any, status: int = 200) -> Urllib3Answer:
    return Urllib3Answer(status, json.dumps(data).encode())


class FakeApi:
    """The registry's side of an upload: blobs in `stored` are held already; a blob over
    `multipart_over` bytes comes as a multipart target of `part_size` parts. Blob PUTs go to BLOBS."""

    def __init__(self, stored: set[str] | None = None, multipart_over: int = 1 << 30, part_size: int = 4) -> None:
        self.stored = set(stored or ())
        self.multipart_over = multipart_over
        self.part_size = part_size
        self.calls: list[tuple[str, str, Any]] = []
        self.puts: list[tuple[str, dict[str, str], bytes]] = []
        self.routes: dict[tuple[str, str], Any] = {}

    def _missing(self, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        targets: dict[str, dict[str, Any]] = {}
        for f in files:
            sha, size = f["sha256"], f["size"]
            if sha in self.stored or sha in targets:
                continue
            if size > self.multipart_over:
                count = -(-size // self.part_size)
                parts = [{"part_number": n, "url": f"http://{BLOBS}/{sha}/part/{n}"} for n in range(1, count + 1)]
                targets[sha] = {
                    "sha256": sha,
                    "size": size,
                    "multipart": {"upload_id": "mp", "part_size": self.part_size, "parts": parts},
                }
            else:
                targets[sha] = {
                    "sha256": sha,
                    "size": size,
                    "url": f"http://{BLOBS}/{sha}",
                    "headers": {"x-amz-checksum-sha256": sha[:8]},
                }
        return list(targets.values())

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **_: Any) -> Urllib3Answer:
        split = urlsplit(url)
        if split.netloc == BLOBS:
            if method == "GET":
                return Urllib3Answer(200, self.routes[("BLOB", split.path)])
            data = b"".join(body)
            self.puts.append((split.path, dict(headers), data))
            return Urllib3Answer(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})  # noqa: S324
        payload = json.loads(body) if body else None
        query = dict(parse_qsl(split.query))
        self.calls.append((method, split.path + (f"?{split.query}" if split.query else ""), payload))
        if (method, split.path) in self.routes:
            answer = self.routes[(method, split.path)]
            return answer(query, payload) if callable(answer) else _json(answer)
        if method == "POST" and split.path.endswith("/uploads"):
            missing = self._missing(payload["files"])
            if payload["commit"] and not missing:
                return _json(record(file_count=len(payload["files"])), 201)
            expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            return _json({"upload_id": "u1", "state": "pending", "expires_at": expires, "missing": missing}, 201)
        if method == "POST" and split.path.endswith("/files"):
            return _json({"upload_id": "u1", "missing": self._missing(payload["files"])})
        if method == "POST" and split.path.endswith("/complete"):
            return _json({"completed": True})
        if method == "POST" and split.path.endswith("/commit"):
            return _json(record(), 201)
        raise AssertionError(f"unexpected {method} {url}")

    def api_calls(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.calls]


def registry(api: FakeApi) -> Registry:
    transport = Transport(API, pool=api, retry=RetryPolicy(sleep=lambda _: None))
    settings = ClientSettings(url=API, project="vision", cache=False, progress=False, workers=4)
    return Registry(settings=settings, transport=transport)


def _files(root: Path, count: int, prefix: str = "f") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"{prefix}{i:05d}.txt").write_text(f"content {i}\n")
    return root


UPLOADS = "/v1/projects/vision/artifacts/resnet/uploads"


# ---------------------------------------------------------------- logging


def test_content_the_registry_holds_logs_in_one_request(tmp_path: Path) -> None:
    # Given files whose blobs the registry already stores
    folder = _files(tmp_path / "d", 3)
    api = FakeApi(stored={_sha(f"content {i}\n".encode()) for i in range(3)})
    art = Artifact("resnet", type="model", metadata={"framework": "pytorch"}, aliases={"staging"}, tags={"c:1"})
    art.add(folder)

    # When the artifact is logged
    logged = registry(api).log_artifact(art, bump="minor", run_id="run-42")

    # Then one request committed it, with no bytes sent
    assert api.api_calls() == [("POST", UPLOADS)]
    sent = api.calls[0][2]
    assert sent["commit"] is True
    assert sent["bump"] == "minor"
    assert sent["aliases"] == ["staging"]
    assert sent["tags"] == ["c:1"]
    assert sent["producer"]["run_id"] == "run-42"
    assert [f["path"] for f in sent["files"]] == ["f00000.txt", "f00001.txt", "f00002.txt"]
    assert api.puts == []
    assert isinstance(logged, LoggedArtifact)
    assert logged.qualified_name == "resnet@1.0.0"
    with pytest.warns(DeprecationWarning, match="qualified_name"):
        assert logged.ref == "resnet@1.0.0"


def test_missing_blobs_are_put_once_each_with_the_answer_headers_then_committed(tmp_path: Path) -> None:
    # Given two files with the same content and one other, none stored
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.yaml").write_bytes(b"same")
    (tmp_path / "d" / "b.yaml").write_bytes(b"same")
    (tmp_path / "model.pt").write_bytes(b"weights")
    api = FakeApi()
    art = Artifact("resnet").add(tmp_path / "d", name="configs").add(tmp_path / "model.pt")
    art.add_remote("s3://bucket/dir/train.csv", name="raw/train.csv")

    # When it is logged
    registry(api).log_artifact(art, version="1.4.5")

    # Then each distinct blob was PUT once, with exactly its signed headers and its length, then committed
    assert sorted((p, h, d) for p, h, d in api.puts) == sorted(
        [
            (f"/{_sha(b'same')}", {"x-amz-checksum-sha256": _sha(b"same")[:8], "Content-Length": "4"}, b"same"),
            (
                f"/{_sha(b'weights')}",
                {"x-amz-checksum-sha256": _sha(b"weights")[:8], "Content-Length": "7"},
                b"weights",
            ),
        ]
    )
    assert api.api_calls() == [("POST", UPLOADS), ("POST", f"{UPLOADS}/u1/commit")]
    first = api.calls[0][2]
    assert first["version"] == "1.4.5"
    assert [f["path"] for f in first["files"]] == ["configs/a.yaml", "configs/b.yaml", "model.pt"]
    assert first["remote"] == [{"uri": "s3://bucket/dir/train.csv", "path": "raw/train.csv", "metadata": {}}]


def test_more_than_a_thousand_files_go_in_batches(tmp_path: Path) -> None:
    # Given 2,500 files, all stored already
    folder = _files(tmp_path / "many", 2500)
    api = FakeApi(stored={_sha(f"content {i}\n".encode()) for i in range(2500)})

    # When they are logged
    registry(api).log_artifact(Artifact("resnet").add(folder))

    # Then the upload starts with 1,000 (not committing), adds 1,000 and 500, and commits
    assert api.api_calls() == [
        ("POST", UPLOADS),
        ("POST", f"{UPLOADS}/u1/files"),
        ("POST", f"{UPLOADS}/u1/files"),
        ("POST", f"{UPLOADS}/u1/commit"),
    ]
    assert [len(c[2]["files"]) for c in api.calls[:3]] == [1000, 1000, 500]
    assert api.calls[0][2]["commit"] is False


def test_large_files_go_in_batches_whose_part_urls_fit_one_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three files of 5 TiB (as hashed), each needing 2,000 part URLs if the registry lacks it
    folder = _files(tmp_path / "huge", 3)
    hash_stream = client_upload.hash_stream

    def as_huge(files: Any, **options: Any) -> Iterator[HashedFile]:
        return (replace(f, size=5 * 1024**4 - 1) for f in hash_stream(files, **options))

    monkeypatch.setattr(client_upload, "hash_stream", as_huge)
    api = FakeApi(stored={_sha(f"content {i}\n".encode()) for i in range(3)})

    # When they are logged
    registry(api).log_artifact(Artifact("resnet").add(folder))

    # Then each is offered in a request of its own, so no answer could carry over 2,000 part URLs
    assert api.api_calls() == [
        ("POST", UPLOADS),
        ("POST", f"{UPLOADS}/u1/files"),
        ("POST", f"{UPLOADS}/u1/files"),
        ("POST", f"{UPLOADS}/u1/commit"),
    ]
    assert [len(c[2]["files"]) for c in api.calls[:3]] == [1, 1, 1]


def test_a_large_blob_is_put_in_parts_and_completed_with_their_etags(tmp_path: Path) -> None:
    # Given a 10-byte file and a registry that asks for 4-byte parts over 8 bytes
    data = b"0123456789"
    (tmp_path / "big.bin").write_bytes(data)
    api = FakeApi(multipart_over=8, part_size=4)

    # When it is logged
    registry(api).log_artifact(Artifact("resnet").add(tmp_path / "big.bin"))

    # Then each part was PUT from its offset, and completed with the part ETags in order
    sha = _sha(data)
    assert sorted((p, d) for p, _, d in api.puts) == [
        (f"/{sha}/part/1", b"0123"),
        (f"/{sha}/part/2", b"4567"),
        (f"/{sha}/part/3", b"89"),
    ]
    complete = next(c for c in api.calls if c[1].endswith("/complete"))
    assert complete[1] == f"{UPLOADS}/u1/blobs/{sha}/complete"
    assert complete[2] == {
        "parts": [
            {"part_number": n, "etag": f'"{hashlib.md5(part).hexdigest()}"'}  # noqa: S324
            for n, part in enumerate([b"0123", b"4567", b"89"], start=1)
        ]
    }
    assert api.api_calls()[-1] == ("POST", f"{UPLOADS}/u1/commit")


def test_a_bad_request_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    # Given an artifact
    (tmp_path / "m").write_bytes(b"w")
    api = FakeApi()
    reg = registry(api)
    art = Artifact("resnet").add(tmp_path / "m")

    # When it is logged with both a version and a bump, a bad version, a reserved alias or a run-less input
    # Then each is refused with Invalid, and nothing reached the registry
    with pytest.raises(Invalid):
        reg.log_artifact(art, version="1.0.0", bump="major")
    with pytest.raises(Invalid, match="semantic version"):
        reg.log_artifact(art, version="one")
    with pytest.raises(Invalid):
        reg.log_artifact(Artifact("resnet", aliases={"latest"}).add(tmp_path / "m"))
    with pytest.raises(Invalid, match="run_id"):
        reg.log_artifact(art, inputs=["iris@1.0.0"])
    assert api.calls == []


def test_inputs_name_the_versions_a_run_used(tmp_path: Path) -> None:
    # Given a version that a run used, and a file
    (tmp_path / "m").write_bytes(b"w")
    api = FakeApi(stored={_sha(b"w")})
    iris = LoggedArtifact.model_validate(record(name="iris", version="2.0.0"))

    # When the artifact is logged with its inputs
    registry(api).log_artifact(
        Artifact("resnet").add(tmp_path / "m"), run_id="run-42", pipeline="train", step="fit", inputs=[iris, "x@1.0.0"]
    )

    # Then the producer lists them as name@version
    assert api.calls[0][2]["producer"] == {
        "run_id": "run-42",
        "pipeline": "train",
        "step": "fit",
        "inputs": ["iris@2.0.0", "x@1.0.0"],
    }


# ---------------------------------------------------------------- reading and changing


def test_versions_follow_every_page_with_the_filters() -> None:
    # Given two pages of versions
    api = FakeApi()
    pages = {
        None: {"items": [record(version="2.0.0")], "next_cursor": "c2"},
        "c2": {"items": [record(version="1.0.0")], "next_cursor": None},
    }
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions")] = lambda q, _: _json(pages[q.get("cursor")])

    # When the versions are listed with filters
    found = list(registry(api).versions("resnet", tag="best", metadata={"framework": "pytorch", "epochs": 10}))

    # Then both pages were read, with the filters each time
    assert [v.version for v in found] == ["2.0.0", "1.0.0"]
    first, second = api.calls
    assert (
        first[1]
        == "/v1/projects/vision/artifacts/resnet/versions?tag=best&metadata.framework=pytorch&metadata.epochs=10"
    )
    assert second[1].endswith("&cursor=c2")


def test_set_alias_sends_expected_version_only_when_given() -> None:
    # Given a registry
    api = FakeApi()
    api.routes[("PUT", "/v1/projects/vision/artifacts/resnet/aliases/production")] = record(version="3.0.0")
    reg = registry(api)

    # When the alias is moved unconditionally, only if absent, and only from 2.0.0
    reg.set_alias("resnet", "production", "3.0.0")
    reg.set_alias("resnet", "production", "3.0.0", expected_version=None)
    reg.set_alias("resnet", "production", "3.0.0", expected_version="2.0.0")

    # Then "absent" and "null" are told apart
    assert [c[2] for c in api.calls] == [
        {"version": "3.0.0"},
        {"version": "3.0.0", "expected_version": None},
        {"version": "3.0.0", "expected_version": "2.0.0"},
    ]


def test_changes_use_the_routes_of_api_md() -> None:
    # Given a registry
    api = FakeApi()
    version = "/v1/projects/vision/artifacts/resnet/versions/1.0.0+build.7"
    api.routes[("PATCH", version)] = record()
    api.routes[("DELETE", version)] = record()
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/production")] = record(version="1.0.0")
    api.routes[("POST", "/v1/projects/vision/artifacts/resnet/versions/1.0.0/usages")] = {}
    api.routes[("DELETE", "/v1/projects/vision/artifacts/resnet/aliases/staging")] = {}
    reg = registry(api)

    # When tags, metadata, deletion, usage and alias removal are asked for
    reg.tag("resnet", "1.0.0+build.7", "best")
    reg.untag("resnet@1.0.0+build.7", None, "old")
    reg.update_metadata("resnet", "1.0.0+build.7", {"acc": 0.9, "gone": None})
    reg.delete_version("resnet", "1.0.0+build.7", force=True)
    used = reg.use_artifact("resnet@production", run_id="run-43", step="eval")
    reg.remove_alias("resnet", "staging")

    # Then each went to its route with its body
    assert api.calls == [
        ("PATCH", version, {"tags_add": ["best"], "tags_remove": []}),
        ("PATCH", version, {"tags_add": [], "tags_remove": ["old"]}),
        ("PATCH", version, {"tags_add": [], "tags_remove": [], "metadata": {"acc": 0.9, "gone": None}}),
        ("DELETE", version + "?force=true", None),
        ("GET", "/v1/projects/vision/artifacts/resnet/versions/production", None),
        ("POST", "/v1/projects/vision/artifacts/resnet/versions/1.0.0/usages", {"run_id": "run-43", "step": "eval"}),
        ("DELETE", "/v1/projects/vision/artifacts/resnet/aliases/staging", None),
    ]
    assert used.version == "1.0.0"


def test_ref_is_a_version_or_an_alias_and_the_old_keyword_still_works_with_a_warning() -> None:
    # Given a registry where production points at 1.0.0
    api = FakeApi()
    resolved = "/v1/projects/vision/artifacts/resnet/versions/production"
    api.routes[("GET", resolved)] = record(version="1.0.0")
    api.routes[("POST", "/v1/projects/vision/artifacts/resnet/versions/1.0.0/usages")] = {}
    api.routes[("GET", resolved + "/lineage")] = {"root": "resnet@1.0.0", "nodes": [], "edges": []}
    reg = registry(api)

    # When a version is asked for by ref in each spelling, and by the deprecated version_or_alias=
    by_position = reg.get_artifact("resnet", "production")
    by_keyword = reg.get_artifact("resnet", ref="production")
    in_the_name = reg.get_artifact("resnet@production")
    with pytest.warns(DeprecationWarning, match="version_or_alias= is deprecated: use ref="):
        by_old_name = reg.get_artifact("resnet", version_or_alias="production")
    with pytest.warns(DeprecationWarning, match="version_or_alias="):
        reg.use_artifact("resnet", version_or_alias="production", run_id="r")
    with pytest.warns(DeprecationWarning, match="version_or_alias="):
        reg.lineage("resnet", version_or_alias="production")

    # Then all resolve the same version by the same route; the old and the new name together are refused
    assert {v.version for v in (by_position, by_keyword, in_the_name, by_old_name)} == {"1.0.0"}
    gets = {path for method, path in api.api_calls() if method == "GET"}
    assert gets == {resolved, resolved + "/lineage?direction=both"}
    with pytest.raises(TypeError, match="ref="):
        reg.get_artifact("resnet", "production", version_or_alias="staging")


def test_summary_is_the_artifact_and_artifact_is_its_deprecated_name() -> None:
    # Given an artifact
    api = FakeApi()
    summary = {
        "project": "vision",
        "name": "resnet",
        "type": "model",
        "latest": "1.0.0",
        "version_count": 1,
        "aliases": {"latest": "1.0.0"},
        "created_at": "2026-11-22T10:00:00Z",
        "updated_at": "2026-11-22T10:00:00Z",
    }
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet")] = summary
    reg = registry(api)

    # When its summary is asked for by its new name and its old one
    new = reg.summary("resnet")
    with pytest.warns(DeprecationWarning, match=r"summary\(\)"):
        old = reg.artifact("resnet")

    # Then both answer the summary, not a version
    assert new == old
    assert new.version_count == 1


def test_the_run_id_setting_is_the_default_producer_and_user(tmp_path: Path) -> None:
    # Given a registry whose settings name the run (ARTREG_RUN_ID), and content it holds
    (tmp_path / "m").write_bytes(b"w")
    api = FakeApi(stored={_sha(b"w")})
    api.routes[("GET", "/v1/projects/vision/artifacts/iris/versions/latest")] = record(name="iris")
    api.routes[("POST", "/v1/projects/vision/artifacts/iris/versions/1.0.0/usages")] = {}
    transport = Transport(API, pool=api, retry=RetryPolicy(sleep=lambda _: None))
    reg = Registry(settings=ClientSettings(url=API, project="vision", cache=False, run_id="run-7"), transport=transport)

    # When a version is used and another logged with no run_id
    reg.use_artifact("iris")
    reg.log_artifact(Artifact("resnet").add(tmp_path / "m"))

    # Then both name the run of the settings
    assert api.calls[1][2] == {"run_id": "run-7"}
    assert api.calls[2][2]["producer"] == {"run_id": "run-7", "inputs": []}


def test_split_ref() -> None:
    # Given refs written both ways / Then they split the same, latest by default
    assert split_ref("resnet@production") == ("resnet", "production")
    assert split_ref("resnet", "1.0.0") == ("resnet", "1.0.0")
    assert split_ref("resnet") == ("resnet", "latest")
    with pytest.raises(Invalid):
        split_ref("../etc@1.0.0")


# ---------------------------------------------------------------- downloading


def test_download_pages_pins_the_version_and_fetches_every_file(tmp_path: Path) -> None:
    # Given a version whose files come on two pages, the first one resolved from an alias
    api = FakeApi()
    later = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    blobs = {"a.txt": b"alpha", "sub/b.txt": b"bravo"}
    for data in blobs.values():
        api.routes[("BLOB", f"/{_sha(data)}")] = data

    def entry(path: str) -> dict[str, Any]:
        data = blobs[path]
        return {"path": path, "size": len(data), "sha256": _sha(data), "url": f"http://{BLOBS}/{_sha(data)}"}

    remote = {"path": "raw/x", "uri": "s3://b/x"}
    page = {"version": "3.0.0", "digest": "d" * 64, "expires_at": later, "remote": []}
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/production/download")] = {
        **page,
        "files": [entry("a.txt")],
        "next_cursor": "c2",
    }
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/3.0.0/download")] = {
        **page,
        "files": [entry("sub/b.txt")],
        "remote": [remote],
        "next_cursor": None,
    }

    # When it is downloaded
    result = registry(api).download("resnet@production", root=tmp_path / "out")

    # Then the later page was asked of the version the first resolved to, and every file is in place
    assert api.api_calls() == [
        ("GET", "/v1/projects/vision/artifacts/resnet/versions/production/download?limit=1000"),
        ("GET", "/v1/projects/vision/artifacts/resnet/versions/3.0.0/download?limit=1000&cursor=c2"),
    ]
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"bravo"
    assert (result.version, result.downloaded) == ("3.0.0", 2)
    assert [r.uri for r in result.remote] == ["s3://b/x"]


def test_a_download_with_an_unsafe_path_on_a_later_page_writes_nothing_outside(tmp_path: Path) -> None:
    # Given a version whose second page holds a path that climbs out
    api = FakeApi()
    later = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    good = {"path": "a.txt", "size": 1, "sha256": _sha(b"a"), "url": f"http://{BLOBS}/{_sha(b'a')}"}
    bad = {"path": "../evil", "size": 1, "sha256": _sha(b"e"), "url": f"http://{BLOBS}/{_sha(b'e')}"}
    page = {"version": "1.0.0", "digest": "d" * 64, "expires_at": later, "remote": []}
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/latest/download")] = {
        **page,
        "files": [good],
        "next_cursor": "c2",
    }
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/1.0.0/download")] = {
        **page,
        "files": [bad],
        "next_cursor": None,
    }

    api.routes[("BLOB", f"/{_sha(b'a')}")] = b"a"

    # When it is downloaded / Then it is refused before any file of that page is written: pages are
    # streamed (memory holds two of them), so the first page's files are in place, inside the folder
    with pytest.raises(Invalid):
        registry(api).download("resnet", root=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]
    assert not (tmp_path / "evil").exists()


# ---------------------------------------------------------------- the package


def test_import_artreg_is_light_and_exports_lazily() -> None:
    # Given a fresh interpreter
    code = (
        "import sys, artreg\n"
        "heavy = [m for m in ('pydantic', 'urllib3', 'botocore', 'tqdm', 'artreg.client') if m in sys.modules]\n"
        "assert heavy == [], heavy\n"
        "from artreg import Registry, Artifact, LoggedArtifact, NotFound, Conflict\n"
        "assert Registry.__module__ == 'artreg.client.registry'\n"
        "assert NotFound is __import__('artreg.client', fromlist=['NotFound']).NotFound\n"
        "assert 'botocore' not in sys.modules and 'tqdm' not in sys.modules\n"
        "assert 'pydantic_settings' not in sys.modules\n"
        "print(artreg.__version__)\n"
    )

    # When artreg is imported, then its names used
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    # Then nothing heavy came with the import, and the names resolve
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_artreg_and_artreg_client_export_the_same_names() -> None:
    # Given both public surfaces
    import artreg
    import artreg.client

    # Then artreg offers exactly the SDK's names (and its version), each the very same object
    assert set(artreg.__all__) == {*artreg.client.__all__, "__version__"}
    for name in artreg.client.__all__:
        assert getattr(artreg, name) is getattr(artreg.client, name), name


def test_a_page_whose_urls_are_about_to_expire_is_asked_for_again(tmp_path: Path) -> None:
    # Given a download page whose URLs expire in ten seconds, then a fresh one
    api = FakeApi()
    api.routes[("BLOB", f"/{_sha(b'a')}")] = b"a"
    entry = {"path": "a.txt", "size": 1, "sha256": _sha(b"a"), "url": f"http://{BLOBS}/{_sha(b'a')}"}
    answers = iter([datetime.now(UTC) + timedelta(seconds=10), datetime.now(UTC) + timedelta(minutes=15)])

    def page(query: dict[str, str], _: Any) -> Urllib3Answer:
        expires = next(answers).isoformat()
        return _json({"version": "1.0.0", "digest": "d" * 64, "expires_at": expires, "files": [entry], "remote": []})

    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/latest/download")] = page
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/1.0.0/download")] = page

    # When the version is downloaded
    result = registry(api).download("resnet", root=tmp_path / "out")

    # Then the page was fetched again, for the pinned version, before its files
    assert api.api_calls() == [
        ("GET", "/v1/projects/vision/artifacts/resnet/versions/latest/download?limit=1000"),
        ("GET", "/v1/projects/vision/artifacts/resnet/versions/1.0.0/download?limit=1000"),
    ]
    assert result.downloaded == 1


# ---------------------------------------------------------------- what issue 15 added


def test_file_metadata_and_the_artifacts_version_are_sent(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("x\n")
    api = FakeApi(stored={_sha(b"x\n")})
    art = Artifact("resnet").add(tmp_path / "train.csv", name="data/train.csv", metadata={"split": "train"})
    art.version = "1.4.5"
    logged = registry(api).log_artifact(art)
    sent = api.calls[0][2]
    assert sent["files"] == [
        {"path": "data/train.csv", "size": 2, "sha256": _sha(b"x\n"), "metadata": {"split": "train"}}
    ]
    assert sent["version"] == "1.4.5"
    assert logged.created is True
    with pytest.raises(Invalid, match="differs"):
        registry(api).log_artifact(art, version="2.0.0")


def test_unchanged_content_answers_created_false(tmp_path: Path) -> None:
    (tmp_path / "m").write_text("m")
    api = FakeApi(stored={_sha(b"m")})
    api.routes[("POST", UPLOADS)] = lambda q, body: _json(record(), 200)  # if_changed found latest equal
    logged = registry(api).log_artifact(Artifact("resnet").add(tmp_path / "m"), if_changed=True)
    assert logged.created is False


def test_a_uri_of_another_project_is_asked_of_that_project() -> None:
    api = FakeApi()
    api.routes[("GET", "/v1/projects/iris/artifacts/train/versions/production")] = record("train")
    got = registry(api).get_artifact("artreg://iris/train@production")
    assert api.api_calls() == [("GET", "/v1/projects/iris/artifacts/train/versions/production")]
    assert got.registry.project == "iris"
    with pytest.raises(Invalid, match="names a file"):
        registry(api).get_artifact("artreg://iris/train@production/a.csv")


def test_a_download_with_a_run_id_records_the_use_of_the_version_it_got(tmp_path: Path) -> None:
    api = FakeApi()
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    page = {"version": "2.0.0", "digest": "d" * 64, "expires_at": expires, "files": [], "remote": []}
    api.routes[("GET", "/v1/projects/vision/artifacts/resnet/versions/production/download")] = page
    api.routes[("POST", "/v1/projects/vision/artifacts/resnet/versions/2.0.0/usages")] = {"recorded": True}
    result = registry(api).download("resnet@production", root=tmp_path, run_id="eval-1", step="score")
    assert result.version == "2.0.0"
    assert api.calls[-1] == (
        "POST",
        "/v1/projects/vision/artifacts/resnet/versions/2.0.0/usages",
        {"run_id": "eval-1", "step": "score"},
    )
