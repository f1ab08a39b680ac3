"""The checkout's WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` or
``flask --app wsgi run``. An installed gateway uses ``gateway.wsgi:app`` (``gateway serve``)."""

from gateway.app import load_app

app = load_app()
