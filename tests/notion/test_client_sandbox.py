"""NotionClient against the Notion sandbox over real HTTP: errors, resolution, paging, faults."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict
from typing import Any

import pytest
import structlog

from reelqueue.notion import (
    DataSourceRef,
    NotionAPIError,
    NotionClient,
    NotionNotFound,
    NotionUnauthorized,
    NotionValidationError,
    build_date,
    build_rich_text,
    build_status,
    build_url,
    explain,
    page_properties,
)
from reelqueue.sandbox import SandboxAdmin
from tests.notion.sandbox_helpers import Exchange, Recorder, all_rows, client_for, v1_counts

FAST = {"rps": 1000.0, "burst": 1000}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TRANSIENT = [500, 502, 503, 504, 529, 409]


@pytest.fixture
async def fast(sandbox: SandboxAdmin) -> SandboxAdmin:
    """The sandbox with a rate limit too high to matter."""
    await sandbox.reset(**FAST)
    return sandbox


async def first_page_id(sandbox: SandboxAdmin) -> str:
    return str((await sandbox.pages())[0]["id"])


async def test_a_missing_page_raises_not_found_at_once_with_the_sandbox_request_id(
    fast: SandboxAdmin,
) -> None:
    recorder = Recorder()
    async with client_for(fast, recorder) as client:
        with pytest.raises(NotionNotFound) as caught:
            await client.retrieve_page(UNKNOWN_ID)
        assert client.stats["requests"] == {"GET /v1/pages/{id}": {"404": 1}}
    error = caught.value
    assert (error.status, error.code) == (404, "object_not_found")
    assert [e.status for e in recorder.exchanges] == [404]
    assert error.request_id == recorder.exchanges[0].body["request_id"]
    assert v1_counts(await fast.stats()) == {"GET /v1/pages/{id}": {"404": 1}}


async def test_an_unknown_status_option_is_a_validation_error_raised_at_once(
    fast: SandboxAdmin,
) -> None:
    recorder = Recorder()
    page_id = await first_page_id(fast)
    async with client_for(fast, recorder) as client:
        with pytest.raises(NotionValidationError) as caught:
            await client.update_page(page_id, {"Status": build_status("status", "No Such Label")})
    error = caught.value
    assert (error.status, error.code) == (400, "validation_error")
    assert "No Such Label" in error.message
    assert error.request_id == recorder.exchanges[0].body["request_id"]
    assert v1_counts(await fast.stats()) == {"PATCH /v1/pages/{id}": {"400": 1}}


async def test_a_wrong_token_is_unauthorized_and_explained_without_the_token(
    fast: SandboxAdmin,
) -> None:
    wrong = "secret_this_token_is_wrong_0123456789"
    async with NotionClient(wrong, base_url=fast.base_url) as client:
        with pytest.raises(NotionUnauthorized) as caught:
            await client.me()
        assert client.stats.total == 1
    line = explain(caught.value)
    assert line.startswith("Notion rejected NOTION_TOKEN (401 unauthorized): ")
    assert wrong not in line
    assert wrong not in str(caught.value)


async def test_me_is_the_integrations_bot(fast: SandboxAdmin) -> None:
    async with client_for(fast) as client:
        me = await client.me()
    assert me["id"] == fast.bot_user_id
    assert me["type"] == "bot"


@pytest.mark.parametrize("spelling", ["dashed", "compact", "url"])
async def test_the_database_resolves_to_its_data_source(fast: SandboxAdmin, spelling: str) -> None:
    compact = fast.database_id.replace("-", "")
    ref = {
        "dashed": fast.database_id,
        "compact": compact.upper(),
        "url": f"https://www.notion.so/sandbox/Content-Calendar-{compact}?v={'ab' * 16}",
    }[spelling]
    async with client_for(fast) as client:
        sources = await client.resolve_data_sources(ref)
        schema = await client.retrieve_data_source(sources[0].data_source_id)
    assert sources == [DataSourceRef(fast.database_id, fast.data_source_id, "Content Calendar")]
    assert schema["object"] == "data_source"
    assert "Status" in schema["properties"]


async def test_an_unknown_database_is_not_found_and_explained_with_how_to_share_it(
    fast: SandboxAdmin,
) -> None:
    async with client_for(fast) as client:
        with pytest.raises(NotionNotFound) as caught:
            await client.resolve_data_sources(UNKNOWN_ID)
    line = explain(caught.value, database_id=UNKNOWN_ID)
    assert line == (
        f"database {UNKNOWN_ID} was not found or is not shared with the integration: "
        "open it in Notion, ••• → Connections → add your integration"
    )


async def test_pagination_returns_every_row_exactly_once(sandbox: SandboxAdmin) -> None:
    await sandbox.reset(videos=250, **FAST)
    expected = {page["id"] for page in await sandbox.pages()}
    async with client_for(sandbox) as client:
        rows = [row["id"] for row in await all_rows(client, sandbox.data_source_id)]
        assert client.stats["requests"] == {"POST /v1/data_sources/{id}/query": {"200": 3}}
    assert len(rows) == 250
    assert set(rows) == expected


async def test_the_10000_row_limit_is_reported_as_incomplete(sandbox: SandboxAdmin) -> None:
    await sandbox.reset(videos=10_050, **FAST)
    async with client_for(sandbox) as client:
        first = await client.query_data_source(sandbox.data_source_id)
        rows = [row["id"] for row in await all_rows(client, sandbox.data_source_id)]
    assert first.incomplete
    assert first.has_more
    assert len(rows) == len(set(rows)) == 10_000


async def test_filter_properties_trim_what_each_page_carries(fast: SandboxAdmin) -> None:
    async with client_for(fast) as client:
        schema = await client.retrieve_data_source(fast.data_source_id)
        wanted = [schema["properties"][name]["id"] for name in ("Title", "Status", "Error Log")]
        page = await client.query_data_source(
            fast.data_source_id, page_size=2, filter_properties=wanted
        )
        one = await client.retrieve_page(page.results[0]["id"], filter_properties=wanted[:1])
    assert [set(row["properties"]) for row in page.results] == [
        {"Title", "Status", "Error Log"}
    ] * 2
    assert set(one["properties"]) == {"Title"}


async def test_built_values_are_accepted_and_read_back(fast: SandboxAdmin) -> None:
    from datetime import UTC, datetime

    page_id = await first_page_id(fast)
    log_text = ("line 😀 " * 700) + "end"
    when = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    properties = {
        "Status": build_status("status", "Queued"),
        "Error Log": build_rich_text(log_text),
        "YouTube URL": build_url("https://youtu.be/abc"),
        "Updated": build_date(when),
    }
    async with client_for(fast) as client:
        page = await client.update_page(page_id, properties)
        again = page_properties(await client.retrieve_page(page_id))
    values = page_properties(page)
    assert values == again
    assert values["Status"] == "Queued"
    assert values["Error Log"] == log_text
    assert values["YouTube URL"] == "https://youtu.be/abc"
    assert values["Updated"].start == when


async def test_with_30_percent_faults_every_call_eventually_succeeds(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rps=50.0, burst=10)
    pages = [p["id"] for p in await sandbox.pages()]
    await sandbox.set_faults(error_rate=0.3, status_codes=TRANSIENT)

    fast_retries = {"max_attempts": 10, "retry_base_s": 0.05}
    async with client_for(sandbox, rate_limit=50.0, burst=5, **fast_retries) as client:

        async def call(i: int) -> Any:
            page_id = pages[i % len(pages)]
            if i % 3 == 0:
                return await client.retrieve_page(page_id)
            if i % 3 == 1:
                return await client.update_page(page_id, {"Error Log": build_rich_text(f"#{i}")})
            return await client.query_data_source(sandbox.data_source_id, page_size=5)

        results = await asyncio.gather(*(call(i) for i in range(60)))
        stats = client.stats.as_dict()
    served = await sandbox.stats()
    assert len(results) == 60
    assert stats["gave_up"] == 0
    assert stats["retries"] > 0
    assert served["faults_injected"] > 0
    assert stats["retries"] == served["faults_injected"] + served["rate_limited"]
    successes = sum(counts.get("200", 0) for counts in stats["requests"].values())
    assert successes == 60


async def test_retry_after_is_honoured_when_the_sandbox_says_429(sandbox: SandboxAdmin) -> None:
    await sandbox.reset(rps=2.0, burst=1)
    pages = [p["id"] for p in await sandbox.pages()][:5]
    recorder = Recorder()
    async with client_for(sandbox, recorder, rate_limit=100.0, burst=10) as client:
        answers = await asyncio.gather(*(client.retrieve_page(p) for p in pages))
        assert client.stats.rate_limited > 0
    assert [a["id"] for a in answers] == pages
    attempts: dict[int, list[Exchange]] = defaultdict(list)
    for exchange in recorder.exchanges:
        attempts[id(exchange.request)].append(exchange)
    assert len(attempts) == 5
    waits = 0
    for tries in attempts.values():
        assert tries[-1].status == 200
        for before, after in itertools.pairwise(tries):
            assert before.status == 429
            retry_after = float(before.headers["retry-after"])
            assert after.sent_at - before.sent_at >= retry_after
            waits += 1
    assert waits == (await sandbox.stats())["rate_limited"]


async def test_the_token_never_appears_in_logs_or_errors(
    sandbox: SandboxAdmin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sandbox.reset(**FAST)
    await sandbox.set_faults(error_rate=0.5, status_codes=TRANSIENT)
    wrong = "secret_wrong_token_for_the_leak_test"
    texts: list[str] = []
    with structlog.testing.capture_logs() as captured:
        async with client_for(sandbox, max_attempts=12, retry_base_s=0.01) as client:
            for _ in range(10):
                await client.me()
            for attempt in (client.retrieve_page(UNKNOWN_ID),):
                try:
                    await attempt
                except NotionAPIError as error:
                    texts += [str(error), repr(error), explain(error)]
        for token, url, attempts in (
            (wrong, sandbox.base_url, 1),
            (sandbox.token, "http://127.0.0.1:1", 2),
        ):
            async with NotionClient(token, base_url=url, max_attempts=attempts) as client:
                try:
                    await client.me()
                except NotionAPIError as error:
                    texts += [str(error), repr(error), explain(error), repr(client)]
    assert any(event["event"] == "notion request retried" for event in captured)
    texts += [repr(event) for event in captured]
    texts.append(caplog.text)
    for token in (sandbox.token, wrong):
        assert not [text for text in texts if token in text]


async def test_a_write_says_once_when_it_leaves_before_any_attempt_and_not_before(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rps=1000.0, burst=1000)
    pages = [p["id"] for p in await sandbox.pages()]
    await sandbox.set_faults(error_rate=0.5, status_codes=TRANSIENT)
    recorder = Recorder()
    left_before: dict[str, int] = {}
    calls: defaultdict[str, int] = defaultdict(int)
    fast_retries = {"max_attempts": 12, "retry_base_s": 0.01}
    async with client_for(sandbox, recorder, **fast_retries) as client:

        async def write(page_id: str) -> None:
            def leaving() -> None:
                calls[page_id] += 1
                left_before.setdefault(page_id, len(recorder.exchanges))

            await client.update_page(page_id, {"Error Log": build_rich_text("x")}, leaving=leaving)

        await asyncio.gather(*(write(p) for p in pages[:10]))
    attempts = [e.request.url.path.rsplit("/", 1)[-1] for e in recorder.exchanges]
    assert len(attempts) > 10, "some writes were retried"
    assert dict(calls) == dict.fromkeys(pages[:10], 1), "once per write, whatever its retries"
    for page_id, seen in left_before.items():
        bare = page_id.replace("-", "")
        assert bare not in [a.replace("-", "") for a in attempts[:seen]], "told before it left"
