"""Alembic environment: runs on the connection reelqueue.db.migrate hands it."""

from alembic import context

from reelqueue.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `reelqueue db upgrade`, which supplies the connection")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
