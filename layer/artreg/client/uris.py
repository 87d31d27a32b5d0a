"""`artreg://` URIs (API.md, URIs): `artreg://{project}/{name}@{ref}` names a version and
`artreg://{project}/{name}@{ref}/{path}` a file in it. The ref may be left out (`latest`)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from artreg.client.common import LATEST
from artreg.client.errors import Invalid
from artreg.model.names import check_name, check_path, check_project

SCHEME = "artreg://"


def is_uri(text: object) -> bool:
    return isinstance(text, str) and text.startswith(SCHEME)


@dataclass(frozen=True)
class ArtregUri:
    project: str
    name: str
    ref: str = LATEST
    path: str | None = None  # a file in the version, or None for the version itself

    def __str__(self) -> str:
        return f"{SCHEME}{self.project}/{self.name}@{self.ref}" + (f"/{self.path}" if self.path else "")

    @property
    def version_uri(self) -> str:
        return f"{SCHEME}{self.project}/{self.name}@{self.ref}"


def parse_uri(text: str) -> ArtregUri:
    """The parts of an `artreg://` URI, each checked against API.md's rules; `Invalid` otherwise."""
    if not is_uri(text):
        raise Invalid(f"{text[:200]!r} is not an artreg:// URI", details={"field": "uri"})
    rest = text[len(SCHEME) :]
    project, _, rest = rest.partition("/")
    head, _, path = rest.partition("/")
    name, at, ref = head.partition("@")
    if not project or not name or (at and not ref):
        raise Invalid(
            f"{text[:200]!r} is not artreg://PROJECT/NAME@REF[/PATH]", details={"field": "uri", "uri": text[:200]}
        )
    logical = unquote(path) if path else None
    return ArtregUri(
        project=check_project(project),
        name=check_name(name),
        ref=unquote(ref) if ref else LATEST,
        path=check_path(logical) if logical else None,
    )
