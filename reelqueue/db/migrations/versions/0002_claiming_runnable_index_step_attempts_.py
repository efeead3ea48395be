"""claiming: runnable index, step attempts, outputs

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tasks",
        sa.Column("step_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "tasks",
        sa.Column(
            "outputs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_index("ix_tasks_channel_locked_at", "tasks", ["channel", "locked_at"], unique=False)
    op.create_index(
        "ix_tasks_leased",
        "tasks",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("locked_by IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_runnable",
        "tasks",
        ["channel", "priority", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('queued', 'assets_approved', 'composites_ready', 'video_approved', 'audio_approved', 'sfx_ready', 'assembly_ready', 'approved')"
        ),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_tasks_runnable",
        table_name="tasks",
        postgresql_where=sa.text(
            "status IN ('queued', 'assets_approved', 'composites_ready', 'video_approved', 'audio_approved', 'sfx_ready', 'assembly_ready', 'approved')"
        ),
    )
    op.drop_index(
        "ix_tasks_leased", table_name="tasks", postgresql_where=sa.text("locked_by IS NOT NULL")
    )
    op.drop_index("ix_tasks_channel_locked_at", table_name="tasks")
    op.drop_column("tasks", "outputs")
    op.drop_column("tasks", "step_attempts")
