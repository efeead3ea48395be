"""Whatever a NOTIFY payload holds, the leader's doorbell rings and nothing raises."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given
from hypothesis import strategies as st

from reelqueue.config import Channel, Channels, Settings
from reelqueue.ingest import DOORBELL_CHANNEL, Doorbell
from reelqueue.service import Service

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_PAYLOADS = (
    st.text(max_size=60)
    | _JSON.map(json.dumps)
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["page.moved", "page.undeleted", "x"])},
        optional={"page": _JSON, "at": _JSON},
    ).map(json.dumps)
)


def _service() -> Service:
    return Service(
        Settings(),
        Channels(channels=(Channel(id="science", name="Science"),)),
        database_url="postgresql://u@127.0.0.1:1/none",
    )


@given(payload=_PAYLOADS)
def test_any_doorbell_payload_rings_for_ingest(payload: str) -> None:
    bell = Doorbell(window_s=0.0)
    _service()._on_notify(bell)(DOORBELL_CHANNEL, payload)
    rings = asyncio.run(bell.wait(0))
    assert rings.ingest, "a payload the leader cannot read still asks for a read"
