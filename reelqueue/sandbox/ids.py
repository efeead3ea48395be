"""Notion ids: UUIDs accepted with or without dashes, always returned dashed."""

from __future__ import annotations

import random
import re
import string
import uuid
from urllib.parse import quote, unquote

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_PROPERTY_ID_CHARS = string.ascii_letters + string.digits + "%;:<>?@[]^_`{|}~"


def normalize_id(raw: str) -> str | None:
    """The dashed lower-case form of a Notion id, or None when `raw` is not one."""
    compact = raw.strip().replace("-", "").lower()
    if not _HEX32.match(compact):
        return None
    return str(uuid.UUID(hex=compact))


def compact_id(dashed: str) -> str:
    """The 32 hex digits of an id, as Notion puts them in page URLs."""
    return dashed.replace("-", "")


def new_id(rng: random.Random) -> str:
    """A fresh dashed UUID drawn from `rng`, so a seeded sandbox repeats its ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def new_property_id(rng: random.Random, taken: set[str]) -> str:
    """A short URL-encoded property id like Notion's (`U%60%3BC`), unique among `taken`."""
    while True:
        raw = "".join(rng.choice(_PROPERTY_ID_CHARS) for _ in range(4))
        encoded = encode_property_id(raw)
        if encoded not in taken:
            return encoded


def encode_property_id(raw: str) -> str:
    """URL-encode a raw property id the way Notion returns it."""
    return quote(raw, safe="~_.-")


def decode_property_id(encoded: str) -> str:
    """The raw form of a URL-encoded property id."""
    return unquote(encoded)
