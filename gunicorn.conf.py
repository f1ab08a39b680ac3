"""gunicorn settings for the checkout: ``gunicorn -c gunicorn.conf.py wsgi:app``.

The settings themselves live in the package (gateway/serve/gunicorn_conf.py),
where ``gateway serve`` finds them from any directory; this file only brings
them here, so both ways start the same gateway.
"""

from gateway.serve.gunicorn_conf import *  # noqa: F403
