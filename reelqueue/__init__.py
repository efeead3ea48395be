"""reelqueue: a durable PostgreSQL production queue driven by a Notion content calendar."""

__version__ = "0.1.0"
