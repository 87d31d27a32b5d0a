"""The SDK's local side of logging: walking what was added into logical paths, hashing, batching."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from artreg.client import Artifact, Invalid
from artreg.client.files import CHUNK, LocalFile, batches, hash_file, hash_files, run_parallel, walk
from artreg.model import multipart


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _paths(files: list[LocalFile]) -> list[str]:
    return [f.path for f in files]


# ---------------------------------------------------------------- walking


def test_a_file_is_logged_under_its_name_or_the_path_given(tmp_path: Path) -> None:
    # Given a file
    model = _write(tmp_path / "model.pt", "weights")

    # When it is walked with and without a logical path
    plain = walk(model)
    named = walk(model, "models/best.pt")

    # Then it is logged under its own name, or the path given
    assert _paths(plain) == ["model.pt"]
    assert _paths(named) == ["models/best.pt"]
    assert plain[0].source == str(model)


def test_a_folder_keeps_relative_posix_paths_under_the_prefix(tmp_path: Path) -> None:
    # Given a nested folder
    _write(tmp_path / "configs" / "a.yaml", "a")
    _write(tmp_path / "configs" / "deep" / "er" / "b.yaml", "b")

    # When it is walked at the root and under a prefix
    root = walk(tmp_path / "configs")
    prefixed = walk(tmp_path / "configs", "configs/")

    # Then the paths are relative, POSIX and sorted
    assert _paths(root) == ["a.yaml", "deep/er/b.yaml"]
    assert _paths(prefixed) == ["configs/a.yaml", "configs/deep/er/b.yaml"]


def test_a_symlink_that_stays_inside_the_folder_is_followed(tmp_path: Path) -> None:
    # Given a folder with a link to a file and a link to a folder, both inside it
    data = tmp_path / "data"
    _write(data / "real" / "x.csv", "x")
    (data / "alias.csv").symlink_to(data / "real" / "x.csv")
    (data / "mirror").symlink_to(data / "real", target_is_directory=True)

    # When it is walked
    files = walk(data)

    # Then the links are logged with the content they point at
    assert _paths(files) == ["alias.csv", "mirror/x.csv", "real/x.csv"]


def test_a_symlink_escaping_the_added_folder_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Given a folder with links to a file and a folder outside it, and a link that loops to its parent
    secret = _write(tmp_path / "outside" / "secret.txt", "password")
    data = tmp_path / "data"
    _write(data / "ok.txt", "fine")
    (data / "leak.txt").symlink_to(secret)
    (data / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    (data / "sub").mkdir()
    (data / "sub" / "loop").symlink_to(data, target_is_directory=True)
    (data / "dangling").symlink_to(tmp_path / "nowhere")

    # When it is walked
    files = walk(data)

    # Then only the file inside is logged, and the skips are reported
    assert _paths(files) == ["ok.txt"]
    assert all("secret" not in f.source for f in files)
    assert "leads outside" in caplog.text
    assert "loops back" in caplog.text


def test_a_name_that_breaks_the_path_rule_is_refused(tmp_path: Path) -> None:
    # Given a folder holding a file whose name has a backslash (legal on POSIX, not in an artifact)
    _write(tmp_path / "d" / "bad\\name.txt", "x")

    # When it is walked / Then the path rule refuses it
    with pytest.raises(Invalid, match="backslash"):
        walk(tmp_path / "d")


def test_a_bad_logical_path_or_a_missing_source_is_refused(tmp_path: Path) -> None:
    # Given a file
    model = _write(tmp_path / "model.pt", "w")

    # When it is added under a path with '..', or a file that does not exist is added
    # Then each is refused before anything is read
    with pytest.raises(Invalid):
        walk(model, "../model.pt")
    with pytest.raises(FileNotFoundError):
        Artifact("resnet").add(tmp_path / "missing.pt")


def test_a_path_added_twice_is_refused(tmp_path: Path) -> None:
    # Given an artifact with one file and a remote entry under the same path
    model = _write(tmp_path / "model.pt", "w")
    art = Artifact("resnet").add(model).add_remote("s3://bucket/other/model.pt")

    # When its files are walked / Then the duplicate path is refused
    with pytest.raises(Invalid, match="added twice"):
        art.local_files()


def test_a_remote_entry_is_named_after_its_uri_unless_given_a_path() -> None:
    # Given remote references with and without a path
    art = Artifact("iris").add_remote("s3://bucket/dir/train.csv").add_remote("s3://bucket/x", name="raw/x.csv")

    # Then the first is named by its URI's last segment
    assert [(r.uri, r.path) for r in art.remote] == [
        ("s3://bucket/dir/train.csv", "train.csv"),
        ("s3://bucket/x", "raw/x.csv"),
    ]
    with pytest.raises(Invalid):
        art.add_remote("s3://bucket/dir/", name="../x")


# ---------------------------------------------------------------- hashing


def test_hash_reads_in_chunks_and_matches_hashlib(tmp_path: Path) -> None:
    # Given a file a little over two chunks long
    data = os.urandom(2 * CHUNK + 123)
    path = _write(tmp_path / "blob", data)
    reads: list[int] = []

    # When it is hashed
    sha256, size = hash_file(path, reads.append)

    # Then it is read in chunks of at most 1 MiB (a small one first), and the digest is the file's
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert max(reads) == CHUNK
    assert sum(reads) == len(data)
    assert len(reads) == 3


def test_hash_without_follow_refuses_a_symlink(tmp_path: Path) -> None:
    # Given a link to a file
    target = _write(tmp_path / "t", "x")
    (tmp_path / "link").symlink_to(target)

    # When it is hashed without following links / Then it is refused
    with pytest.raises(OSError, match="symbolic link"):
        hash_file(tmp_path / "link", follow=False)


def test_hash_files_keeps_the_input_order(tmp_path: Path) -> None:
    # Given many files
    files = [LocalFile(f"f{i}", str(_write(tmp_path / f"f{i}", f"content {i}"))) for i in range(40)]

    # When they are hashed on several threads
    hashed = hash_files(files, workers=4)

    # Then each result is the file's, in the order given
    assert [h.path for h in hashed] == [f.path for f in files]
    assert [h.sha256 for h in hashed] == [hashlib.sha256(f"content {i}".encode()).hexdigest() for i in range(40)]


def test_run_parallel_raises_the_first_failure() -> None:
    # Given tasks of which one fails
    def ok() -> int:
        return 1

    def boom() -> int:
        raise ValueError("boom")

    # When they run / Then the failure is raised
    with pytest.raises(ValueError, match="boom"):
        run_parallel([ok, boom, ok, ok], workers=3)


# ---------------------------------------------------------------- batching


def test_batches_stay_under_a_byte_budget_too() -> None:
    # Given 10 entries of 100 bytes each and a budget of 250 bytes a request
    cut = batches(list(range(10)), [], budget=250, weigh=lambda _: 100)
    # Then each request holds two of them, in order
    assert [f for f, _ in cut] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    # and an entry over the budget alone still goes, alone
    assert [f for f, _ in batches([1, 2], [], budget=10, weigh=lambda _: 100)] == [[1], [2]]


def test_batches_keep_the_part_urls_of_their_large_files_within_one_answer() -> None:
    # Given two files of 5 TiB (2,000 part URLs each), small files around them, and two of 100 GiB (1,970)
    tib5, gib100 = 5 * 1024**4 - 1, 100 * 1024**3
    sizes = [1, tib5, 2, tib5, 3, gib100, gib100]
    # When they are cut into requests, knowing each blob's size
    cut = batches(sizes, [], blob_size=lambda size: size)
    # Then no request's files may need more than 2,000 upload URLs, whatever the registry lacks,
    # and nothing is lost or reordered
    assert [f for f, _ in cut] == [[1], [tib5], [2], [tib5], [3, gib100], [gib100]]
    assert all(sum(multipart.most_urls(s) for s in files) <= multipart.MAX_URLS for files, _ in cut)


@pytest.mark.parametrize(
    ("files", "remote", "expected"),
    [
        (0, 0, [(0, 0)]),
        (1000, 3, [(1000, 3)]),
        (1001, 0, [(1000, 0), (1, 0)]),
        (2500, 1200, [(1000, 1000), (1000, 200), (500, 0)]),
        (10, 2001, [(10, 1000), (0, 1000), (0, 1)]),
    ],
)
def test_batches_hold_at_most_a_thousand_of_each(files: int, remote: int, expected: list[tuple[int, int]]) -> None:
    # Given some files and remote entries
    # When they are cut into requests
    cut = batches(list(range(files)), list(range(remote)))

    # Then no request holds more than 1,000 of either, and nothing is lost or reordered
    assert [(len(f), len(r)) for f, r in cut] == expected
    assert [x for f, _ in cut for x in f] == list(range(files))
    assert [x for _, r in cut for x in r] == list(range(remote))
