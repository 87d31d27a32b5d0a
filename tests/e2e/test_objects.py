"""The ML engineer's side of the SDK against `artreg server`: Python objects saved and loaded through
materializers, per-file metadata, a download recorded as a run's use, versions that count like
SemVer, and `artreg://` URIs, through the SDK and through fsspec."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from artreg.client import Artifact, Invalid, NotFound, PickleRefused, Registry, TooLarge, Version
from tests.support.server import RunningServer


@pytest.fixture
def reg(server: RunningServer, tmp_path: Path) -> Registry:
    return Registry(server.url, project="vision", cache_dir=tmp_path / "cache", progress=False)


def roundtrip(reg: Registry, obj: Any, name: str, **options: Any) -> tuple[Any, Any]:
    logged = reg.save(obj, name, **options)
    return logged, reg.load(f"{name}@{logged.version}", allow_pickle=options.get("allow_pickle", False))


# ---------------------------------------------------------------- objects


@pytest.mark.parametrize(
    ("obj", "materializer"),
    [
        (b"\x00\x01weights\xff", "bytes"),
        ("accuracy: 0.93\nrecall: 0.88\n", "text"),
        ({"lr": 0.001, "layers": [64, 32], "name": "resnet", "ok": True, "none": None}, "json"),
        ([1, 2.5, "three"], "json"),
    ],
)
def test_plain_values_round_trip_and_name_their_materializer(reg: Registry, obj: Any, materializer: str) -> None:
    # Given a plain Python value; When it is saved and loaded back by name@version alone
    logged, loaded = roundtrip(reg, obj, "params")
    # Then it comes back equal, and the version's metadata says how it was written
    assert loaded == obj
    assert type(loaded) is type(obj)
    assert logged.metadata["artreg.materializer"]["name"] == materializer
    assert logged.metadata["artreg.materializer"]["version"] == 1


def test_numpy_array_round_trips_as_npy(reg: Registry) -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    logged, loaded = roundtrip(reg, array, "embeddings")
    assert [f.path for f in logged.files] == ["array.npy"]
    assert loaded.dtype == np.float32
    assert (loaded == array).all()


def test_pandas_frame_round_trips_as_parquet(reg: Registry) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "c"]}, index=pd.Index([10, 20, 30], name="id"))
    logged, loaded = roundtrip(reg, frame, "iris")
    assert logged.type == "dataset"
    assert [f.path for f in logged.files] == ["frame.parquet"]
    pd.testing.assert_frame_equal(loaded, frame)


def test_pandas_frame_without_pyarrow_is_table_json_not_pickle(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    from artreg.client.materializers import builtin

    monkeypatch.setattr(builtin, "_installed", lambda module: module != "pyarrow")
    frame = pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]})
    logged, loaded = roundtrip(reg, frame, "small")
    assert [f.path for f in logged.files] == ["frame.json"]
    pd.testing.assert_frame_equal(loaded, frame)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (too large for dev)")
@pytest.mark.parametrize("safetensors", [True, False])
def test_torch_state_dict_round_trips(reg: Registry, safetensors: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from artreg.client.materializers import builtin

    if safetensors:
        pytest.importorskip("safetensors")
    else:  # torch.save, read back with weights_only=True
        monkeypatch.setattr(builtin, "_installed", lambda module: module != "safetensors")
    state = {"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}
    logged, loaded = roundtrip(reg, state, "resnet")
    assert logged.type == "model"
    assert [f.path for f in logged.files] == ["state.safetensors" if safetensors else "state.pt"]
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_sklearn_estimator_needs_pickle_permission_without_skops(reg: Registry) -> None:
    pytest.importorskip("sklearn")
    if importlib.util.find_spec("skops") is not None:
        pytest.skip("skops is installed: estimators are not pickled")
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    # Given an estimator and no skops: saving it without permission is refused, nothing logged
    with pytest.raises(PickleRefused, match="allow_pickle=True"):
        reg.save(model, "linear")
    with pytest.raises(NotFound):
        reg.summary("linear")
    # When it is saved with permission, loading it also needs permission
    logged = reg.save(model, "linear", allow_pickle=True)
    assert logged.type == "model"
    with pytest.raises(PickleRefused, match=r"allow_pickle=True"):
        logged.load()
    loaded = logged.load(allow_pickle=True)
    assert loaded.predict([[3.0]])[0] == pytest.approx(7.0)


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value


def test_pickle_is_refused_on_load_with_how_to_allow_it(reg: Registry) -> None:
    # Given an object no materializer takes
    with pytest.raises(PickleRefused, match="allow_pickle=True"):
        reg.save(Opaque(3), "opaque")
    reg.save(Opaque(3), "opaque", allow_pickle=True)
    # When it is loaded without permission: refused, saying how to allow it
    with pytest.raises(PickleRefused) as refused:
        reg.load("opaque")
    assert "runs whatever code" in refused.value.message
    assert "allow_pickle=True" in refused.value.message
    # Then with permission it loads
    assert reg.load("opaque", allow_pickle=True).value == 3


def test_save_takes_log_options_and_the_existing_type(reg: Registry) -> None:
    reg.log_artifact(Artifact("cfg", type="config").add(Path(__file__)))
    logged = reg.save({"a": 1}, "cfg", aliases={"staging"}, tags={"t1"}, metadata={"owner": "me"}, run_id="run-7")
    assert logged.type == "config"
    assert "staging" in logged.aliases
    assert logged.tags == ["t1"]
    assert logged.metadata["owner"] == "me"
    assert logged.producer is not None
    assert reg.run("run-7").produced == [logged.qualified_name]
    assert reg.load("cfg@staging") == {"a": 1}


def test_a_version_not_saved_as_an_object_says_so(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    reg.log_artifact(Artifact("files").add(tmp_path / "a.txt"))
    with pytest.raises(Invalid, match=r"not logged by Registry\.save"):
        reg.load("files")


# ---------------------------------------------------------------- per-file metadata


def test_per_file_metadata_is_kept_and_part_of_the_digest(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("x\n1\n")
    (tmp_path / "test.csv").write_text("x\n2\n")
    art = Artifact("splits", type="dataset")
    art.add(tmp_path / "train.csv", name="data/train.csv", metadata={"split": "train", "rows": 1})
    art.add(tmp_path / "test.csv", name="data/test.csv")
    logged = reg.log_artifact(art)
    files = {f.path: f.metadata for f in reg.files("splits")}
    assert files == {"data/test.csv": {}, "data/train.csv": {"split": "train", "rows": 1}}
    # the same bytes with other file metadata are other content: if_changed logs a new version
    again = Artifact("splits", type="dataset")
    again.add(tmp_path / "train.csv", name="data/train.csv", metadata={"split": "holdout", "rows": 1})
    again.add(tmp_path / "test.csv", name="data/test.csv")
    changed = reg.log_artifact(again, if_changed=True)
    assert changed.created
    assert changed.digest != logged.digest


def test_file_metadata_over_4_kib_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    with pytest.raises(TooLarge, match="4096"):
        Artifact("big").add(tmp_path / "a", metadata={"k": "x" * 5000})


# ---------------------------------------------------------------- runs, versions


def test_a_download_with_a_run_id_is_a_use_of_that_run(reg: Registry, tmp_path: Path) -> None:
    logged = reg.save({"w": 1}, "weights")
    reg.download("weights", "latest", tmp_path / "out", run_id="eval-3")
    assert reg.run("eval-3").used == [logged.qualified_name]


def test_the_run_id_setting_is_used_by_download_use_and_log(server: RunningServer, tmp_path: Path) -> None:
    from artreg.client import ClientSettings

    settings = ClientSettings(
        url=server.url, project="vision", run_id="job-9", cache_dir=tmp_path / "c", progress=False
    )
    reg = Registry(settings=settings)
    first = reg.save([1, 2], "numbers")  # produced by job-9
    other = reg.save("x", "text")
    reg.download("numbers", root=tmp_path / "n")  # used by job-9
    reg.use_artifact("text")
    lineage = reg.run("job-9")
    assert set(lineage.produced) == {first.qualified_name, other.qualified_name}
    assert set(lineage.used) == {first.qualified_name, other.qualified_name}


def test_versions_are_semver_and_artifact_version_is_honoured(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "m").write_text("1")
    logged = reg.log_artifact(Artifact("m").add(tmp_path / "m"))
    assert isinstance(logged.version, Version)
    assert logged.version == "1.0.0"
    # Given Comet's update flow: the next minor version, set on the artifact before logging
    art = Artifact("m").add(tmp_path / "m")
    art.version = logged.version.next_minor().next_patch()
    again = reg.log_artifact(art)
    assert again.version == "1.1.1"
    assert again.version > logged.version
    assert Version("1.10.0") > Version("1.9.0") > "1.9.0-rc.1"
    assert sorted(Version(v) for v in ["1.10.0", "1.2.0", "1.2.0-alpha"]) == ["1.2.0-alpha", "1.2.0", "1.10.0"]


# ---------------------------------------------------------------- artreg:// URIs


def test_uris_name_versions_of_any_project_and_files_in_them(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(b"a,b\n1,2\n")
    other = Registry(reg.url, project="iris", cache_dir=tmp_path / "cache", progress=False)
    logged = other.log_artifact(Artifact("train", aliases={"stable"}).add(tmp_path / "train.csv"))
    # Given a client of project "vision": URIs of project "iris" resolve there
    got = reg.get_artifact("artreg://iris/train@stable")
    assert (got.project, got.version) == ("iris", logged.version)
    assert got.uri == "artreg://iris/train@1.0.0"
    assert reg.open("artreg://iris/train@stable/train.csv").read() == b"a,b\n1,2\n"
    result = reg.download("artreg://iris/train@stable/train.csv", root=tmp_path / "one")
    assert (tmp_path / "one" / "train.csv").read_bytes() == b"a,b\n1,2\n"
    assert result.from_cache == 1
    with pytest.raises(NotFound, match="does not exist"):
        reg.get_artifact("artreg://iris/trian")


def test_fsspec_reads_a_file_checked_against_the_manifest(
    reg: Registry, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsspec = pytest.importorskip("fsspec")
    data = b"sepal,petal\n5.1,1.4\n4.9,1.3\n"
    (tmp_path / "train.csv").write_bytes(data)
    reg.log_artifact(Artifact("iris", aliases={"stable"}).add(tmp_path / "train.csv", "csv/train.csv"))
    monkeypatch.setenv("ARTREG_URL", server.url)
    monkeypatch.setenv("ARTREG_CACHE_DIR", str(tmp_path / "fs-cache"))
    # When fsspec opens the file by URI (the registry's URL from ARTREG_URL)
    with fsspec.open("artreg://vision/iris@stable/csv/train.csv", "rb") as f:
        assert f.read() == data
    fs = fsspec.filesystem("artreg")
    assert fs.ls("artreg://vision/iris@stable", detail=False) == ["vision/iris@stable/csv"]
    assert fs.info("artreg://vision/iris@stable/csv/train.csv")["size"] == len(data)
    # pandas reads through it too
    pd = pytest.importorskip("pandas")
    assert pd.read_csv("artreg://vision/iris@stable/csv/train.csv")["petal"].tolist() == [1.4, 1.3]
    # Then a cached blob whose bytes were changed is not served: it is fetched again and checked
    cached = tmp_path / "fs-cache" / "blobs" / "sha256"
    blob = next(p for p in cached.rglob("*") if p.is_file())
    assert blob.name == hashlib.sha256(data).hexdigest()
    blob.chmod(0o644)
    blob.write_bytes(b"X" * len(data))
    with fsspec.open("artreg://vision/iris@stable/csv/train.csv", "rb") as f:
        assert f.read() == data
    with pytest.raises(FileNotFoundError):
        fsspec.open("artreg://vision/iris@stable/csv/nope.csv", "rb").open()
