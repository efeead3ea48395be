"""Icons in request bodies, checked and stored in the shape Notion answers them in.

Notion's icon is a union on `type` (the key may be left out when the one type key says it):
`emoji` (one emoji character), `external` (`{"url"}`, an http(s) URL), `icon` (a native
icon, `{"name", "color"}`), `custom_emoji` (`{"id"}` of a workspace custom emoji) and
`file_upload` (`{"id"}` of a file uploaded through the API). `file` is answered, never
written. The sandbox has no custom emojis and no file uploads, so an icon naming either is
a 400 saying so. `null` removes the icon.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from reelqueue.sandbox.errors import NotionError, shape_error, validation_error
from reelqueue.sandbox.ids import normalize_id

WRITABLE = ("emoji", "external", "icon", "custom_emoji", "file_upload")
ICON_COLORS = (
    "gray",
    "lightgray",
    "brown",
    "yellow",
    "orange",
    "green",
    "blue",
    "purple",
    "pink",
    "red",
)
URL_LIMIT = 2000
# Code points an emoji is drawn from: pictographs, symbols, flags' regional indicators, and
# the joiners, variation selectors, keycap and tag characters that combine them.
_EMOJI_RANGES = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x20E3, 0x20E3),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x21AA),
    (0x231A, 0x23FF),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x200D, 0x200D),
    (0xFE0E, 0xFE0F),
    (0x1F000, 0x1FAFF),
    (0xE0020, 0xE007F),
)
_KEYCAP_BASES = frozenset("0123456789#*")
_COMBINING = frozenset({0x200D, 0xFE0E, 0xFE0F, 0x20E3})
_MAX_EMOJI_CODE_POINTS = 16


def is_emoji(text: str) -> bool:
    """Whether `text` reads as one emoji: emoji code points forming one cluster, or a keycap.

    A cluster is a pictograph with what combines into it (joiners, selectors, skin tones,
    tags), a ZWJ sequence of them, or a pair of regional indicators (a flag).
    """
    if not text or len(text) > _MAX_EMOJI_CODE_POINTS:
        return False
    if text[0] in _KEYCAP_BASES:
        return text[1:] in ("\u20e3", "\ufe0f\u20e3")
    if not all(any(lo <= ord(c) <= hi for lo, hi in _EMOJI_RANGES) for c in text):
        return False
    return _clusters(text) == 1


def _clusters(text: str) -> int:
    """How many emoji a run of emoji code points draws."""
    clusters, joined, flag_half = 0, False, False
    for char in text:
        point = ord(char)
        if point in _COMBINING or 0x1F3FB <= point <= 0x1F3FF or 0xE0020 <= point <= 0xE007F:
            joined = point == 0x200D
            continue
        if 0x1F1E6 <= point <= 0x1F1FF:
            flag_half = not flag_half
            if not flag_half:
                continue
        if not joined:
            clusters += 1
        joined = False
    return clusters


def parse_icon(raw: Any, path: str = "body.icon") -> dict[str, Any] | None:
    """The icon as Notion would answer it (None: no icon); a 400 NotionError if it is bad."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise shape_error(path, "an object or `null`", raw)
    kind = _kind(raw, path)
    value = raw[kind]
    where = f"{path}.{kind}"
    if kind == "emoji":
        if not isinstance(value, str) or not is_emoji(value):
            raise shape_error(where, "one emoji", value)
        return {"type": "emoji", "emoji": value}
    if not isinstance(value, dict):
        raise shape_error(where, "an object", value)
    if kind == "external":
        return {"type": "external", "external": {"url": _url(value.get("url"), f"{where}.url")}}
    if kind == "icon":
        return {"type": "icon", "icon": _native(value, where)}
    raise _not_modelled(kind, value.get("id"), where)


def _kind(raw: dict[str, Any], path: str) -> str:
    """The one writable type an icon object names, by `type` and by its keys."""
    keys = [key for key in raw if key != "type"]
    declared = raw.get("type", keys[0] if len(keys) == 1 else None)
    if declared not in WRITABLE or keys != [declared]:
        raise shape_error(
            path, f"an object with `type` one of {', '.join(WRITABLE)} and that one key", raw
        )
    return str(declared)


def _url(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or len(raw) > URL_LIMIT:
        raise shape_error(path, f"a URL of at most {URL_LIMIT} characters", raw)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in raw:
        raise shape_error(path, "a valid URL", raw)
    return raw


def _native(raw: dict[str, Any], path: str) -> dict[str, str]:
    name, color = raw.get("name"), raw.get("color", "gray")
    if not isinstance(name, str) or not name.strip():
        raise shape_error(f"{path}.name", "a non-empty string", name)
    if color not in ICON_COLORS:
        raise shape_error(f"{path}.color", f"one of {', '.join(ICON_COLORS)}", color)
    return {"name": name, "color": str(color)}


def _not_modelled(kind: str, raw_id: Any, path: str) -> NotionError:
    if not isinstance(raw_id, str) or normalize_id(raw_id) is None:
        return shape_error(f"{path}.id", "a valid uuid", raw_id)
    what = "custom emojis" if kind == "custom_emoji" else "file uploads"
    return validation_error(
        f"{path}.id: the sandbox does not model {what}, so no {kind} with ID {raw_id} exists "
        "(icons of type emoji, external and icon are modelled)."
    )
