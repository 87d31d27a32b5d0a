"""Semantic versions (SemVer 2.0.0, parsed by the `semver` package) and the sort key whose plain
string order is SemVer precedence, so that a DynamoDB Query or a SQLite ORDER BY lists versions
in precedence order without a read-side sort."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from artreg.model.errors import Invalid

if TYPE_CHECKING:
    import semver

Bump = Literal["major", "minor", "patch"]
FIRST_VERSION = "1.0.0"
MAX_VERSION_LENGTH = 256
_MAX_DIGITS = 99  # the sort key spends two characters on a number's length
# SemVer 2.0.0's own regular expression, with ASCII digits and numbers of at most 99 of them: the rule
# as the OpenAPI document states it, and the first check `parse` makes
_NUMBER = r"(?:0|[1-9][0-9]{0,98})"
_IDENTIFIER = rf"(?:{_NUMBER}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
VERSION_RE = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-{_IDENTIFIER}(?:\.{_IDENTIFIER})*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)

# Characters of the sort key, all below the identifier characters [-0-9A-Za-z] except RELEASE:
_END = "!"  # ends a pre-release: a shorter list of identifiers sorts first
_SEP = ","  # starts each pre-release identifier
_RELEASE = "~"  # a release sorts after all of its pre-releases


def parse(text: str) -> semver.Version:
    if not isinstance(text, str) or len(text) > MAX_VERSION_LENGTH:
        raise Invalid(f"version must be a string of at most {MAX_VERSION_LENGTH} characters")
    try:
        if not VERSION_RE.fullmatch(text):
            raise ValueError(text)
        # imported by the first version string, not by the import: an alias (a resolve of name@production)
        # never gets here, and semver loads argparse and its CLI with it (benchmarks/cold_start.py)
        import semver

        version = semver.Version.parse(text)
    except (ValueError, TypeError):
        raise Invalid(
            f"version {text[:100]!r} is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])",
            details={"field": "version"},
        ) from None
    numbers = [version.major, version.minor, version.patch]
    numbers += [int(p) for p in (version.prerelease or "").split(".") if p.isdigit()]
    if any(len(str(n)) > _MAX_DIGITS for n in numbers):
        raise Invalid(f"version {text[:100]!r} has a number over {_MAX_DIGITS} digits")
    return version


def is_version(text: str) -> bool:
    try:
        parse(text)
    except Invalid:
        return False
    return True


def _number(n: int) -> str:
    digits = str(n)
    return f"{len(digits):02d}{digits}"


def sort_key(text: str) -> str:
    """A string whose order is SemVer precedence. Build metadata is left out: two versions that
    differ only in build metadata get the same key, which is what makes them conflict."""
    version = parse(text)
    key = _number(version.major) + _number(version.minor) + _number(version.patch)
    if not version.prerelease:
        return key + _RELEASE
    for ident in version.prerelease.split("."):
        # numeric identifiers sort below alphanumeric ones, and among themselves by value
        key += _SEP + ("0" + _number(int(ident)) if ident.isdigit() else "1" + ident)
    return key + _END


def is_release(text: str) -> bool:
    return not parse(text).prerelease


def bump(highest_release: str | None, kind: Bump) -> str:
    """The next version after the highest release: `major` 2.5.14 -> 3.0.0, `minor` -> 2.6.0,
    `patch` -> 2.5.15; the first version of an artifact is 1.0.0 whatever the bump."""
    if highest_release is None:
        return FIRST_VERSION
    current = parse(highest_release)
    if kind == "major":
        return str(current.bump_major())
    if kind == "minor":
        return str(current.bump_minor())
    return str(current.bump_patch())


def higher(a: str | None, b: str | None) -> str | None:
    """The version of higher precedence (None counts lowest)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if sort_key(a) >= sort_key(b) else b
