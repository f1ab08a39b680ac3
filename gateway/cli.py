"""The ``gateway`` command: ``gateway check`` validates a config and prints the routes.

Installed as a console script by setup.cfg. ``check`` exits 0 when the file is
valid and 1 (with every problem named by its key path) when it is not.
"""

from __future__ import annotations

import sys

import click

from .config import ConfigError, load_config
from .routes import route_table


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
    rows = [("PREFIX", "SERVICE", "METHODS", "UPSTREAM")] + route_table(config)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for prefix, name, methods, upstream in rows:
        click.echo(f"{prefix:<{widths[0]}}  {name:<{widths[1]}}  {methods:<{widths[2]}}  {upstream}")
    click.echo(f"{config.source}: OK, {len(config.services)} service(s)")


def config_warnings(config) -> list[str]:
    """Things that are valid but probably not what the user meant."""
    return []


if __name__ == "__main__":
    main()
