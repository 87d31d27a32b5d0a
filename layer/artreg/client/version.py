"""`Version`: a version as the SDK hands it out, a `str` (so code that compares or formats it as
text keeps working) that orders by SemVer precedence and tells the next versions, as the registry
counts them (artreg.model.versions)."""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from artreg.model import versions


class Version(str):
    """A semantic version. `==` and hashing are the text's (`"1.0.0+a" != "1.0.0+b"`, as the
    registry keeps build metadata); `<`, `<=`, `>`, `>=` are SemVer precedence, build metadata
    ignored, against another `Version` or a version string:

        >>> Version("1.10.0") > "1.9.0"
        True
        >>> Version("2.5.14").next_minor()
        '2.6.0'
    """

    __slots__ = ()

    def __new__(cls, text: str) -> Version:
        versions.parse(text)  # Invalid when it is not a version
        return super().__new__(cls, text)

    @property
    def key(self) -> str:
        """A string whose order is SemVer precedence."""
        return versions.sort_key(self)

    def _other(self, other: object) -> str | None:
        if not isinstance(other, str) or not versions.is_version(other):
            return None
        return versions.sort_key(other)

    def __lt__(self, other: object) -> bool:
        key = self._other(other)
        return NotImplemented if key is None else self.key < key

    def __le__(self, other: object) -> bool:
        key = self._other(other)
        return NotImplemented if key is None else self.key <= key

    def __gt__(self, other: object) -> bool:
        key = self._other(other)
        return NotImplemented if key is None else self.key > key

    def __ge__(self, other: object) -> bool:
        key = self._other(other)
        return NotImplemented if key is None else self.key >= key

    # str's own, kept explicitly: defining the orderings must not lose them
    __eq__ = str.__eq__
    __hash__ = str.__hash__

    @property
    def prerelease(self) -> str | None:
        return versions.parse(self).prerelease

    @property
    def is_release(self) -> bool:
        return versions.is_release(self)

    def next_major(self) -> Version:
        """What `bump="major"` would give after this version (2.5.14 -> 3.0.0)."""
        return Version(versions.bump(self, "major"))

    def next_minor(self) -> Version:
        """2.5.14 -> 2.6.0."""
        return Version(versions.bump(self, "minor"))

    def next_patch(self) -> Version:
        """2.5.14 -> 2.5.15."""
        return Version(versions.bump(self, "patch"))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # a field typed Version takes a string and holds a Version; it serialises as the string
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(), serialization=core_schema.to_string_ser_schema()
        )
