"""Materializers chosen by type, third-party ones found through their entry point, the pickle rule;
`Version` and `artreg://` URIs. No registry here: tests/e2e/test_objects.py round-trips through one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artreg.client import Invalid, PickleRefused, Version
from artreg.client import materializers as mats
from artreg.client.uris import ArtregUri, parse_uri
from artreg.model import versions


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution whose entry point in `artreg.materializers` names a materializer of
    `Point` objects, as a third party's package would be (a .dist-info on sys.path)."""
    (tmp_path / "geo_points.py").write_text(
        textwrap.dedent(
            """
            from artreg.client.materializers import Materializer

            class Point:
                def __init__(self, x, y):
                    self.x, self.y = x, y

            class PointMaterializer(Materializer):
                name = "geo-point"
                artifact_type = "geometry"

                def can_save(self, obj):
                    return isinstance(obj, Point)

                def save(self, obj, folder, *, allow_pickle):
                    (folder / "point.txt").write_text(f"{obj.x},{obj.y}")
                    return {"file": "point.txt"}

                def load(self, folder, info, *, allow_pickle):
                    x, y = (folder / info["file"]).read_text().split(",")
                    return Point(float(x), float(y))
            """
        )
    )
    info = tmp_path / "geo_points-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: geo-points\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[artreg.materializers]\npoint = geo_points:PointMaterializer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mats._plugins.cache_clear()
    yield
    mats._plugins.cache_clear()
    sys.modules.pop("geo_points", None)


def test_a_third_party_materializer_is_found_through_its_entry_point(plugin: None, tmp_path: Path) -> None:
    import geo_points  # type: ignore[import-not-found]

    # Given a package that declares a materializer in the artreg.materializers group
    point = geo_points.Point(1.5, -2.0)
    # When an object of its type is saved
    chosen = mats.for_object(point)
    folder = tmp_path / "out"
    folder.mkdir()
    info = chosen.save(point, folder, allow_pickle=False)
    # Then it is the one chosen, and it is found again by the name recorded
    assert (chosen.name, chosen.artifact_type) == ("geo-point", "geometry")
    back = mats.by_name("geo-point").load(folder, info, allow_pickle=False)
    assert (back.x, back.y) == (1.5, -2.0)


def test_an_object_no_materializer_takes_is_refused_unless_pickling_is_allowed() -> None:
    class Opaque:
        pass

    with pytest.raises(PickleRefused, match="allow_pickle=True"):
        mats.for_object(Opaque())
    assert mats.for_object(Opaque(), allow_pickle=True).name == "pickle"
    assert mats.for_object({"a": (1, 2)}, allow_pickle=True).name == "pickle"  # a tuple would come back a list
    assert mats.for_object(float("nan"), allow_pickle=True).name == "pickle"


@pytest.mark.parametrize(
    ("obj", "name"),
    [(b"x", "bytes"), (bytearray(b"x"), "bytes"), ("x", "text"), ({"a": [1, None]}, "json"), (3, "json")],
)
def test_plain_values_are_chosen_by_type(obj: object, name: str) -> None:
    assert mats.for_object(obj).name == name


def test_an_unknown_materializer_name_says_what_is_installed() -> None:
    with pytest.raises(Invalid, match=r"no materializer 'parquet-x'.*numpy"):
        mats.by_name("parquet-x")


def test_importing_the_sdk_imports_no_heavy_library() -> None:
    # Given a fresh interpreter; When the SDK and its materializers are imported
    code = (
        "import sys, artreg.client, artreg.client.materializers.builtin, artreg.client.objects;"
        "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'sklearn', 'pyarrow', 'fsspec') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Then none of the libraries was loaded
    assert out.strip() == "[]"


# ---------------------------------------------------------------- Version


semver_text = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}" + (f"-{pre}" if pre else ""),
    st.integers(0, 30),
    st.integers(0, 30),
    st.integers(0, 30),
    st.sampled_from(["", "alpha", "alpha.1", "beta", "rc.1", "rc.10", "1"]),
)


@given(semver_text, semver_text)
def test_version_order_is_semver_precedence(a: str, b: str) -> None:
    assert (Version(a) < Version(b)) == (versions.parse(a).compare(b) < 0)
    assert (Version(a) >= b) == (versions.parse(a).compare(b) >= 0)


def test_version_is_a_string_with_next_versions() -> None:
    v = Version("2.5.14")
    assert v == "2.5.14"
    assert isinstance(v, str)
    assert {v: 1}["2.5.14"] == 1
    assert (v.next_major(), v.next_minor(), v.next_patch()) == ("3.0.0", "2.6.0", "2.5.15")
    assert isinstance(v.next_minor(), Version)
    assert Version("1.0.0+b1") != Version("1.0.0+b2")
    assert not Version("1.0.0+b1") < Version("1.0.0+b2")  # build metadata has no precedence
    with pytest.raises(Invalid):
        Version("production")


# ---------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("artreg://iris/train@production", ArtregUri("iris", "train", "production")),
        ("artreg://iris/train@1.0.0+b.7/a/b.csv", ArtregUri("iris", "train", "1.0.0+b.7", "a/b.csv")),
        ("artreg://iris/train", ArtregUri("iris", "train", "latest")),
        ("artreg://iris/train/x.csv", ArtregUri("iris", "train", "latest", "x.csv")),
        ("artreg://iris/train@latest/dir/with%20space.csv", ArtregUri("iris", "train", "latest", "dir/with space.csv")),
    ],
)
def test_uris_parse(text: str, parsed: ArtregUri) -> None:
    assert parse_uri(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["artreg://", "artreg://iris", "artreg://iris/train@", "artreg://iris/train@x/../etc", "artreg://ir is/train"],
)
def test_bad_uris_are_invalid(text: str) -> None:
    with pytest.raises(Invalid):
        parse_uri(text)
