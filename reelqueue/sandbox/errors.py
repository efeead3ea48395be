"""Notion's error bodies: one exception carries status, code and message to the response."""

from __future__ import annotations

import json
from typing import Any

from reelqueue.sandbox.responses import NotionJSONResponse

FAULT_ERRORS: dict[int, tuple[str, str]] = {
    409: ("conflict_error", "Conflict occurred while saving. Please try again."),
    500: ("internal_server_error", "Unexpected error occurred."),
    502: (
        "bad_gateway",
        "Notion encountered an issue while attempting to complete this request. Please try again.",
    ),
    503: (
        "service_unavailable",
        "Notion is unavailable. This can occur when the time to respond to a request "
        "takes longer than 60 seconds, the maximum request timeout. Please try again later.",
    ),
    504: (
        "gateway_timeout",
        "Notion timed out while attempting to complete this request. Please try again later.",
    ),
    529: (
        "service_overload",
        "Notion is experiencing high traffic and is temporarily unavailable. "
        "Please try again later.",
    ),
}


class NotionError(Exception):
    """An error the sandbox answers the way Notion would: HTTP status, code, message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        additional_data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.additional_data = additional_data
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """Notion's error body, keys in Notion's order."""
        body: dict[str, Any] = {
            "object": "error",
            "status": self.status,
            "code": self.code,
            "message": self.message,
        }
        if self.additional_data is not None:
            body["additional_data"] = self.additional_data
        body["request_id"] = request_id
        return body

    def response(self, request_id: str) -> NotionJSONResponse:
        """The HTTP response for this error."""
        return NotionJSONResponse(
            self.body(request_id), status_code=self.status, headers=self.headers
        )


def validation_error(message: str) -> NotionError:
    """A 400 `validation_error`: the request is well-formed JSON but not acceptable."""
    return NotionError(400, "validation_error", message)


def shape_error(path: str, expected: str, got: Any) -> NotionError:
    """A 400 for a value of the wrong shape, worded like Notion's body validation."""
    shown = json.dumps(got, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return validation_error(
        f"body failed validation: {path} should be {expected}, instead was `{shown}`."
    )


def invalid_json() -> NotionError:
    """A 400 `invalid_json`: the body could not be parsed."""
    return NotionError(400, "invalid_json", "Error parsing JSON body.")


def invalid_request_url() -> NotionError:
    """A 400 `invalid_request_url`: no such endpoint."""
    return NotionError(400, "invalid_request_url", "Invalid request URL.")


def unauthorized() -> NotionError:
    """A 401 `unauthorized`: the bearer token is missing or wrong."""
    return NotionError(401, "unauthorized", "API token is invalid.")


def missing_version() -> NotionError:
    """A 400 `missing_version`: no Notion-Version header."""
    return NotionError(
        400,
        "missing_version",
        "Notion-Version header failed validation: Notion-Version header should be defined, "
        "instead was `undefined`.",
    )


def rate_limited(retry_after_s: int, reason: str | None = None) -> NotionError:
    """A 429 `rate_limited` with an integer Retry-After header and, when given, the limit hit."""
    return NotionError(
        429,
        "rate_limited",
        "You have been rate limited. Please try again in a few minutes.",
        additional_data={"rate_limit_reason": reason} if reason is not None else None,
        headers={"Retry-After": str(retry_after_s)},
    )


def invalid_version(value: str, accepted: tuple[str, ...]) -> NotionError:
    """A 400 for a Notion-Version Notion does not know, listing the ones it accepts."""
    *head, last = (f'"{version}"' for version in accepted)
    return validation_error(
        f"Notion-Version header failed validation: Notion-Version header should be "
        f"{', '.join(head)}, or {last}, instead was `{json.dumps(value)}`."
    )


def body_too_large(size: int, limit: int) -> NotionError:
    """A 413 for a request body over Notion's size limit."""
    return NotionError(
        413,
        "validation_error",
        f"Request body too large: {size} bytes, the limit is {limit} bytes (500 KB).",
    )


def fault_error(status: int, retry_after_s: int | None = None) -> NotionError:
    """The error Notion sends for an injected transient failure of this status.

    A 529 `service_overload` carries an integer Retry-After, as Notion's do.
    """
    code, message = FAULT_ERRORS[status]
    headers = {"Retry-After": str(retry_after_s)} if status == 529 and retry_after_s else None
    return NotionError(status, code, message, headers=headers)


def object_not_found(
    kind: str, object_id: str, integration_name: str, integration_id: str
) -> NotionError:
    """A 404 `object_not_found`, worded like Notion's (it also means: not shared)."""
    return NotionError(
        404,
        "object_not_found",
        f"Could not find {kind} with ID: {object_id}. Make sure the relevant pages and "
        f'databases are shared with your integration "{integration_name}".',
        additional_data={"integration_id": integration_id},
    )
