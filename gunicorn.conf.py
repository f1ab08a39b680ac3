"""gunicorn settings for the gateway: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Worker class: gthread (gateway/workers.py), chosen by measurement over gevent.
A gateway spends its time waiting on upstreams, so what matters is how many
calls a worker keeps in flight: each worker runs GATEWAY_THREADS requests at
once (the default 128 × one worker per core keeps hundreds of slow upstream
calls in flight: the suite holds 200 open through two workers; sync workers
would hold two), and idle keep-alive connections wait in the poller instead
of holding a thread. gunicorn's gevent worker, measured side by side in the
same runs (README, "Speed"), was even on proxy only, ahead on the full chain
and behind with 256 connections to a 200 ms upstream: no clear gain, and it
would need the whole process monkey-patched before anything imports ssl, so
it is not used.

Environment: GATEWAY_BIND (default 127.0.0.1:8000), GATEWAY_WORKERS (default:
one per core), GATEWAY_THREADS (default 128; the app sizes its connection pools
from the same variable), GATEWAY_CONFIG (the YAML file).
"""

import os

bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GATEWAY_WORKERS") or os.cpu_count() or 2)
# gthread that accepts a connection only while a thread is free, so a burst
# spreads over the workers (see gateway/workers.py)
worker_class = "gateway.workers.GatewayThreadWorker"
threads = int(os.environ.get("GATEWAY_THREADS") or 128)
# the app reads this to size each service's connection pool to `threads`
os.environ["GATEWAY_THREADS"] = str(threads)
# connections per worker, busy and idle: room for 1000 idle keep-alive
# connections (nginx keeps its upstream connections to the gateway open)
worker_connections = threads + 1000

# a worker that stops heart-beating for this long is replaced; gthread beats
# from its main loop, so slow upstream calls do not count against it
timeout = 60
# on SIGTERM/SIGHUP, in-flight requests get this long to finish
graceful_timeout = 30
# keep client (nginx) connections open between requests
keepalive = 5
# heartbeat files on tmpfs: a slow disk must not get workers killed
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# the gateway writes its own JSON access log on stdout
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GATEWAY_LOG_LEVEL", "info")

# Which X-Forwarded-* to believe is the gateway's `trusted_proxies` setting
# alone; gunicorn must not rewrite the scheme on its own.
forwarded_allow_ips = ""

# gunicorn's control socket lives at one path per user: two gateways on one
# host (blue/green, or one per port) would fight over it. Nothing here uses it.
control_socket_disable = True


# Prometheus multiprocess mode: every worker writes its metrics to files in
# this directory and /metrics adds them up. It must be set before a worker
# imports prometheus_client, so here, in the master.
_OWN_METRICS_DIR = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import atexit
    import shutil
    import tempfile

    _OWN_METRICS_DIR = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN_METRICS_DIR
    _MASTER_PID = os.getpid()

    def _remove_own_metrics_dir() -> None:
        # however the master ends (a refused config included); forked workers
        # inherit this hook and must leave the directory alone
        if os.getpid() == _MASTER_PID:
            shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)

    atexit.register(_remove_own_metrics_dir)


def on_starting(server):
    """Validate the gateway config once, in the master, before any worker forks.

    A broken file then stops gunicorn at once with the key path and the fix,
    instead of every worker failing to boot in turn. Warnings (plain-text
    keys, per-worker counting with memory://) are logged here too.
    """
    from gateway.config import ConfigError, load_config
    from gateway.config.lint import config_warnings

    try:
        config = load_config()
    except ConfigError as exc:
        server.log.error("%s", exc)
        raise SystemExit(1) from None
    for warning in config_warnings(config, workers=server.cfg.workers):
        server.log.warning("%s", warning)
    # files left by an earlier run would be added to this run's metrics
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(metrics_dir, name))


def child_exit(server, worker):
    """A dead worker's live gauges must not be reported any more."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
