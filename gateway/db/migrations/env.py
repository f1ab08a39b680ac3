"""Alembic's entry: run the migrations on the connection gateway/db/engine.py hands over."""

from alembic import context

from gateway.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  # SQLite alters a table by copying it: Alembic's batch mode does that
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
