"""Fake but realistic calendar entries: Draft videos, channels in turn, mostly Normal priority."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from reelqueue.sandbox.properties import empty_value, rich_text
from reelqueue.sandbox.schema import PropertySchema, first_status

TOPICS: dict[str, tuple[str, ...]] = {
    "science": (
        "Why the sky is blue",
        "How black holes evaporate",
        "The chemistry of fireworks",
        "CRISPR in five minutes",
        "Why ice floats",
        "How vaccines train the immune system",
        "The physics of rainbows",
        "What dark matter might be",
        "How batteries store energy",
        "Why cats land on their feet",
        "Plate tectonics explained",
        "How GPS needs relativity",
        "The strange life of tardigrades",
        "Why we dream",
        "How lightning forms",
    ),
    "history": (
        "The fall of Constantinople",
        "How the printing press changed Europe",
        "The lost colony of Roanoke",
        "Building the Great Pyramid",
        "The Library of Alexandria",
        "Life on the Silk Road",
        "The Great Fire of London",
        "Why Rome split in two",
        "The race to the South Pole",
        "The Bronze Age collapse",
        "The Rosetta Stone",
        "The tulip mania of 1637",
        "How the Vikings reached America",
        "The first Olympics",
        "The Dancing Plague of 1518",
    ),
}
STORY_DIRECTIONS = (
    "Open on a question a child would ask; three short acts; end on a surprising fact.",
    "Narrated like a detective story: the clue, the false lead, the answer.",
    "Fast cuts, bold captions, 60 seconds; one striking visual per beat.",
    "Calm and curious; a single metaphor carried from start to finish.",
    "Start with the myth, then the evidence, then what we still do not know.",
    "A day in the life: follow one person through the events.",
)
PRIORITY_WEIGHTS = (("High", 15), ("Normal", 70), ("Low", 15))


def _topics(channel: str) -> tuple[str, ...]:
    if channel in TOPICS:
        return TOPICS[channel]
    return tuple(f"{channel.replace('-', ' ').title()} idea {n}" for n in range(1, 16))


def draft_values(
    schema: dict[str, PropertySchema], count: int, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """Stored values for `count` Draft entries (the board's first To-do option when it has no
    Draft), the channels taken in turn."""
    channel_prop, priority_prop = schema["Channel"], schema["Priority"]
    draft = first_status(schema["Status"], "Draft")
    priorities = {name: priority_prop.option_named(name) for name, _ in PRIORITY_WEIGHTS}
    names = [name for name, _ in PRIORITY_WEIGHTS]
    weights = [weight for _, weight in PRIORITY_WEIGHTS]
    seen: dict[str, int] = {}
    for n in range(count):
        channel = channel_prop.options[n % len(channel_prop.options)]
        topics = _topics(channel.name)
        topic = topics[(n // len(channel_prop.options)) % len(topics)]
        seen[topic] = seen.get(topic, 0) + 1
        title = topic if seen[topic] == 1 else f"{topic}, part {seen[topic]}"
        priority = priorities[rng.choices(names, weights)[0]]
        assert priority is not None
        values = {name: empty_value(prop.type) for name, prop in schema.items()}
        values.update(
            {
                "Title": [rich_text(title)],
                "Channel": channel.value(),
                "Topic": [rich_text(topic)],
                "Story Direction": [rich_text(rng.choice(STORY_DIRECTIONS))],
                "Status": draft.value(),
                "Priority": priority.value(),
            }
        )
        yield values
