"""The Notion error tree: the narrow leaf per status, its text, and the one-line explanations."""

from __future__ import annotations

import pickle

import pytest

from reelqueue.errors import ReelqueueError
from reelqueue.notion import (
    NotionAPIError,
    NotionError,
    NotionNotFound,
    NotionRateLimited,
    NotionRestricted,
    NotionUnauthorized,
    NotionUnavailable,
    NotionValidationError,
    explain,
)
from reelqueue.notion.errors import api_error


@pytest.mark.parametrize(
    ("status", "leaf"),
    [
        (400, NotionValidationError),
        (413, NotionValidationError),
        (401, NotionUnauthorized),
        (403, NotionRestricted),
        (404, NotionNotFound),
        (409, NotionUnavailable),
        (429, NotionRateLimited),
        (500, NotionUnavailable),
        (502, NotionUnavailable),
        (503, NotionUnavailable),
        (504, NotionUnavailable),
        (529, NotionUnavailable),
        (0, NotionUnavailable),
    ],
)
def test_each_status_maps_to_its_narrow_leaf(status: int, leaf: type[NotionAPIError]) -> None:
    error = api_error(status, "some_code", "message", "rid")
    assert type(error) is leaf
    assert isinstance(error, NotionAPIError | NotionError | ReelqueueError)
    assert (error.status, error.code, error.message, error.request_id) == (
        status,
        "some_code",
        "message",
        "rid",
    )


def test_str_names_status_code_message_and_request_id() -> None:
    error = api_error(404, "object_not_found", "Could not find page.", "abc-123")
    assert str(error) == "Notion 404 object_not_found: Could not find page. (request_id abc-123)"
    assert str(api_error(0, "timeout", "no answer")) == "Notion 0 timeout: no answer"


def test_errors_survive_pickling_with_their_fields() -> None:
    error = pickle.loads(pickle.dumps(api_error(429, "rate_limited", "slow down", "r1")))
    assert isinstance(error, NotionRateLimited)
    assert (error.status, error.code, error.request_id) == (429, "rate_limited", "r1")


def test_explain_a_rejected_token() -> None:
    line = explain(api_error(401, "unauthorized", "API token is invalid.", "r"))
    assert line.startswith("Notion rejected NOTION_TOKEN (401 unauthorized): ")
    assert "https://www.notion.so/profile/integrations" in line


def test_explain_a_database_not_shared_says_how_to_share_it() -> None:
    database = "0123abcd-0000-4000-8000-000000000000"
    line = explain(api_error(404, "object_not_found", "Could not find", "r"), database_id=database)
    assert line == (
        f"database {database} was not found or is not shared with the integration: "
        "open it in Notion, ••• → Connections → add your integration"
    )


def test_explain_an_unreachable_api_names_notion_api_url() -> None:
    error = api_error(0, "connection_error", "ConnectError", api_url="http://127.0.0.1:1")
    line = explain(error)
    assert "NOTION_API_URL" in line
    assert "http://127.0.0.1:1" in line


@pytest.mark.parametrize("status", [403, 400, 429, 503])
def test_explain_other_failures_is_one_line_with_the_details(status: int) -> None:
    line = explain(api_error(status, "code_x", "what Notion said", "rid-9"), database_id="db")
    assert "\n" not in line
    assert "what Notion said" in line or status == 403
    assert "db" in line


def test_explain_passes_other_errors_through() -> None:
    assert explain(ValueError("plain")) == "plain"
