"""Opening the database named by ``database:``, and its schema's version.

``sqlite:///gateway.db`` is relative to the directory of the config file the
operator named (``GATEWAY_CONFIG_ORIGIN`` when the file read is a copy, as
gunicorn's workers read), ``sqlite:////var/lib/gateway.db`` is absolute;
``postgresql://`` goes through psycopg 3. Only :func:`upgrade` (``gateway db
upgrade``) creates or changes the schema; :func:`check_schema` refuses a
database whose schema is missing, older or newer than this code, naming the
command that mends it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from alembic.config import Config

#: What a database that cannot be reached (or answers with an error) raises.
DatabaseError = (sqlalchemy.exc.SQLAlchemyError, OSError)

#: Seconds a connection attempt may take before the database counts as unreachable.
CONNECT_TIMEOUT = 3


class SchemaError(Exception):
    """The database's schema is missing or is not this code's version."""


def resolve(text: str, config_path: str) -> URL:
    """The URL SQLAlchemy opens: a relative SQLite path made absolute from the config
    file's directory, ``postgresql://`` given psycopg 3 as its driver."""
    url = make_url(text)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not os.path.isabs(database):
            origin = os.environ.get("GATEWAY_CONFIG_ORIGIN") or config_path
            base = os.path.dirname(os.path.abspath(origin)) if origin != "<mapping>" \
                else os.getcwd()
            url = url.set(database=os.path.join(base, database))
    elif url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def hidden(url: URL | str) -> str:
    """The URL as logs and messages show it: with its password replaced by ``***``."""
    return make_url(url).render_as_string(hide_password=True)


def open_engine(text: str, config_path: str) -> Engine:
    url = resolve(text, config_path)
    if url.get_backend_name() == "sqlite":
        engine = sqlalchemy.create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping: a connection the server closed (a restart) is replaced, not failed on
    return sqlalchemy.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4,
                                    connect_args={"connect_timeout": CONNECT_TIMEOUT})


def _sqlite_pragmas(connection, _record) -> None:
    # WAL: the workers read while the CLI writes; foreign keys are off by default in SQLite
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# Alembic is imported when a schema is checked or changed, not with this module: a
# worker reads it once at start, and 12 MiB of imports would stay for nothing.

def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "gateway.db:migrations")
    return config


def head() -> str:
    """The newest schema version this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or migrate the schema to this code's version (twice is harmless).

    :returns: the version before and after.
    """
    from alembic import command

    before = current(engine)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head()


def check_schema(engine: Engine, config_path: str) -> None:
    """:raises SchemaError: the schema is missing or not this code's version."""
    from alembic.script import ScriptDirectory

    found, newest = current(engine), head()
    fix = f"run `gateway db upgrade --config {config_path}`"
    where = hidden(engine.url)
    if found is None:
        raise SchemaError(f"database {where} has no gateway schema: {fix}")
    if found == newest:
        return
    known = {script.revision for script in
             ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if found in known:
        raise SchemaError(f"database {where} has schema version {found}, older than this "
                          f"gateway's {newest}: {fix}")
    raise SchemaError(f"database {where} has schema version {found}, newer than this "
                      f"gateway knows ({newest}): upgrade the gateway")
