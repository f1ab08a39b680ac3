"""The ``gateway`` command: ``check`` validates a config and prints the routes,
``hash-key`` prints the form an API key is stored in.

Installed as a console script by setup.cfg. ``check`` exits 0 when the file is
valid and 1 (with every problem named by its key path) when it is not.
"""

from __future__ import annotations

import os
import sys

import click

from .app import needs_shared_store
from .config import ConfigError, GatewayConfig, hash_key, load_config
from .routes import route_table
from .storage import is_redis


@click.group(help="An API gateway for Python teams.")
def main() -> None:
    pass


@main.command(help="Validate the config file and print the route table.")
@click.option("--config", "path", metavar="FILE", default=None,
              help="the YAML file (default: $GATEWAY_CONFIG, then ./gateway.yaml)")
def check(path: str | None) -> None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for warning in config_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    rows = [("PREFIX", "SERVICE", "METHODS", "UPSTREAM", "POLICIES")] + route_table(config)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    click.echo(f"{config.source}: OK, {len(config.services)} service(s)")


@main.command("hash-key", help="Print the sha256: form of an API key read from stdin.")
def hash_key_command() -> None:
    key = sys.stdin.readline().strip()
    if not key:
        click.echo("no key on stdin: echo -n 'the-key' | gateway hash-key", err=True)
        sys.exit(1)
    click.echo(hash_key(key))


def config_warnings(config: GatewayConfig, workers: int | None = None) -> list[str]:
    """Things that are valid but probably not what the user meant."""
    warnings = []
    for consumer in config.consumers.values():
        if consumer.plain_keys:
            warnings.append(
                f"consumers.{consumer.name}.keys: {consumer.plain_keys} key(s) written in plain "
                "text; store the sha256: form instead (`gateway hash-key` prints it)")
    if workers is None:
        workers = int(os.environ.get("GATEWAY_WORKERS") or os.cpu_count() or 1)
    stateful = needs_shared_store(config)
    if stateful and not is_redis(config.storage) and workers > 1:
        warnings.append(
            f"storage is {config.storage} and gunicorn runs {workers} workers: each worker "
            "counts quotas, caches and breaker failures on its own, so a limit of N lets up to "
            f"{workers}×N through. Set storage: redis://host:6379/0 to share them.")
    return warnings


if __name__ == "__main__":
    main()
