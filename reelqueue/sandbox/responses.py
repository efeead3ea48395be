"""JSON answers written as Notion writes them: non-ASCII escaped, so lone surrogates survive."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["NotionJSONResponse"]


class NotionJSONResponse(JSONResponse):
    """A JSON response whose text may hold lone UTF-16 surrogates, as Notion's (JavaScript) do."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")
