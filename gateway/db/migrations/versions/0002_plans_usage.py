"""Consumers' plans and allowances; usage per consumer, service and hour.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: as gateway/db/schema.py's USAGE_COUNTS (a migration keeps its own copy: it must
#: not change when the code does)
COUNTS = ("requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_429",
          "bytes_in", "bytes_out", "latency_le_5", "latency_le_10", "latency_le_25",
          "latency_le_50", "latency_le_100", "latency_le_250", "latency_le_500",
          "latency_le_1000", "latency_le_2500", "latency_le_5000", "latency_le_10000",
          "latency_over")


def upgrade() -> None:
    with op.batch_alter_table("gateway_consumers") as table:
        table.add_column(sa.Column("plan", sa.String(200), nullable=True))
        table.add_column(sa.Column("quota", sa.String(40), nullable=True))
    op.create_table(
        "gateway_usage",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), primary_key=True),
        sa.Column("hour", sa.DateTime, primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in COUNTS),
    )
    op.create_index("ix_gateway_usage_hour", "gateway_usage", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_gateway_usage_hour", "gateway_usage")
    op.drop_table("gateway_usage")
    with op.batch_alter_table("gateway_consumers") as table:
        table.drop_column("quota")
        table.drop_column("plan")
