"""An answer as the SDK reads it of urllib3 (`status`, `headers`, `data`, `stream`, `read`, and
`release_conn`, which it records), for connection pools that tests stand in for urllib3's."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass
class Urllib3Answer:
    status: int
    data: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    released: bool = False

    def stream(self, n: int) -> Iterator[bytes]:
        yield from (self.data[i : i + n] for i in range(0, len(self.data), n))

    def read(self) -> bytes:
        return self.data

    def release_conn(self) -> None:
        self.released = True

    def close(self) -> None:
        pass
