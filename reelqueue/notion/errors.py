"""The Notion client's exception tree, and one-line explanations of the common mistakes.

Every failure of a Notion call is a `NotionAPIError` leaf carrying the HTTP status, Notion's
code, its message and the request id, so callers catch the narrow case they can handle
(`NotionNotFound`, `NotionRateLimited`, ...) and `explain()` turns the rest into a line the
person running reelqueue can act on. Messages never carry the token.
"""

from __future__ import annotations

from reelqueue.errors import ReelqueueError, UserError

INTEGRATIONS_URL = "https://www.notion.so/profile/integrations"


class NotionError(ReelqueueError):
    """Base of every error the Notion client raises."""


class InvalidNotionId(UserError):
    """A value given as a Notion id is neither a UUID nor a Notion URL."""


class NotionAPIError(NotionError):
    """A Notion request that failed for good: HTTP status, Notion code, message, request id.

    `status` is 0 when no HTTP answer came at all (code `timeout` or `connection_error`);
    `api_url` then names the API root that could not be reached.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        api_url: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.api_url = api_url
        super().__init__(status, code, message, request_id)

    def __str__(self) -> str:
        text = f"Notion {self.status} {self.code}: {self.message}"
        return f"{text} (request_id {self.request_id})" if self.request_id else text


class NotionUnauthorized(NotionAPIError):
    """401: the token is missing, wrong or revoked."""


class NotionRestricted(NotionAPIError):
    """403: the integration lacks the capability (read, update, insert) for this request."""


class NotionNotFound(NotionAPIError):
    """404: no such object, or it is not shared with the integration (Notion cannot tell)."""


class NotionValidationError(NotionAPIError):
    """A 400-family refusal: the request itself is wrong and retrying will not help."""


class NotionRateLimited(NotionAPIError):
    """429 still answered after every retry."""


class NotionUnavailable(NotionAPIError):
    """5xx, 529, 409, a timeout or a connection error, still failing after every retry."""


class NotionSendExpired(NotionError):
    """A request was not sent: its caller's send-by time passed while it waited or retried."""


_BY_STATUS: dict[int, type[NotionAPIError]] = {
    401: NotionUnauthorized,
    403: NotionRestricted,
    404: NotionNotFound,
    409: NotionUnavailable,
    429: NotionRateLimited,
}


def api_error(
    status: int,
    code: str,
    message: str,
    request_id: str | None = None,
    *,
    api_url: str | None = None,
) -> NotionAPIError:
    """The narrowest error class for an HTTP status (0: no answer at all)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        if status == 0 or status >= 500:
            cls = NotionUnavailable
        elif 400 <= status < 500:
            cls = NotionValidationError
        else:
            cls = NotionAPIError
    return cls(status, code, message, request_id, api_url=api_url)


def _summary(error: NotionAPIError) -> str:
    return f"{error.status} {error.code}"


def explain(error: BaseException, *, database_id: str | None = None) -> str:
    """One line saying what went wrong with Notion and how to fix it."""
    if not isinstance(error, NotionAPIError):
        return str(error)
    about = f" (database {database_id})" if database_id else ""
    if isinstance(error, NotionUnauthorized):
        return (
            f"Notion rejected NOTION_TOKEN ({_summary(error)}): create an integration token "
            f"at {INTEGRATIONS_URL} and set NOTION_TOKEN"
        )
    if isinstance(error, NotionNotFound):
        if database_id:
            return (
                f"database {database_id} was not found or is not shared with the integration: "
                "open it in Notion, ••• → Connections → add your integration"
            )
        return f"{error}; if it exists, share it with the integration (••• → Connections)"
    if isinstance(error, NotionRestricted):
        return (
            f"the integration may not do this{about} ({_summary(error)}): give it the Read, "
            f"Update and Insert content capabilities at {INTEGRATIONS_URL}"
        )
    if isinstance(error, NotionUnavailable) and error.status == 0:
        where = f" at {error.api_url}" if error.api_url else ""
        return (
            f"could not reach the Notion API{where} ({error.code}: {error.message}): "
            "check NOTION_API_URL and the network"
        )
    if isinstance(error, NotionUnavailable):
        return f"Notion is unavailable{about}, still after retries ({error}): try again later"
    if isinstance(error, NotionRateLimited):
        return (
            f"Notion kept rate-limiting after retries{about} ({error}): set NOTION_RATE_BUDGET "
            "to your plan's requests per minute (or lower NOTION_RATE_LIMIT), and check that no "
            "other program uses the same integration token or spends the workspace's limit"
        )
    if isinstance(error, NotionValidationError):
        return f"Notion refused the request{about}: {error}"
    return str(error)
