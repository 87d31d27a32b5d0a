"""The naming rules of API.md (Names). One function per rule; each returns its input or raises
`Invalid` with a message a person can act on."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from artreg.model.errors import Invalid, TooLarge
from artreg.model.versions import VERSION_RE, is_version

PROJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
ROLE_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}(/[a-z0-9_.-]{1,64}){0,3}")
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,255}")
REF = f"(?:{VERSION_RE.pattern}|{ALIAS_RE.pattern})"  # a version or an alias
SHA256_RE = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What Windows refuses or reads as something else in a file name: `:` alone makes `D:evil.dll` a
# path on drive D and `x:stream` an alternate data stream; the device names are devices whatever
# their extension or case (`con.txt`, `Com1.tar.gz`); a trailing dot or space is silently dropped
_WINDOWS_CHARS = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = re.compile(r"(?i)(CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³]) *(\..*)?")
# a path of ASCII letters, digits, `_` and `-` with dots inside its segments (none first or last) and no
# device name: it holds every rule of `check_path`, which takes it in one match
_PLAIN_SEGMENT = r"(?!(?:CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(?:[./]|$))[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?"
_PLAIN_PATH = re.compile(rf"{_PLAIN_SEGMENT}(?:/{_PLAIN_SEGMENT})*", re.IGNORECASE)
# the rules a regular expression can state, as the OpenAPI document states them (JSON Schema `pattern`):
# a segment of characters that are no separator, no control character and none Windows refuses, that does
# not end in a dot or a space, which also rules out `.` and `..`. Windows' device names (CON, ...) are
# the one rule of `check_path` left out: JSON Schema's regular expressions have no case-insensitive flag.
_EXCLUDED = r'/\\\x00-\x1f\x7f<>:"|?*'
_SEGMENT = rf"[^{_EXCLUDED}]*[^{_EXCLUDED}. ]"
PATH_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
TAG_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"

LATEST = "latest"
MAX_TAGS = 64
MAX_PATH_BYTES = 1024
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 8
MAX_FILE_METADATA_BYTES = 4 * 1024  # a file entry's own metadata (API.md)
MAX_URI_LENGTH = 4096


def anchored(pattern: re.Pattern[str]) -> str:
    """A rule's regular expression as a JSON Schema `pattern` (which matches anywhere unless anchored)."""
    return f"^{pattern.pattern}$"


def _match(kind: str, pattern: re.Pattern[str], value: str, rule: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise Invalid(
            f"{kind} {value!r} is not valid: {rule}",
            details={"field": kind, "value": str(value)[:200]},
        )
    return value


def split_ref(text: str) -> tuple[str, str]:
    """`NAME@REF` as (name, ref), a version or an alias; a bare `NAME` means its `latest`. Checks neither."""
    name, _, ref = text.partition("@")
    return name, ref or LATEST


def check_ref(text: str, *, what: str, field: str, key: str) -> tuple[str, str]:
    """`NAME@VERSION` or `NAME@ALIAS` of one project (a bare `NAME`: its `latest`), checked; otherwise
    `Invalid` that names `what` and the request's `field` (a link's target, a producer's input)."""
    name, at = split_ref(text)
    try:
        check_name(name)
        if not is_version(at):
            check_alias(at)
    except Invalid:
        raise Invalid(
            f"{what} {text[:300]!r} is not NAME@VERSION or NAME@ALIAS of this project",
            details={"field": field, key: text[:300]},
        ) from None
    return name, at


def check_project(value: str) -> str:
    return _match("project", PROJECT_RE, value, "1-100 of A-Z a-z 0-9 . _ -, starting with a letter or digit")


def check_name(value: str) -> str:
    return _match(
        "artifact name",
        NAME_RE,
        value,
        "1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    )


def check_type(value: str) -> str:
    return _match(
        "artifact type",
        TYPE_RE,
        value,
        "1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    )


def check_alias(value: str) -> str:
    """An alias never parses as a version: it starts with a lower-case letter, a version with a digit."""
    return _match("alias", ALIAS_RE, value, "1-64 of a-z 0-9 _ -, starting with a lower-case letter")


def check_role(value: str) -> str:
    """A link's role: `training_data`, `checkpoints/epoch-3` (up to four segments)."""
    return _match(
        "role",
        ROLE_RE,
        value,
        "1-64 of a-z 0-9 _ . -, starting with a lower-case letter, then up to 3 /segments of 1-64 of them",
    )


def check_run_id(value: str) -> str:
    return _match(
        "run_id",
        RUN_ID_RE,
        value,
        "1-256 of A-Z a-z 0-9 . _ : / @ + = -, starting with a letter or digit",
    )


def check_sha256(value: str) -> str:
    return _match("sha256", SHA256_RE, value, "64 lower-case hexadecimal digits")


def check_tag(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or _CONTROL.search(value):
        raise Invalid(f"tag {value!r} is not valid: 1-128 characters, no control character", details={"field": "tag"})
    return value


def check_tags(values: list[str]) -> list[str]:
    for value in values:
        check_tag(value)
    if len(set(values)) > MAX_TAGS:
        raise Invalid(
            f"a version has at most {MAX_TAGS} tags, got {len(set(values))}",
            details={"field": "tags"},
        )
    return sorted(set(values))


def check_path(value: str) -> str:
    """A relative POSIX path inside the artifact, safe as a file name on POSIX and Windows alike.
    This is what keeps `../x` (or `D:x`, or `CON`) from ever becoming an S3 key or a file outside a
    download folder."""
    if not isinstance(value, str):
        raise Invalid("file path must be a string", details={"field": "path"})
    if len(value) <= MAX_PATH_BYTES and _PLAIN_PATH.fullmatch(value):
        return value  # one match for the paths most files have (a dataset's 100,000 are checked more than once)
    problem = _path_problem(value)
    if problem:
        raise Invalid(f"file path {value[:200]!r} {problem}", details={"field": "path", "path": value[:200]})
    return value


def plain_paths(folder: str, names: Sequence[str]) -> bool:
    """Whether every path `folder/name` (`name` alone where `folder` is "") passes `check_path`'s first
    test, that of most paths: one match for a folder's file names, joined as the segments of one path
    (a plain path is plain segments joined by "/"). False where any does not: then each is checked on
    its own."""
    if not names:
        return True
    joined = "/".join(names)
    longest = max(map(len, names)) + (len(folder) + 1 if folder else 0)
    return longest <= MAX_PATH_BYTES and _PLAIN_PATH.fullmatch(f"{folder}/{joined}" if folder else joined) is not None


def _path_problem(value: str) -> str | None:
    """What breaks the rule of `check_path` in `value`, or None."""
    size = len(value.encode("utf-8", "surrogatepass"))
    problem = None
    if not 1 <= size <= MAX_PATH_BYTES:
        problem = f"must be 1-{MAX_PATH_BYTES} bytes of UTF-8, is {size}"
    elif value.startswith("/"):
        problem = "must be relative (no leading /)"
    elif "\\" in value:
        problem = "must use / as separator (no backslash)"
    elif _CONTROL.search(value):
        problem = "must not hold NUL or control characters"
    elif any(segment in ("", ".", "..") for segment in value.split("/")):
        problem = "must not have an empty, '.' or '..' segment"
    elif found := _WINDOWS_CHARS.search(value):
        problem = (
            f'must not hold {found.group()!r} (none of < > : " | ? *: Windows refuses them, or reads a drive or stream)'
        )
    elif device := next((s for s in value.split("/") if _WINDOWS_DEVICES.fullmatch(s)), None):
        problem = (
            f"must not have a segment that Windows reads as a device ({device!r}: CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
        )
    elif trailing := next((s for s in value.split("/") if s.endswith((".", " "))), None):
        problem = f"must not have a segment that ends in a dot or a space ({trailing!r}: Windows drops them)"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "must be valid UTF-8"
    return problem


def check_uri(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_URI_LENGTH or _CONTROL.search(value):
        raise Invalid(f"remote uri must be 1-{MAX_URI_LENGTH} characters without control characters")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_metadata(value: dict[str, Any], field: str = "metadata", limit: int = MAX_METADATA_BYTES) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be a JSON object", details={"field": field})
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise TooLarge(
            f"{field} is {size} bytes serialised, over the limit of {limit}",
            details={"field": field, "size": size, "limit": limit},
        )
    if _depth(value) > MAX_METADATA_DEPTH:
        raise Invalid(f"{field} nests deeper than {MAX_METADATA_DEPTH} levels", details={"field": field})
    return value


def metadata_scalar(value: Any) -> str:
    """The string a `metadata.KEY=VALUE` filter compares: a string as itself, any other JSON scalar
    as its JSON text (`3`, `0.5`, `true`, `null`)."""
    return value if isinstance(value, str) else json.dumps(value)
