"""The PUT body of a file's range (`transfer.FileChunks`): what the connection sends is the range, in
pieces that stay what they were when a consumer holds them (a reused buffer once corrupted a multipart
part that a stand-in for S3 gathered before sending)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artreg.client import IntegrityError
from artreg.client.files import CHUNK
from artreg.client.transfer import FileChunks


def test_a_range_is_sent_whole_even_when_its_pieces_are_held_until_the_end(tmp_path: Path) -> None:
    # Given a file of 3.5 chunks, and a part of it from an offset
    data = os.urandom(3 * CHUNK + CHUNK // 2)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    counted: list[int] = []

    # When the part's body is taken by a consumer that holds every piece before it sends them
    body = FileChunks(str(source), 100, len(data) - 100, counted.append)
    pieces = list(body)

    # Then the bytes gathered are the part's, counted as they went
    assert b"".join(pieces) == data[100:]
    assert sum(counted) == body.sent == len(data) - 100


def test_a_file_that_got_shorter_after_it_was_hashed_is_refused(tmp_path: Path) -> None:
    # Given a file that was 2 MiB when it was hashed and is now a quarter of that
    source = tmp_path / "weights.bin"
    source.write_bytes(b"x" * (CHUNK // 2))

    # When its body is sent, Then it stops with file_changed rather than send a short body
    with pytest.raises(IntegrityError) as caught:
        b"".join(bytes(piece) for piece in FileChunks(str(source), 0, 2 * CHUNK, lambda n: None))
    assert caught.value.code == "file_changed"
