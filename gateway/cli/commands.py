"""The ``gateway`` commands that run and check a gateway.

- ``gateway check [--config FILE]``: validate exactly as the gateway does at
  start (blueprint imports included), print the route table, exit 1 on errors.
- ``gateway schema``: print the config file's JSON Schema (for editors).
- ``gateway hash-key``: print the form an API key is stored in.
- ``gateway openapi [--config FILE] [--refresh]``: print the merged OpenAPI
  document (the services' documents from the kept copies, ``--refresh``
  fetches them anew).
- ``gateway serve [--config FILE] [--bind ADDR] [--workers N]``: run the
  gateway under gunicorn with its settings (gateway/serve), from any directory.
"""

from __future__ import annotations

import json
import os
import sys

import click

from ..config import ConfigError, GatewayConfig, hash_key, load_config
from ..config.lint import config_warnings
from ..db.checks import database_problems
from ..policies import steps_for
from ..routing import CONFIG_CHECKS, route_table
from ..storage import unreachable_warning


def route_chains(config: GatewayConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(route, its chain's steps) for every service, blueprint and aggregate."""
    chains = [(name, steps_for("service", service, config))
              for name, service in config.services.items()]
    chains += [(entry.loaded.name, steps_for("blueprint", entry, config))
               for entry in config.blueprints]
    chains += [(aggregate.route_name, steps_for("aggregate", aggregate, config))
               for aggregate in config.aggregates]
    return chains

SCHEMA_ID = "https://flask-api-gateway.invalid/gateway.schema.json"


@click.group(help="An API gateway for Python teams.")
def main() -> None:
    pass


config_option = click.option(
    "--config", "path", metavar="FILE", default=None,
    help="the YAML file (default: $GATEWAY_CONFIG, then ./gateway.yaml)")


def load_or_exit(path: str | None) -> GatewayConfig:
    """The config as the gateway would load it, or exit 1 with every problem."""
    # blueprints are imported as gunicorn and flask import them: from the working directory
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_config(path, named_by="--config" if path else None, checks=CONFIG_CHECKS)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@main.command(help="Validate the config file and print the route table.")
@config_option
@click.option("--nginx-conf", metavar="FILE", default=None,
              help="also say whether this file `gateway nginx` wrote still matches the config")
def check(path: str | None, nginx_conf: str | None) -> None:
    config = load_or_exit(path)
    warnings = config_warnings(config)
    if nginx_conf is not None:
        warnings += filter(None, [nginx_conf_warning(config, nginx_conf)])
    if config.keeps_shared_state():
        warnings += filter(None, [unreachable_warning(config.storage, config.on_storage_error)])
    problems, database_warnings = database_problems(config)
    if problems:
        click.echo(str(ConfigError(problems, config.source)), err=True)
        sys.exit(1)
    warnings += database_warnings
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    rows = [("PREFIX", "SERVICE", "METHODS", "UPSTREAM", "POLICIES"), *route_table(config)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    click.echo("")
    click.echo("CHAINS (in the order a request meets them)")
    names = max((len(name) for name, _ in route_chains(config)), default=0)
    for name, steps in route_chains(config):
        click.echo(f"{name.ljust(names)}  {' -> '.join(steps)}")
    if config.admin is not None:  # (gateway/serve/gunicorn_conf.py binds what this says)
        click.echo(f"\nADMIN API on {config.admin.listen} ({len(config.admin.tokens)} token(s))")
    aggregates = f", {len(config.aggregates)} aggregate(s)" if config.aggregates else ""
    click.echo(f"{config.source}: OK, {len(config.services)} service(s){aggregates}")


def nginx_conf_warning(config: GatewayConfig, nginx_conf: str) -> str | None:
    """A warning when ``nginx_conf`` was not written by ``gateway nginx`` from this config."""
    from ..offload.nginx import FINGERPRINT, fingerprint

    try:
        with open(nginx_conf, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        return f"--nginx-conf: {nginx_conf} cannot be read ({error.strerror})"
    written = next((line[len(FINGERPRINT):].strip() for line in text.splitlines()
                    if line.startswith(FINGERPRINT)), None)
    if written is None:
        return (f"nginx: {nginx_conf} was not written by `gateway nginx` (no fingerprint): "
                "offloaded services need its output")
    if written != fingerprint(config):
        return (f"nginx: {nginx_conf} no longer matches {config.source}: write it again "
                "(`gateway nginx --config ...`) and reload nginx")
    return None


def schema_document() -> dict:
    """The JSON Schema of gateway.yaml (editors' completion, the configuration reference)."""
    document = GatewayConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **document, "title": "gateway.yaml"}


@main.command(help="Print the JSON Schema of gateway.yaml.")
def schema() -> None:
    click.echo(json.dumps(schema_document(), indent=2))


@main.command("hash-key", help="Print the sha256: form of an API key read from stdin.")
def hash_key_command() -> None:
    key = sys.stdin.readline().strip()
    if not key:
        click.echo("no key on stdin: echo -n 'the-key' | gateway hash-key", err=True)
        sys.exit(1)
    click.echo(hash_key(key))


@main.command(help="Print the merged OpenAPI document of every route.")
@config_option
@click.option("--refresh", is_flag=True,
              help="fetch each service's own document again instead of the kept copy")
def openapi(path: str | None, refresh: bool) -> None:
    import logging

    from ..openapi import openapi_document
    from ..transport import Upstream

    config = load_or_exit(path)
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)
    upstreams = {name: Upstream(service) for name, service in config.services.items()}
    click.echo(json.dumps(openapi_document(config, upstreams, refresh=refresh), indent=2))


@main.command(help="Run the gateway under gunicorn with the gateway's settings.")
@config_option
@click.option("--bind", metavar="ADDR", default=None,
              help="host:port or unix:PATH (default: $GATEWAY_BIND, then 127.0.0.1:8000)")
@click.option("--workers", metavar="N", type=click.IntRange(min=1), default=None,
              help="worker processes (default: $GATEWAY_WORKERS, then one per core)")
@click.option("--log-socket", metavar="PATH", default=None,
              help="the unix socket nginx sends offloaded requests' log lines to (default: "
              "$GATEWAY_LOG_SOCKET, then /run/gateway/nginx.sock; made at start when a "
              "service has offload: true)")
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- GUNICORN ARGS]")
def serve(path: str | None, bind: str | None, workers: int | None, log_socket: str | None,
          gunicorn_args: tuple[str, ...]) -> None:
    env = dict(os.environ)
    if log_socket:
        env["GATEWAY_LOG_SOCKET"] = os.path.abspath(log_socket)
    if path:
        env["GATEWAY_CONFIG"] = os.path.abspath(path)
    if bind:
        env["GATEWAY_BIND"] = bind
    if workers:
        env["GATEWAY_WORKERS"] = str(workers)
    settings = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "serve",
                            "gunicorn_conf.py")
    # gunicorn replaces this process: signals (HUP reload, TERM, Ctrl-C) reach its master
    os.execve(sys.executable, [sys.executable, "-m", "gunicorn", "-c", settings,
                               *gunicorn_args, "gateway.wsgi:app"], env)

