"""The API-key rows: 100,000 consumers with a key each in a SQLite database, against 10
keys written in gateway.yaml (issue 31: a lookup by the key's hash costs the same)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import insert, update

from gateway.cli import main as cli
from gateway.config import hash_key
from gateway.db import open_engine
from gateway.db.schema import consumers, keys, revision
from gateway.keyring.issued import IssuedKeys, key_hash, new_key_id

IN_FILE = "gateway, 10 keys in gateway.yaml"
IN_DATABASE = "gateway, 100,000 keys in the database"
COUNT = 100_000
#: seconds of warm-up for both rows: each worker loads the 100,000 keys as it boots
WARMUP = 12


def ten_in_file(path: Path, upstream: str) -> tuple[Path, str]:
    """A config with 10 consumers in the file; the key of the 6th."""
    lines = "".join(f"  c{i}:\n    keys: ['{hash_key(f'bench-file-key-{i}')}']\n"
                    for i in range(10))
    path.write_text(f"consumers:\n{lines}services:\n  users:\n    upstream: {upstream}\n"
                    "    auth: api_key\n")
    return path, "bench-file-key-5"


def many_in_database(path: Path, upstream: str, count: int = COUNT) -> tuple[Path, str]:
    """A config on a SQLite database holding ``count`` consumers with one issued key each;
    the key of the one in the middle."""
    path.write_text("database: sqlite:///bench-keys.db\n"
                    f"services:\n  users:\n    upstream: {upstream}\n    auth: api_key\n")
    (path.parent / "bench-keys.db").unlink(missing_ok=True)
    assert CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)]).exit_code == 0
    engine = open_engine("sqlite:///bench-keys.db", str(path))
    issued, now, chosen = IssuedKeys(), datetime.now(UTC), ""
    rows_c, rows_k = [], []
    for i in range(count):
        key = issued.issue()
        chosen = key if i == count // 2 else chosen
        rows_c.append({"name": f"c{i}", "rate_limit": None, "services": None, "meta": {},
                       "created_at": now})
        rows_k.append({"id": new_key_id(), "consumer": f"c{i}", "hash": key_hash(key),
                       "label": None, "hint": issued.hint(key), "created_at": now})
    with engine.begin() as connection:
        connection.execute(insert(consumers), rows_c)
        connection.execute(insert(keys), rows_k)
        connection.execute(update(revision).values(value=1))
    engine.dispose()
    return path, chosen
