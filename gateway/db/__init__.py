"""The database: consumers, their keys (hashes only) and the audit log of every change.

``database:`` in gateway.yaml names it: SQLite for one host, PostgreSQL for
several. :mod:`.schema` is the tables (SQLAlchemy Core), :mod:`.migrations`
their versions (Alembic: ``gateway db upgrade``), :mod:`.engine` opens a
database and checks that its schema is this code's, and :mod:`.records` is
every read and change the CLI and the Admin API make. Each change bumps one
revision counter in the same transaction as its audit record: the workers
follow that counter (gateway/keyring/follower.py), never querying on a request.
"""

from .engine import DatabaseError, SchemaError, check_schema, hidden, open_engine, upgrade
from .records import Conflict, Invalid, NotFound, ReadOnly, Records, Refused

__all__ = ["Conflict", "DatabaseError", "Invalid", "NotFound", "ReadOnly", "Records",
           "Refused", "SchemaError", "check_schema", "hidden", "open_engine", "upgrade"]
