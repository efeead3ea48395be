"""The sandbox's data: the workspace identity, and its databases (one data source each, with
schema and pages); the seeded content calendar is one of them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reelqueue.sandbox.ids import decode_property_id, new_id
from reelqueue.sandbox.schema import PropertySchema


@dataclass(frozen=True)
class User:
    """A Notion user: the integration's bot, or the person editing the board."""

    id: str
    name: str
    type: str

    def reference(self) -> dict[str, Any]:
        """The user as a page's created_by / last_edited_by shows it."""
        return {"object": "user", "id": self.id}

    def author(self) -> dict[str, Any]:
        """The user as a webhook event's `authors` lists it."""
        return {"id": self.id, "type": self.type}


@dataclass(frozen=True)
class Workspace:
    """Who and where: fixed for the life of a sandbox, so ids survive a reset."""

    workspace_id: str
    workspace_name: str
    integration_id: str
    integration_name: str
    bot: User
    person: User
    database_id: str
    data_source_id: str
    parent_page_id: str

    @classmethod
    def create(cls, rng: random.Random) -> Workspace:
        """A workspace whose ids all come from `rng`."""
        return cls(
            workspace_id=new_id(rng),
            workspace_name="Sandbox Workspace",
            integration_id=new_id(rng),
            integration_name="reelqueue sandbox",
            bot=User(new_id(rng), "reelqueue sandbox", "bot"),
            person=User(new_id(rng), "Casey Creator", "person"),
            database_id=new_id(rng),
            data_source_id=new_id(rng),
            parent_page_id=new_id(rng),
        )

    def event_parent(self) -> dict[str, Any]:
        """A calendar page's parent as webhook events name it (API 2025-09-03)."""
        return {"id": self.database_id, "type": "database", "data_source_id": self.data_source_id}

    def parent(self) -> dict[str, Any]:
        """A calendar page's `parent`."""
        return {
            "type": "data_source_id",
            "data_source_id": self.data_source_id,
            "database_id": self.database_id,
        }


@dataclass
class Page:
    """One row of the calendar. `values` maps property name to the value part only.

    Times are kept exact; they are floored to the minute where Notion shows or filters them.
    `moved_to` is the parent page it was moved under, out of its data source (see `moves`).
    """

    id: str
    seq: int
    created_time: datetime
    last_edited_time: datetime
    created_by: User
    last_edited_by: User
    values: dict[str, Any]
    in_trash: bool = False
    shared: bool = True
    icon: Any = None
    cover: Any = None
    data_source_id: str = ""
    moved_to: str | None = None


@dataclass
class Calendar:
    """A database with its one data source: ids, title, schema, and pages in creation order.

    The seeded content calendar is one; `POST /v1/databases` makes more. `status_type` is the
    type of the property named Status, if any (the seeded calendar always has one). The
    database and its data source each have a description: the API writes the database's
    (POST and PATCH /v1/databases) and only reads the data source's. The data source may be
    trashed on its own (`data_source_in_trash`); the database stays where it is.
    """

    title: str
    status_type: str
    created_time: datetime
    schema: dict[str, PropertySchema]
    rng: random.Random
    pages: dict[str, Page] = field(default_factory=dict)
    next_seq: int = 0
    database_id: str = ""
    data_source_id: str = ""
    parent_page_id: str = ""
    created_by: User | None = None
    is_inline: bool = False
    icon: Any = None
    cover: Any = None
    database_description: list[dict[str, Any]] = field(default_factory=list)
    data_source_description: list[dict[str, Any]] = field(default_factory=list)
    data_source_in_trash: bool = False

    def parent(self) -> dict[str, Any]:
        """A page's `parent` when the page is a row of this data source."""
        return {
            "type": "data_source_id",
            "data_source_id": self.data_source_id,
            "database_id": self.database_id,
        }

    def event_parent(self) -> dict[str, Any]:
        """A row's parent as webhook events name it (API 2025-09-03)."""
        return {"id": self.database_id, "type": "database", "data_source_id": self.data_source_id}

    def property(self, key: str) -> PropertySchema | None:
        """Find a property by name, URL-encoded id, or raw id (Notion accepts all three)."""
        if key in self.schema:
            return self.schema[key]
        for prop in self.schema.values():
            if key in (prop.id, decode_property_id(prop.id)):
                return prop
        return None

    def title_property(self) -> PropertySchema:
        """The one title property."""
        return next(p for p in self.schema.values() if p.type == "title")

    def add_page(
        self, values: dict[str, Any], author: User, now: datetime, page_id: str | None = None
    ) -> Page:
        """Store a new page created by `author` at `now`."""
        page = Page(
            id=page_id or new_id(self.rng),
            seq=self.next_seq,
            created_time=now,
            last_edited_time=now,
            created_by=author,
            last_edited_by=author,
            values=values,
            data_source_id=self.data_source_id,
        )
        self.next_seq += 1
        self.pages[page.id] = page
        return page
