"""Consumers, their keys, the audit log and the revision counter.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_consumers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("rate_limit", sa.String(100), nullable=True),
        sa.Column("services", sa.JSON, nullable=True),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "gateway_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("consumer", sa.String(200), sa.ForeignKey("gateway_consumers.name"),
                  nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("hint", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_gateway_keys_consumer", "gateway_keys", ["consumer"])
    op.create_table(
        "gateway_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("consumer", sa.String(200), nullable=True),
        sa.Column("key_id", sa.String(40), nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_gateway_audit_at", "gateway_audit", ["at"])
    op.create_index("ix_gateway_audit_revision", "gateway_audit", ["revision"])
    revision_table = op.create_table(
        "gateway_revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    for table in ("gateway_revision", "gateway_audit", "gateway_keys", "gateway_consumers"):
        op.drop_table(table)
