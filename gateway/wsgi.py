"""The installed gateway's WSGI app: ``gunicorn gateway.wsgi:app`` (what ``gateway serve``
runs) works from any directory, with the config named by ``GATEWAY_CONFIG``."""

from .app import load_app

app = load_app()
