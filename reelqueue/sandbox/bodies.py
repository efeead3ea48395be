"""Request bodies: JSON objects parsed the way Notion's server parses them."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from reelqueue.sandbox.errors import invalid_json, shape_error


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; Notion's parser refuses them."""
    raise ValueError(f"{name} is not valid JSON")


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
