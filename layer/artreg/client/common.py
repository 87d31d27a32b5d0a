"""What the SDK's modules share: refs (`name@ref`), wire models checked before they are sent, and
the warning of a renamed argument."""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from artreg.client.errors import Invalid
from artreg.model import names
from artreg.model.names import check_name

LATEST = "latest"
W = TypeVar("W", bound=BaseModel)


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


def split_ref(name: str, ref: str | None = None) -> tuple[str, str]:
    """`("resnet@production", None)` and `("resnet", "production")` both give ("resnet", "production").
    A ref is a version or an alias (API.md); no ref means `latest`."""
    if ref is None:
        name, ref = names.split_ref(name)
    return check_name(name), ref or LATEST


def segment(text: str) -> str:
    """`text` quoted as one URL path segment; '+' stays as is: it is a legal path character, and a
    version's build metadata holds it."""
    return quote(text, safe="+")


def invalid(error: ValidationError, where: Callable[[str], str] = str, *, show_input: bool = False) -> Invalid:
    """The first error of a pydantic validation as `Invalid`, its field named by `where` (and with
    `show_input`, the value that was refused)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "not valid")).removeprefix("Value error, ")
    if show_input and first.get("type") != "missing":
        message += f" (not {str(first.get('input'))[:100]!r})"
    shown = where(field) if field else ""
    return Invalid(f"{shown}: {message}" if shown else message, details={"field": shown})


def wire(cls: type[W], **fields: Any) -> W:
    """A wire model built here, its validation errors raised as `Invalid` before anything is sent."""
    try:
        return cls(**fields)
    except ValidationError as error:
        raise invalid(error) from None


def given(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: an optional field left out is not sent as null."""
    return {k: v for k, v in fields.items() if v is not None}


def renamed(old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """The value of an argument renamed from `old` to `new`: the old name still works, with a
    DeprecationWarning, and giving both is refused."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"give {new}= only ({old}= is its old name)")
    warnings.warn(f"{old}= is deprecated: use {new}=", DeprecationWarning, stacklevel=3)
    return old_value
