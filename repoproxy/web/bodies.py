"""Bounded JSON request bodies and typed fields: a malformed body is a 4xx, never a 500.

:func:`json_object` reads at most ``max_bytes`` (refusing a larger ``Content-Length`` before
reading, and a longer body while reading: chunked requests have no length), parses it,
refuses nesting deeper than :data:`MAX_DEPTH` (the C parser raises ``RecursionError`` on very
deep input; shallower but still absurd nesting is refused too, because later code walks it
recursively) and insists on an object. The field readers check type, length and range and
name the field in their message; :func:`int_query` does the same for a query parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from repoproxy.errors import RepoproxyError, TooLarge

#: nesting of arrays/objects no API body needs more of
MAX_DEPTH = 32
#: a free-text field (descriptions); names have their own, shorter limits
MAX_TEXT = 4096
MAX_NAME = 200


class BadBody(RepoproxyError):
    """The body is not the JSON the endpoint takes (syntax, type, length, range)."""

    status = 400
    code = "bad-request"


def json_object(request: Any, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object of at most ``max_bytes`` bytes."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise TooLarge(f"the JSON body is larger than {max_bytes} bytes")
    raw = request.body_file.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise TooLarge(f"the JSON body is larger than {max_bytes} bytes")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadBody(f"the JSON body is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise BadBody("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise BadBody(f"the JSON body is nested more than {MAX_DEPTH} levels deep")
    return body


def _depth(value: Any) -> int:
    """Nesting depth, without recursion (the input is hostile)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return deepest


def str_field(body: dict[str, Any], name: str, *, max_len: int = MAX_NAME,
              default: str | None = None, required: bool = False) -> str | None:
    """A string field; ``null`` or absent gives ``default`` (or 400 when ``required``)."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadBody(f"'{name}' is required")
        return default
    if not isinstance(value, str):
        raise BadBody(f"'{name}' must be a string")
    if len(value) > max_len:
        raise BadBody(f"'{name}' is longer than {max_len} characters")
    return value


def int_field(body: dict[str, Any], name: str, lo: int, hi: int,
              default: int | None = None) -> int | None:
    """An integer field within ``lo..hi``; ``null`` or absent gives ``default``."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadBody(f"'{name}' must be an integer")
    if not lo <= value <= hi:
        raise BadBody(f"'{name}' must be between {lo} and {hi}")
    return value


#: a query parameter's integer: digits only (``int()`` also takes " 7", "+7" and "1_000"),
#: and few enough that parsing it costs nothing
INTEGER = re.compile(r"-?[0-9]{1,18}")


def int_query(params: Mapping[str, str], name: str, lo: int, hi: int,
              default: int | None = None) -> int | None:
    """An integer query parameter within ``lo..hi``; absent gives ``default``."""
    raw = params.get(name)
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw):
        raise BadBody(f"'{name}' must be an integer")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadBody(f"'{name}' must be between {lo} and {hi}")
    return value


def bool_field(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadBody(f"'{name}' must be true or false")
    return value


def str_list_field(body: dict[str, Any], name: str, *, max_items: int = 1000,
                   max_len: int = MAX_NAME, comma_string: bool = False) -> list[str]:
    """A list of strings (or, with ``comma_string``, one comma-separated string)."""
    value = body.get(name)
    if value is None:
        return []
    if comma_string and isinstance(value, str):
        if len(value) > max_items * (max_len + 1):
            raise BadBody(f"'{name}' is too long")
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadBody(f"'{name}' must be a list of strings")
    if len(value) > max_items:
        raise BadBody(f"'{name}' has more than {max_items} entries")
    if any(len(v) > max_len for v in value):
        raise BadBody(f"an entry of '{name}' is longer than {max_len} characters")
    return list(value)


def date_value(value: Any, name: str, lo: date = date(1970, 1, 1),
               hi: date = date(9000, 12, 31)) -> date:
    """A ``YYYY-MM-DD`` date within ``lo..hi`` (far-future dates overflow date arithmetic)."""
    if not isinstance(value, str):
        raise BadBody(f"'{name}' must be a YYYY-MM-DD date")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadBody(f"'{name}' must be a YYYY-MM-DD date") from None
    if not lo <= day <= hi:
        raise BadBody(f"'{name}' must be between {lo} and {hi}")
    return day


#: the name views raise for a body they cannot use
BadRequest = BadBody


def json_body(request: Any) -> dict[str, Any]:
    """The request's JSON object, bounded by ``repoproxy.max_json_body``."""
    return json_object(request, request.services.settings["repoproxy.max_json_body"])
