"""``gateway nginx``: the nginx configuration that offloads services (gateway/offload)."""

from __future__ import annotations

import os

import click

from ..offload.nginx import DEFAULT_GATEWAY, DEFAULT_LISTEN, DEFAULT_LOG_SOCKET, render
from .commands import config_option, load_or_exit, main


@main.command(help="Print the nginx http {} block that carries offloaded services' requests "
              "(offload: true) and sends every other path to the gateway.")
@config_option
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True,
              help="what nginx's listen takes: a port, host:port, unix:PATH")
@click.option("--gateway", "gateway_address", metavar="HOST:PORT", default=DEFAULT_GATEWAY,
              show_default=True, help="where the gateway (gunicorn) listens")
@click.option("--log-socket", metavar="PATH", default=DEFAULT_LOG_SOCKET, show_default=True,
              help="the unix socket the gateway reads nginx's log lines on")
def nginx(path: str | None, listen: str, gateway_address: str, log_socket: str) -> None:
    config = load_or_exit(path)
    click.echo(render(config, listen=listen, gateway=gateway_address,
                      log_socket=os.path.abspath(log_socket)), nl=False)
