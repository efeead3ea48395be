"""the inbox's unprocessed events found by an index, not a scan of every event kept

Push-back asks before every write which pages have events no read has taken in, and
ingest marks events taken in; both look only at rows with no processed_at, a handful
among every event of the last days.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_webhook_inbox_unapplied ON webhook_inbox (id)"
        " WHERE processed_at IS NULL"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_webhook_inbox_received_at ON webhook_inbox (received_at)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_webhook_inbox_received_at")
    op.execute("DROP INDEX IF EXISTS ix_webhook_inbox_unapplied")
