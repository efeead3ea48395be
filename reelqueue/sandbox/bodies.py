"""Request bodies: JSON objects parsed the way Notion's server parses them."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from reelqueue.sandbox.errors import body_too_large, invalid_json, shape_error

# Notion's Request limits page: "payloads have a max size of ... 500KB overall"; the service
# has been seen answering a bigger body with HTTP 413.
MAX_BODY_BYTES = 500_000


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; Notion's parser refuses them."""
    raise ValueError(f"{name} is not valid JSON")


async def refuse_oversized(request: Request) -> None:
    """Raise Notion's 413 when the body is over 500 KB (by Content-Length, else as read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise body_too_large(int(declared), MAX_BODY_BYTES)
    if not declared.isdigit():
        size = len(await request.body())
        if size > MAX_BODY_BYTES:
            raise body_too_large(size, MAX_BODY_BYTES)


async def read_json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object: 400 `invalid_json` if unparsable, 400 if not an object.

    An empty body is `{}` when the body is optional, and a 400 when it is required.
    """
    raw = await request.body()
    if not raw.strip():
        if required:
            raise shape_error("body", "an object", None)
        return {}
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_json() from error
    if not isinstance(body, dict):
        raise shape_error("body", "an object", body)
    return body
