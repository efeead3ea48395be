"""drop tasks.notion_last_edited_time: nothing ever wrote or read it

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("tasks", "notion_last_edited_time")


def downgrade() -> None:
    op.add_column(
        "tasks", sa.Column("notion_last_edited_time", sa.DateTime(timezone=True), nullable=True)
    )
