"""The ``gateway`` commands that manage the database's consumers and keys, and read usage.

- ``gateway db upgrade``: create or migrate the schema (twice is harmless).
- ``gateway consumers add|set|list|show|remove``, ``gateway keys
  issue|list|revoke|rotate``: the changes the Admin API makes, by
  ``cli:<OS user>`` in the audit log.
- ``gateway export`` / ``gateway import FILE``: every consumer and key hash as
  JSON (a backup, or a move from SQLite to PostgreSQL).
- ``gateway usage``: the usage records, per consumer, service and period.
- ``gateway admin``: the Admin API alone, under gunicorn.

Each exits 0 when done and 1 with one line on stderr when refused (unknown
consumer, duplicate name, bad duration, no database configured).
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import click
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from ..config import GatewayConfig
from ..db import Records, Refused, SchemaError, check_schema, hidden, open_engine, upgrade
from ..db.checks import first_line, operator_path
from ..db.engine import DatabaseError
from ..db.records import ConsumerChanges, ConsumerFields, Invalid, invalid
from ..keyring import IssuedKeys
from ..routing import route_names
from .commands import config_option, load_or_exit, main

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def refuse(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def duration(text: str, option: str) -> timedelta:
    """``<n>s|m|h|d``."""
    match = _DURATION.match(text.strip())
    if not match:
        refuse(f"{option}: {text!r} is not a duration (expected <n>s, <n>m, <n>h or <n>d, "
               "e.g. 24h)")
    assert match is not None
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def moment(text: str) -> datetime:
    """``--expires``: a duration from now, or an ISO-8601 time with its zone."""
    if _DURATION.match(text.strip()):
        return datetime.now(UTC) + duration(text, "--expires")
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        refuse(f"--expires: {text!r} is neither a duration (30d) nor an ISO-8601 time with "
               "its zone (2027-01-31T00:00:00Z)")
    assert when is not None
    if when <= datetime.now(UTC):
        refuse(f"--expires: {text} is in the past")
    return when


def database_config(path: str | None) -> GatewayConfig:
    config = load_or_exit(path)
    if config.database is None:
        refuse(f"no database configured: add database: to {operator_path(config)} "
               "(e.g. database: sqlite:///gateway.db)")
    return config


@contextmanager
def opened(config: GatewayConfig, check: bool = True) -> Iterator[Engine]:
    """The config's database, its schema checked; exit 1 if unreachable or not upgraded."""
    engine = open_engine(config.database or "", config.source)
    try:
        if check:
            check_schema(engine, operator_path(config))
        yield engine
    except SchemaError as error:
        refuse(str(error))
    except DatabaseError as error:
        refuse(f"database unreachable: {first_line(error)} ({hidden(engine.url)})")
    except Refused as error:
        refuse(error.message)
    finally:
        engine.dispose()


@contextmanager
def records(path: str | None) -> Iterator[Records]:
    config = database_config(path)
    with opened(config) as engine:
        yield Records(engine, actor=f"cli:{_os_user()}", read_only=set(config.consumers),
                      routes=route_names(config), issued=IssuedKeys(config.keys.prefix),
                      plans=set(config.plans))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _table(rows: list[dict], columns: list[str]) -> None:
    cells = [[c.upper() for c in columns]] + [
        ["-" if row.get(c) is None else ",".join(row[c]) if isinstance(row[c], list)
         else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


format_option = click.option("--format", "output", type=click.Choice(["table", "json"]),
                             default="table", show_default=True)


# -- gateway db

@main.group(help="The database's schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Create or migrate the database's schema (twice is harmless).")
@config_option
def db_upgrade(path: str | None) -> None:
    config = database_config(path)
    with opened(config, check=False) as engine:
        before, after = upgrade(engine)
    where = hidden(engine.url)
    if before == after:
        click.echo(f"{where}: schema already at version {after}")
    else:
        click.echo(f"{where}: schema {'created at' if before is None else 'upgraded to'} "
                   f"version {after}")


# -- gateway consumers

@main.group(help="Consumers managed at runtime (those of gateway.yaml are not listed).")
def consumers() -> None:
    pass


def _metadata(meta: tuple[str, ...]) -> dict[str, str]:
    metadata = {}
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            refuse(f"--meta: {item!r} is not k=v")
        metadata[key] = value
    return metadata


def _listed(services: str | None) -> list[str] | None:
    return [s.strip() for s in services.split(",") if s.strip()] if services is not None \
        else None


def _option_error(error: ValidationError) -> str:
    """A field's problem, naming the command-line option that gave it."""
    return _option_message(invalid(error).message)


def _option_message(message: str) -> str:
    """``rate_limit: ...`` as ``--rate-limit: ...`` (the option that gave the field)."""
    field, sep, rest = message.partition(":")
    if field in ("rate_limit", "quota", "plan", "services", "metadata"):
        return f"--{field.replace('_', '-').replace('metadata', 'meta')}{sep}{rest}"
    return f"NAME{sep}{rest}" if field == "name" else message


@consumers.command("add", help="Add a consumer.")
@click.argument("name")
@click.option("--plan", metavar="PLAN", help="a plan of gateway.yaml (plans:)")
@click.option("--rate-limit", metavar="LIMIT", help="its own limit, e.g. 100/minute "
              "(replaces its plan's)")
@click.option("--quota", metavar="N/PERIOD", help="its own allowance, e.g. 10000/month "
              "(replaces its plan's)")
@click.option("--services", metavar="A,B", help="the services it may use (default: all)")
@click.option("--meta", metavar="K=V", multiple=True, help="metadata (repeatable)")
@config_option
def consumers_add(name: str, plan: str | None, rate_limit: str | None, quota: str | None,
                  services: str | None, meta: tuple[str, ...], path: str | None) -> None:
    try:
        fields = ConsumerFields(name=name, plan=plan, rate_limit=rate_limit, quota=quota,
                                services=_listed(services), metadata=_metadata(meta))
    except ValidationError as error:  # one line, naming the option
        refuse(_option_error(error))
        return
    with records(path) as store:
        try:
            store.add_consumer(fields)
        except Invalid as error:
            refuse(_option_message(error.message))
    click.echo(f"consumer {name!r} added")


@consumers.command("set", help="Change a consumer's plan, limits or services (an empty "
                   "value unsets one: --plan '').")
@click.argument("name")
@click.option("--plan", metavar="PLAN", help="a plan of gateway.yaml (plans:)")
@click.option("--rate-limit", metavar="LIMIT", help="its own limit, e.g. 100/minute")
@click.option("--quota", metavar="N/PERIOD", help="its own allowance, e.g. 10000/month")
@click.option("--services", metavar="A,B", help="the services it may use")
@click.option("--meta", metavar="K=V", multiple=True, help="metadata (repeatable; replaces it)")
@config_option
def consumers_set(name: str, plan: str | None, rate_limit: str | None, quota: str | None,
                  services: str | None, meta: tuple[str, ...], path: str | None) -> None:
    given: dict = {field: value or None for field, value in (
        ("plan", plan), ("rate_limit", rate_limit), ("quota", quota)) if value is not None}
    if services is not None:
        given["services"] = _listed(services) if services else None
    if meta:
        given["metadata"] = _metadata(meta)
    if not given:
        refuse("nothing to change: give --plan, --rate-limit, --quota, --services or --meta")
    try:
        changes = ConsumerChanges(**given)
    except ValidationError as error:
        refuse(_option_error(error))
        return
    with records(path) as store:
        try:
            store.update_consumer(name, changes)
        except Invalid as error:
            refuse(_option_message(error.message))
    click.echo(f"consumer {name!r} changed")


@consumers.command("list", help="List the consumers.")
@format_option
@config_option
def consumers_list(output: str, path: str | None) -> None:
    with records(path) as store:
        rows = store.list_consumers()
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        _table(rows, ["name", "plan", "rate_limit", "quota", "services", "created_at"])


@consumers.command("show", help="Show a consumer and its keys (as JSON).")
@click.argument("name")
@config_option
def consumers_show(name: str, path: str | None) -> None:
    with records(path) as store:
        shown = {**store.get_consumer(name), "keys": store.list_keys(name)}
    click.echo(json.dumps(shown, indent=2))


@consumers.command("remove", help="Remove a consumer: its keys stop working.")
@click.argument("name")
@config_option
def consumers_remove(name: str, path: str | None) -> None:
    with records(path) as store:
        store.remove_consumer(name)
    click.echo(f"consumer {name!r} removed")


# -- gateway keys

@main.group(help="API keys of the database's consumers.")
def keys() -> None:
    pass


def _print_key(view: dict, output: str) -> None:
    if output == "json":
        click.echo(json.dumps({k: view[k] for k in ("id", "key", "hint", "consumer",
                                                    "expires_at")}))
    else:
        click.echo(view["key"])  # alone on stdout: KEY=$(gateway keys issue partner)


@keys.command("issue", help="Issue a key for a consumer; prints the key alone, once.")
@click.argument("consumer")
@click.option("--label", metavar="TEXT")
@click.option("--expires", metavar="30d|ISO-8601", help="a duration from now, or a time")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@config_option
def keys_issue(consumer: str, label: str | None, expires: str | None, output: str,
               path: str | None) -> None:
    when = moment(expires) if expires else None
    with records(path) as store:
        view = store.issue_key(consumer, label, when)
    _print_key(view, output)


@keys.command("list", help="List keys (never the keys themselves).")
@click.argument("consumer", required=False)
@format_option
@config_option
def keys_list(consumer: str | None, output: str, path: str | None) -> None:
    with records(path) as store:
        rows = store.list_keys(consumer)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        _table(rows, ["id", "consumer", "label", "hint", "created_at", "expires_at",
                      "last_used_at", "revoked_at"])


@keys.command("revoke", help="Revoke a key: it stops working on every gateway within 1 s.")
@click.argument("key_id")
@config_option
def keys_revoke(key_id: str, path: str | None) -> None:
    with records(path) as store:
        store.revoke_key(key_id)
    click.echo(f"key {key_id} revoked")


@keys.command("rotate", help="A new key for the same consumer; prints it alone. The old "
                             "one keeps working until --grace ends.")
@click.argument("key_id")
@click.option("--grace", default="0s", show_default=True, metavar="DURATION",
              help="how long the old key keeps working, e.g. 24h")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@config_option
def keys_rotate(key_id: str, grace: str, output: str, path: str | None) -> None:
    period = duration(grace, "--grace")
    with records(path) as store:
        view = store.rotate_key(key_id, period)
    _print_key(view, output)


# -- export, import

@main.command(help="Write every consumer and key hash of the database as JSON to stdout.")
@config_option
def export(path: str | None) -> None:
    with records(path) as store:
        click.echo(json.dumps(store.export(), indent=2))


@main.command("import", help="Read consumers and key hashes that `gateway export` wrote; a "
                             "name that exists refuses the whole import.")
@click.argument("file", type=click.File("r"))
@config_option
def import_command(file, path: str | None) -> None:
    try:
        document = json.load(file)
    except ValueError as error:
        refuse(f"{file.name}: not JSON ({error})")
    with records(path) as store:
        count = store.import_(document)
    click.echo(f"{count} consumer(s) imported")


# -- gateway admin

@main.command(help="Run the Admin API alone (under gunicorn), on admin.listen or --bind.")
@config_option
@click.option("--bind", metavar="ADDR", default=None, help="host:port (default: admin.listen)")
def admin(path: str | None, bind: str | None) -> None:
    config = database_config(path)
    if config.admin is None:
        refuse(f"no admin: in {operator_path(config)}: add admin: {{listen: 127.0.0.1:8081, "
               "tokens: {ops: 'sha256:…'}}")
    assert config.admin is not None
    with opened(config):
        pass  # refused here, not in a worker, when the schema is not upgraded
    env = dict(os.environ, GATEWAY_CONFIG=os.path.abspath(config.source))
    os.execve(sys.executable, [sys.executable, "-m", "gunicorn", "--bind",
                               bind or config.admin.listen, "--workers", "1", "--threads", "4",
                               "--access-logfile", "-", "gateway.admin.wsgi:app"], env)


# -- gateway usage

@main.command(help="Usage per consumer, service and period, from the database's records: "
              "requests, answers by class, bytes, p50/p95 latency (UTC).")
@click.option("--consumer", metavar="NAME", help="one consumer (anonymous: requests that "
              "named none)")
@click.option("--service", metavar="NAME", help="one service, blueprint or aggregate")
@click.option("--from", "start", metavar="DATE", help="from this UTC date or ISO-8601 time, "
              "inclusive (default: the start of this month)")
@click.option("--to", "end", metavar="DATE", help="to this UTC date or ISO-8601 time, exclusive")
@click.option("--by", type=click.Choice(["hour", "day", "month"]), default="day",
              show_default=True, help="one row per consumer, service and this period")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]),
              default="table", show_default=True)
@config_option
def usage(consumer: str | None, service: str | None, start: str | None, end: str | None,
          by: str, output: str, path: str | None) -> None:
    from ..db.usage import FIELDS, report, usage_query

    config = database_config(path)
    try:
        asked = usage_query({"consumer": consumer, "service": service, "from": start,
                             "to": end, "by": by}, datetime.now(UTC))
    except Refused as error:
        refuse(f"--{error.message}")
        return
    with opened(config) as engine:
        rows = report(engine, asked)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        _table(rows, list(FIELDS))
