"""A worker's directory kept in step with the database, off the request path.

Every :data:`POLL` seconds a background thread (a greenlet under gunicorn's
gevent worker) reads the revision counter (gateway/db/schema.py): one
indexed single-row read. When it moved, the audit records since the last
revision name the consumers that changed, and only those are read again and
replaced in the :class:`~gateway.keyring.Directory`. So a key issued, revoked or
rotated anywhere is accepted or refused by this worker within ``POLL`` plus a
query of a few rows (measured: see docs/guides/consumers.md), and the requests
themselves never wait on the database.

Measured before choosing: PostgreSQL's LISTEN/NOTIFY would save the idle
polls (four single-row reads a second per worker) but needs one connection per
worker held open, does nothing for SQLite, and still needs this catch-up path
for what happened while the connection was down. Polling is one path for both.

The database down: the worker goes on with the keys it last knew, logs one
WARNING and one line when it is back, and catches up then. When keys were used
is written every :data:`TOUCH_EVERY` seconds, batched, never by a request.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ..config import ConfigError, GatewayConfig
from ..keyring import ConsumerEntry, Directory, KeyEntry
from .checks import database_problems, first_line, operator_path
from .engine import DatabaseError, SchemaError, check_schema, hidden, open_engine
from .records import Records
from .schema import audit, consumers, keys, revision

log = logging.getLogger("gateway.database")

#: Seconds between two reads of the revision counter.
POLL = 0.25
#: Seconds between two writes of when keys were last used (shown within 60 s).
TOUCH_EVERY = 10.0


class Follower:
    """Loads the database's consumers and keys into ``directory`` and follows changes."""

    def __init__(self, engine: Engine, directory: Directory, config_path: str,
                 on_state: Callable[[bool], None] = lambda up: None,
                 poll: float = POLL, touch_every: float = TOUCH_EVERY,
                 clock: Callable[[], float] = time.monotonic):
        self.engine = engine
        self.directory = directory
        self.config_path = config_path
        self.on_state = on_state
        self.poll_every = poll
        self.touch_every = touch_every
        self.clock = clock
        #: the revision this worker has caught up with (None: nothing loaded yet)
        self.revision: int | None = None
        self.reachable = True
        self._next_touch = clock() + touch_every
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> str:
        """``ok`` or ``unreachable`` (``/readyz``, the status page)."""
        return "ok" if self.reachable else "unreachable"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="gateway-database-follower")
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.poll_every):
            self.step()

    def step(self) -> None:
        """One poll: catch up if the revision moved, write last uses when due; a
        database error marks it unreachable and is tried again at the next poll."""
        try:
            self.catch_up()
            if self.clock() >= self._next_touch:
                self._next_touch = self.clock() + self.touch_every
                self.touch()
        except (*DatabaseError, SchemaError) as error:
            self._unreachable(error)
        else:
            self._reachable()

    def catch_up(self) -> None:
        with self.engine.connect() as connection:
            if self.revision is None:
                check_schema(self.engine, self.config_path)
            current = connection.execute(select(revision.c.value)).scalar_one()
            if current == self.revision:
                return
            changed: set[str | None] | None = None
            if self.revision is not None:
                changed = set(connection.execute(
                    select(audit.c.consumer).distinct()
                    .where(audit.c.revision > self.revision, audit.c.revision <= current))
                    .scalars())
            if changed is None or None in changed:
                self._load_all(connection)
            else:
                self._load(connection, [name for name in changed if name is not None])
            self.revision = current

    def touch(self) -> None:
        """Write when keys were last used (a batch; lost uses are only a later time)."""
        used, self.directory.used = self.directory.used, {}
        if used:
            Records(self.engine, actor="gateway").touch(
                {key_id: datetime.fromtimestamp(at, UTC) for key_id, at in used.items()})

    def _load_all(self, connection: Connection) -> None:
        names = set(self.directory.consumers) - {
            n for n, c in self.directory.consumers.items() if c.from_file}
        entries = [_consumer(row, self.directory.plans)
                   for row in connection.execute(select(consumers)).mappings()]
        names |= {entry.name for entry in entries}
        self.directory.replace(names, entries, _keys(connection.execute(
            select(keys.c.id, keys.c.consumer, keys.c.hash, keys.c.expires_at)
            .where(keys.c.revoked_at.is_(None))).mappings()))

    def _load(self, connection: Connection, names: list[str]) -> None:
        for start in range(0, len(names), 100):
            # a big change (an import) goes in slices: the worker's requests run between
            # them (time.sleep(0) yields to them under gevent)
            time.sleep(0)
            chunk = names[start:start + 100]
            entries = [_consumer(row, self.directory.plans) for row in connection.execute(
                select(consumers).where(consumers.c.name.in_(chunk))).mappings()]
            self.directory.replace(chunk, entries, _keys(connection.execute(
                select(keys.c.id, keys.c.consumer, keys.c.hash, keys.c.expires_at)
                .where(keys.c.consumer.in_(chunk), keys.c.revoked_at.is_(None))).mappings()))

    def _unreachable(self, error: BaseException) -> None:
        if self.reachable:
            self.reachable = False
            self.on_state(False)
            log.warning("database unreachable: %s (%s); going on with the keys last known",
                        first_line(error), hidden(self.engine.url))

    def _reachable(self) -> None:
        if not self.reachable:
            self.reachable = True
            self.on_state(True)
            log.warning("database reachable again: %s", hidden(self.engine.url))


def _consumer(row, plans) -> ConsumerEntry:
    # names interned: a consumer's entry and its keys' share one string (100,000 of them)
    return ConsumerEntry.of(sys.intern(row["name"]), plans, plan=row["plan"],
                            services=row["services"], rate_limit=row["rate_limit"],
                            quota=row["quota"])


def _keys(rows: Iterable) -> Iterable[tuple[bytes, KeyEntry]]:
    for row in rows:
        expires = row["expires_at"]
        yield bytes.fromhex(row["hash"]), KeyEntry(
            row["id"], sys.intern(row["consumer"]), expires.timestamp() if expires is not None else None)


def follow(config: GatewayConfig, directory: Directory,
           on_state: Callable[[bool], None] = lambda up: None) -> Follower:
    """The worker's follower of ``config.database``, its first load done (or, the
    database unreachable, warned about) and its polling started.

    :raises ConfigError: the schema is missing or old, or a name is in both places.
    """
    engine = open_engine(config.database or "", config.source)
    problems, _ = database_problems(config, engine)
    if problems:
        engine.dispose()
        raise ConfigError(problems, config.source)
    follower = Follower(engine, directory, operator_path(config), on_state=on_state)
    follower.step()
    # what was just loaded lives as long as the worker: out of the garbage collector's
    # sight (100,000 keys are a million objects, and a full collection walking them all
    # took every few hundred requests of a worker measured 1.5 ms of CPU each, not 0.7)
    gc.freeze()
    on_state(follower.reachable)
    follower.start()
    return follower
