# The gateway under gunicorn, as the README runs it. `docker compose up` runs
# two of these behind nginx with Redis and the example shop (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies in their own layer, pinned by the lock file: rebuilt only when
# setup.cfg or constraints.txt changes.
COPY setup.cfg pyproject.toml constraints.txt ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); \
print(c['options']['install_requires']); print(c['options.extras_require']['examples'])" \
 | grep -v '^ *#' > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY README.md wsgi.py gunicorn.conf.py lambda_handler.py ./
COPY gateway ./gateway
COPY blueprints ./blueprints
COPY examples ./examples
RUN pip install --no-deps . && useradd --create-home --uid 10001 gateway

USER gateway
ENV GATEWAY_BIND=0.0.0.0:8000 GATEWAY_CONFIG=/app/examples/gateway.yaml
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"

ENTRYPOINT ["gateway"]
CMD ["serve"]
