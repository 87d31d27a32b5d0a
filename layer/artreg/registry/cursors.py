"""Opaque page cursors: what a store or the registry needs to resume, as URL-safe text."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from artreg.model.errors import Invalid

_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        if len(cursor) > 2048 or not _ALPHABET.fullmatch(cursor):
            raise ValueError(cursor)
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise Invalid(
            "cursor is not one this API handed out; start again without it",
            details={"field": "cursor"},
        )
    return value
