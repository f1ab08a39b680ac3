"""Serving the gateway in production: ``gateway serve``.

- :mod:`.gunicorn_conf`: the gunicorn settings (workers, bind, reload that
  validates first, Prometheus multiprocess mode); loaded by path, so the
  master imports none of the gateway.
- :mod:`.worker`: gunicorn's gevent worker, accepting connection bursts
  promptly and stopping quietly on Ctrl-C.
- :mod:`.reload`: a reload keeps the old workers until the new ones are ready.
- :mod:`.checker`: the master's ``gateway check``, the gateway imported once.
"""
