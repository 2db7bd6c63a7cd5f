"""Reading a request's JSON body, with a 400 that says what is wrong (views of the core and of
plugins share it; it lives outside the view modules so plugins need not import those)."""

from __future__ import annotations

from typing import Any

from repoproxy.errors import RepoproxyError


class BadRequest(RepoproxyError):
    status = 400
    code = "bad-request"


def json_body(request: Any) -> dict[str, Any]:
    try:
        body = request.json_body
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body
