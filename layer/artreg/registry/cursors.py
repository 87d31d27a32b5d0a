"""Opaque page cursors: what the registry needs to resume a listing, as URL-safe text. Each listing
has its own typed position, decoded and checked here once, so that a cursor this API did not hand
out (forged, or of another listing) is a 400 on every back end and a store is only ever handed a
position of the shape it made."""

# no `from __future__ import annotations` here: pydantic would compile each field's annotation from its text
# when the class is made, a cost of every cold start (benchmarks/cold_start.py)

import base64
import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from artreg.model import names
from artreg.model.errors import Invalid
from artreg.registry import keys

M = TypeVar("M", bound="Position")

_SORT_KEY = r"^[0-9A-Za-z,!~-]{1,1024}$"  # model.versions.sort_key's characters


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)  # built on first use


class AfterProject(Position):
    """Projects, by name."""

    after: Annotated[str, Field(pattern=f"^{names.PROJECT_RE.pattern}$")] | None = None


class AfterName(Position):
    """Artifacts, by name."""

    after: Annotated[str, Field(pattern=f"^{names.NAME_RE.pattern}$")] | None = None


class BeforeVersion(Position):
    """Versions, newest first, by their sort key."""

    before: Annotated[str, Field(pattern=_SORT_KEY)] | None = None


class AtOffset(Position):
    """Entries of a version's manifest, in path order."""

    offset: Annotated[int, Field(ge=0)] = 0


class BeforeMove(Position):
    """An alias's moves, newest first."""

    before: Annotated[str, Field(pattern=keys.MOVE_PATTERN)] | None = None


class AfterEdge(Position):
    """A run's edges."""

    after: Annotated[str, Field(pattern=keys.ANY_EDGE_PATTERN)] | None = None


class AfterRole(Position):
    """A version's links, by role."""

    after: Annotated[str, Field(pattern=f"^{names.ROLE_RE.pattern}$")] | None = None


class AfterHolder(Position):
    """The links to a version, by holder (keys.linked_by_position)."""

    after: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,128}#[0-9A-Za-z,!~-]{1,1024}#[a-z0-9_./-]{1,324}$")] | None
    ) = None


class BeforeRun(Position):
    """A project's runs, most recently seen first (keys.run_seen_position)."""

    before: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[^\x00-\x1f]{1,256}$")] | None = None


class LineageWays(Position):
    """The root's neighbours each way, for the ways that have more; a way absent has ended."""

    # upstream walks the runs that produced the version, downstream those that used it
    upstream: Annotated[str, Field(pattern=keys.EDGE_PATTERN["produced"])] | None = None
    downstream: Annotated[str, Field(pattern=keys.EDGE_PATTERN["used"])] | None = None


_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, kind: type[M]) -> M:
    """The position a cursor of this listing carries (the start for no cursor)."""
    if not cursor:
        return kind()
    try:
        if len(cursor) > 2048 or not _ALPHABET.fullmatch(cursor):  # only what encode() makes
            raise ValueError(cursor)
        return kind.model_validate(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))))
    except (ValueError, ValidationError):  # not base64, not JSON, not this listing's position
        raise Invalid(
            "cursor is not one this API handed out; start again without it",
            details={"field": "cursor"},
        ) from None
