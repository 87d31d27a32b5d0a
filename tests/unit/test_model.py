"""The pure rules of the model: SemVer precedence and its sort key, names and paths, the manifest digest."""

from __future__ import annotations

import functools
import hashlib
import itertools
import ntpath
import random
import string
from collections.abc import Callable

import pytest
import semver
from hypothesis import given, settings
from hypothesis import strategies as st

from artreg.model import manifest, names, versions
from artreg.model.errors import Invalid, TooLarge
from artreg.model.wire import FileEntry, RemoteEntry

numbers = st.integers(min_value=0, max_value=10**30)
# SemVer's identifier characters; st.text over them draws far faster than st.from_regex
ident_chars = string.digits + string.ascii_letters + "-"
alnum_ids = st.text(ident_chars, min_size=1, max_size=12).filter(lambda s: not s.isdigit())  # a non-digit in it
numeric_ids = st.integers(min_value=0, max_value=10**20).map(str)
prereleases = st.lists(st.one_of(alnum_ids, numeric_ids), min_size=0, max_size=4)
builds = st.lists(st.text(ident_chars, min_size=1, max_size=6), max_size=2)


@st.composite
def version_texts(draw: st.DrawFn) -> str:
    text = ".".join(str(draw(numbers)) for _ in range(3))
    if pre := draw(prereleases):
        text += "-" + ".".join(pre)
    if build := draw(builds):
        text += "+" + ".".join(build)
    return text


def precedence(a: str, b: str) -> int:
    return semver.Version.parse(a).compare(semver.Version.parse(b))


@settings(max_examples=500)
@given(st.lists(version_texts(), min_size=2, max_size=12))
def test_sort_key_order_is_semver_precedence(texts: list[str]) -> None:
    # Given any versions, with pre-releases of numeric and alphanumeric identifiers
    # When they are sorted by their sort key as plain strings
    by_key = sorted(texts, key=versions.sort_key)
    # Then that is the order of SemVer precedence
    by_spec = sorted(texts, key=functools.cmp_to_key(precedence))
    assert [versions.sort_key(t) for t in by_key] == [versions.sort_key(t) for t in by_spec]
    for a, b in itertools.pairwise(by_key):
        assert precedence(a, b) <= 0


def test_the_spec_example_ordering() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
        "10.0.0",
    ]
    shuffled = random.Random(1).sample(ordered, len(ordered))
    assert sorted(shuffled, key=versions.sort_key) == ordered


def test_build_metadata_does_not_change_the_key() -> None:
    assert versions.sort_key("1.0.0+build.7") == versions.sort_key("1.0.0")


@pytest.mark.parametrize(
    ("highest", "bump", "expected"),
    [
        (None, "minor", "1.0.0"),
        ("2.5.14", "major", "3.0.0"),
        ("2.5.14", "minor", "2.6.0"),
        ("2.5.14", "patch", "2.5.15"),
    ],
)
def test_bumps(highest: str | None, bump: versions.Bump, expected: str) -> None:
    assert versions.bump(highest, bump) == expected


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-01", "", "1." + "9" * 100 + ".0"])
def test_invalid_versions(text: str) -> None:
    with pytest.raises(Invalid):
        versions.parse(text)


@given(st.text(min_size=1, max_size=64))
def test_an_alias_never_parses_as_a_version(text: str) -> None:
    try:
        names.check_alias(text)
    except Invalid:
        return
    assert not versions.is_version(text)


segment = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="/\\"), min_size=1, max_size=20
)


@given(st.lists(segment, min_size=1, max_size=6))
def test_a_valid_path_never_leaves_its_root(segments: list[str]) -> None:
    # Given any path the rule accepts
    path = "/".join(segments)
    try:
        names.check_path(path)
    except Invalid:
        return
    # Then it has no segment that climbs or stays, and it is relative
    assert not path.startswith("/")
    assert all(s not in ("", ".", "..") for s in path.split("/"))


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/abs", "a//b", "a/", ".", "a/./b", "a\\b", "a\x00b", "a\nb", "", "é" * 513]
)
def test_paths_that_break_the_rule(path: str) -> None:
    with pytest.raises(Invalid):
        names.check_path(path)


WINDOWS_DEVICES = ["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))]


@pytest.mark.parametrize(
    "path",
    ["D:evil.dll", "x:stream", "a/b:c", "C:/Windows/x", "a<b", "a>b", 'a"b', "a|b", "a?b", "a*b", "a.", "a/b ", "x./y"],
)
def test_paths_unsafe_on_windows_break_the_rule(path: str) -> None:
    # Given a path that Windows would read as a drive, a stream, or a name it silently changes
    # When it is checked
    # Then it is refused
    with pytest.raises(Invalid):
        names.check_path(path)


@given(
    st.sampled_from(WINDOWS_DEVICES),
    st.sampled_from([str.lower, str.upper, str.title]),
    st.sampled_from(["", ".txt", ".tar.gz", " .log"]),
    st.lists(segment.filter(lambda s: names._WINDOWS_CHARS.search(s) is None), max_size=2),
)
def test_a_windows_device_name_is_refused_in_any_segment_case_or_extension(
    device: str, case: Callable[[str], str], extension: str, before: list[str]
) -> None:
    # Given a path with a segment named as a Windows device, in any case, with any extension
    path = "/".join([*before, case(device) + extension])
    # Then the rule refuses it
    with pytest.raises(Invalid):
        names.check_path(path)


@given(st.lists(segment, min_size=1, max_size=6))
def test_a_valid_path_is_a_plain_file_name_on_windows_too(segments: list[str]) -> None:
    # Given any path the rule accepts
    path = "/".join(segments)
    try:
        names.check_path(path)
    except Invalid:
        return
    # Then no segment is a drive, a stream, a device or a name Windows changes
    for part in path.split("/"):
        assert ntpath.splitdrive(part)[0] == ""
        assert not set(part) & set('<>:"|?*')
        assert part.split(".")[0].strip().upper() not in WINDOWS_DEVICES
        assert not part.endswith((".", " "))


@given(
    st.lists(
        st.one_of(
            st.text(alphabet="aAcCoOnNuUlLpPtTrRmMxX0123456789._- ", min_size=0, max_size=8),
            st.sampled_from([*WINDOWS_DEVICES, "con.txt", "Lpt1.", "nul_x", "com10", ".x", "x.", "..", "."]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_the_one_match_for_plain_paths_accepts_only_what_the_whole_rule_accepts(segments: list[str]) -> None:
    # Given a path of the characters plain paths have, with devices, dots and spaces in places
    path = "/".join(segments)
    # When the one match takes it / Then every rule holds for it
    if names._PLAIN_PATH.fullmatch(path) and len(path) <= names.MAX_PATH_BYTES:
        assert names._path_problem(path) is None


@given(
    st.lists(st.sampled_from(["data", "a.b", "x-1", "CON", "a.", ""]), max_size=3),
    st.lists(
        st.one_of(
            st.text(alphabet="aAcCoOnNuUlLpPtTxX019._- :/\\é", min_size=0, max_size=8),
            st.sampled_from([*WINDOWS_DEVICES, "con.txt", "Lpt1.", ".x", "x.", "..", ".", "a" * 1100]),
        ),
        max_size=6,
    ),
)
def test_a_folders_names_pass_at_once_only_where_each_path_passes_the_whole_rule(
    folder: list[str], files: list[str]
) -> None:
    # Given a folder's logical path and names of its files, some of which break the rule
    base = "/".join(folder)
    # When the one match for the folder takes them / Then each path passes the whole rule
    if names.plain_paths(base, files):
        for name in files:
            path = f"{base}/{name}" if base else name
            assert names._path_problem(path) is None


def test_names_that_only_look_like_devices_are_kept() -> None:
    # Given names that contain a device name but are not one
    for path in ["console.txt", "com10", "lpt0", "nul_model/a", "aux2.bin", "a/CONx"]:
        # Then they pass the rule
        assert names.check_path(path) == path


def test_metadata_limits() -> None:
    names.check_metadata({"a": [[[[[[[1]]]]]]]})  # 8 deep
    with pytest.raises(Invalid):
        names.check_metadata({"a": [[[[[[[[1]]]]]]]]})
    with pytest.raises(TooLarge):
        names.check_metadata({"a": "x" * 70_000})


def test_metadata_filter_compares_json_scalars_as_strings() -> None:
    assert [names.metadata_scalar(v) for v in ("a", 3, 0.5, True, None)] == ["a", "3", "0.5", "true", "null"]


def _passes_path_rule(path: str) -> bool:
    try:
        names.check_path(path)
    except Invalid:  # a device name of Windows (`con`, `prn`, ...)
        return False
    return True


paths = st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}", fullmatch=True).filter(_passes_path_rule)
entries = st.lists(
    st.tuples(paths, st.binary(max_size=8), st.booleans()),
    min_size=1,
    max_size=20,
    unique_by=lambda e: e[0],
)


@given(entries, st.randoms())
def test_digest_does_not_depend_on_order(listed: list[tuple[str, bytes, bool]], rng: random.Random) -> None:
    import hashlib

    made = [
        RemoteEntry(path=p, uri=f"s3://b/{p}")
        if remote
        else FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest())
        for p, d, remote in listed
    ]
    shuffled = rng.sample(made, len(made))
    assert manifest.digest(made) == manifest.digest(shuffled)


def test_digest_changes_with_content() -> None:
    a = FileEntry(path="a", size=1, sha256="0" * 64)
    b = FileEntry(path="a", size=1, sha256="1" * 64)
    assert manifest.digest([a]) != manifest.digest([b])
    assert manifest.digest([a]) != manifest.digest([a.model_copy(update={"path": "b"})])


def test_file_metadata_is_covered_by_the_digest_and_absent_metadata_keeps_old_digests() -> None:
    # Given a file entry without metadata: its digest is the one computed before file metadata existed
    plain = FileEntry(path="a", size=1, sha256="0" * 64)
    before = "0" * 64  # the canonical text of that manifest, as it always was
    text = '{"files":[{"path":"a","sha256":"' + before + '","size":1}],"remote":[]}'
    assert manifest.digest([plain]) == hashlib.sha256(text.encode()).hexdigest()
    # When metadata is set, the digest changes with it
    split = FileEntry(path="a", size=1, sha256="0" * 64, metadata={"split": "train"})
    other = FileEntry(path="a", size=1, sha256="0" * 64, metadata={"split": "test"})
    assert len({manifest.digest([plain]), manifest.digest([split]), manifest.digest([other])}) == 3


def test_file_metadata_over_4_kib_is_too_large() -> None:
    with pytest.raises(TooLarge, match="4096"):
        FileEntry(path="a", size=1, sha256="0" * 64, metadata={"k": "x" * 4100})
