"""What every request passes before the routes (artreg.api.gate): the body checks, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from artreg.api.gate import MAX_BODY_DEPTH, _json_text
from artreg.model.errors import Invalid, UnsupportedMediaType


def event(body: str, content_type: str | None = "application/json", encoded: bool = False) -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type is not None else {}
    return {"headers": headers, "body": body, "isBase64Encoded": encoded}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_cap_passes_and_one_more_is_400() -> None:
    assert _json_text(event(nested(MAX_BODY_DEPTH))) == nested(MAX_BODY_DEPTH)
    with pytest.raises(Invalid, match="nests deeper"):
        _json_text(event(nested(MAX_BODY_DEPTH + 1)))


def test_brackets_inside_strings_are_text_not_nesting() -> None:
    # Given metadata whose strings hold brackets and escaped quotes, far more than the cap
    body = json.dumps({"metadata": {"note": "[" * 500 + '\\"{' * 100, "k[{": "}]" * 300}})
    # Then the body passes as it came
    assert _json_text(event(body)) == body


def test_a_base64_body_is_decoded_and_must_be_utf_8() -> None:
    assert _json_text(event(base64.b64encode(b'{"a": "\xc3\xa9"}').decode(), encoded=True)) == '{"a": "é"}'
    with pytest.raises(Invalid, match="UTF-8"):
        _json_text(event(base64.b64encode(b'{"a": "\xe9"}').decode(), encoded=True))


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF8"]
)
def test_json_content_types_pass(content_type: str) -> None:
    assert _json_text(event("{}", content_type)) == "{}"


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/json-patch+json", "application/json; charset=utf-16"]
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        _json_text(event("{}", content_type))


@pytest.mark.parametrize(
    "body", ["{not json", '{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}', '["\\udc00"]', '{"\\ud800": 1}']
)
def test_json_no_store_can_keep_is_400(body: str) -> None:
    with pytest.raises(Invalid):
        _json_text(event(body))


def test_a_surrogate_pair_is_one_character_and_passes() -> None:
    assert _json_text(event('["\\ud83d\\ude00"]')) == '["\\ud83d\\ude00"]'
