"""What the UI tests look at: a registry with versions, aliases that moved, lineage, remote references and
per-file metadata, logged through the server's API as users do; and an artifact with 10,000 versions,
written straight into a data folder (in a process of its own, while the other tests run)."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from artreg.client import Artifact, Registry

PROJECT = "vision"
MANY = "many-metrics"
MANY_VERSIONS = 10_000
HUGE = "huge-dataset"
HUGE_FILES = 100_000
BIG_FILES = 1_200
NOTE = "<img src=x onerror=document.title='pwned'>"  # a string that would run if the UI made markup of it


@dataclass
class Seeded:
    url: str
    production_moves: list[str]  # the versions `production` pointed at, oldest first


def _log_raw(url: str, name: str, files: dict[str, bytes], **request: object) -> dict:
    """A log straight over HTTP, as curl users do: upload, PUT what is missing, commit."""
    base = f"{url}/v1/projects/{PROJECT}/artifacts/{name}"
    entries = [
        {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for path, data in files.items()
    ]
    started = requests.post(f"{base}/uploads", json={"files": entries, **request}, timeout=10)
    started.raise_for_status()
    by_sha = {hashlib.sha256(data).hexdigest(): data for data in files.values()}
    for missing in started.json()["missing"]:
        requests.put(
            missing["url"], data=by_sha[missing["sha256"]], headers=missing["headers"], timeout=10
        ).raise_for_status()
    done = requests.post(f"{base}/uploads/{started.json()['upload_id']}/commit", timeout=10)
    done.raise_for_status()
    return dict(done.json())


def seed(url: str, work: Path) -> Seeded:
    reg = Registry(url, PROJECT, progress=False)
    # a dataset in two versions: a file changed, one added, one removed, metadata changed
    _log_raw(
        url,
        "iris",
        {
            "train.csv": b"a,b\n1,2\n",
            "test.csv": b"a,b\n3,4\n",
        },
        type="dataset",
        metadata={"rows": 2, "source": "uci"},
        remote=[{"uri": "s3://raw-data/iris/iris.data", "path": "raw/iris.data"}],
        producer={"run_id": "prep-1", "pipeline": "data", "step": "clean"},
        tags=["customer:1"],
    )
    _log_raw(
        url,
        "iris",
        {
            "train.csv": b"a,b\n1,2\n5,6\n",
            "val.csv": b"a,b\n7,8\n",
        },
        type="dataset",
        metadata={"rows": 3, "source": "uci", "cleaned": True, "note": NOTE},
        producer={"run_id": "prep-2", "pipeline": "data", "step": "clean"},
    )
    # a model trained on each, then used by an evaluation run
    model = work / "model.pt"
    model.write_bytes(b"weights-1")
    reg.log_artifact(Artifact("resnet", type="model").add(model), run_id="train-1", inputs=["iris@1.0.0"])
    model.write_bytes(b"weights-2")
    art = Artifact("resnet", type="model", metadata={"epochs": 10}, aliases={"staging"}, tags={"candidate"})
    reg.log_artifact(
        art.add(model), bump="minor", run_id="train-2", pipeline="train", step="fit", inputs=["iris@2.0.0"]
    )
    reg.use_artifact("resnet@1.1.0", run_id="eval-1", pipeline="eval", step="score")
    moves = ["1.0.0", "1.1.0", "1.0.0"]  # promoted, promoted again, rolled back
    for version in moves:
        reg.set_alias("resnet", "production", version)
    # a version with more files than a page (and than a version record lists inline)
    folder = work / "big"
    folder.mkdir()
    for i in range(BIG_FILES):
        (folder / f"part-{i:05d}.txt").write_bytes(b"x")
    reg.log_artifact(Artifact("shards", type="dataset").add(folder))
    return Seeded(url=url, production_moves=moves)


def seed_large(data: Path, versions: int = MANY_VERSIONS, files: int = HUGE_FILES) -> None:
    """An artifact with `versions` versions and a version with `files` files, committed by the registry
    itself into `data` (a server's data folder, before it starts): over HTTP this would take minutes."""
    from artreg.local.blobs import FolderBlobStore
    from artreg.local.sqlite_store import SqliteStore
    from artreg.model.wire import AddFiles, FileEntry, StartUpload
    from artreg.registry.service import RegistryService as Service
    from tests.support.folder_blobs import put_blob

    store = SqliteStore(data / "registry.db")
    blobs = FolderBlobStore(data / "blobs", base_url="http://127.0.0.1:1")
    service = Service(store, blobs)
    try:
        for i in range(versions):
            request = StartUpload(type="metrics", metadata={"step": i}, bump="patch", commit=True)
            service.start_upload(PROJECT, MANY, request, caller="seeder")
        sha = hashlib.sha256(b"x").hexdigest()  # one blob behind every file: what is big is the listing

        def batch(first: int) -> list[FileEntry]:
            return [FileEntry(path=f"shard-{i:06d}.bin", size=1, sha256=sha) for i in range(first, first + 1000)]

        started = service.start_upload(PROJECT, HUGE, StartUpload(type="dataset", files=batch(0)), caller="seeder")
        for missing in started.missing:  # type: ignore[union-attr]
            put_blob(blobs, missing, b"x")
        for first in range(1000, files, 1000):
            service.add_files(PROJECT, HUGE, started.upload_id, AddFiles(files=batch(first)))  # type: ignore[union-attr]
        service.commit(PROJECT, HUGE, started.upload_id, caller="seeder")  # type: ignore[union-attr]
    finally:
        store.close()


if __name__ == "__main__":
    seed_large(Path(sys.argv[1]))
