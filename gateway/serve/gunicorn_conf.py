"""gunicorn settings for the gateway: ``gateway serve``, or ``gunicorn -c gunicorn.conf.py
wsgi:app`` from the checkout (that file imports this one). Loaded by gunicorn's
master, so it imports nothing of the gateway.

Worker class: gunicorn's ``gevent`` worker (gateway/serve/worker.py adds
prompt accepts under connection bursts and a quiet Ctrl-C), chosen by measurement (README,
"Speed"). A gateway spends its time waiting on upstreams, so what matters is
how many calls a worker keeps in flight and what each costs in CPU. Measured
here side by side against gunicorn's gthread (128 threads, the previous
choice), two workers each, median of three rounds: CPU time per request
1.29 ms against 1.37 proxy only, 1.80 against 2.13 with API key and Redis
quota, 1.78 against 2.14 with 256 connections to a 200 ms upstream, and at one
connection a p50 of 1.03 ms against 1.51 (a gthread request crosses from the
poller to a thread and back; 128 threads contend for the GIL). The app stays
plain synchronous WSGI code: gevent patches the standard library in each
worker before the app is imported, so sockets (urllib3, redis-py), locks and
threads (prometheus_client, breakers, aggregates) cooperate. For that patch to
reach ssl, nothing the master imports may pull in urllib3, requests or redis:
the master validates the config with ``gateway check`` in a child process (a
long-lived checker that imported the gateway once and forks per check:
gateway/serve/checker.py; a reload's check takes 0.03 s instead of 1 s).

Reload: ``kill -HUP <master>`` rereads GATEWAY_CONFIG and replaces the
workers gracefully, but only when the file validates (:func:`when_ready`).

Environment: GATEWAY_BIND (default 127.0.0.1:8000), GATEWAY_WORKERS (default:
one per core), GATEWAY_CONNECTIONS (requests in flight per worker, idle
keep-alive connections included, default 1000; the app sizes its connection
pools from it; GATEWAY_THREADS, its name under the gthread worker, is still
read), GATEWAY_CONFIG (the YAML file), GATEWAY_LOG_SOCKET and
GATEWAY_LOG_SOCKET_GROUP (the socket nginx sends offloaded requests' log lines to,
made with a log reader on it when a service is offloaded: gateway/serve/logsocket.py).
"""

import os

# (and admin.listen, added by on_starting: every worker serves the Admin API there too,
# and hands what arrives on it to the Admin API, gateway/admin)
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GATEWAY_WORKERS") or os.cpu_count() or 2)
worker_class = "gateway.serve.worker.GatewayWorker"
worker_connections = int(os.environ.get("GATEWAY_CONNECTIONS")
                         or os.environ.get("GATEWAY_THREADS") or 1000)
# the app reads this to size each service's connection pool (gateway/app.py)
os.environ["GATEWAY_CONNECTIONS"] = str(worker_connections)

# a worker that stops heart-beating for this long is replaced; gevent beats
# from its own greenlet, so slow upstream calls do not count against it
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

    _OWN_METRICS_DIR = _metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    _MASTER_PID = os.getpid()

    def _remove_own_metrics_dir() -> None:
        # however the master ends (a refused config included); forked workers
        # inherit this hook and must leave the directory alone
        if os.getpid() == _MASTER_PID:
            shutil.rmtree(_metrics_dir, ignore_errors=True)

    atexit.register(_remove_own_metrics_dir)


def on_starting(server):
    """Validate the gateway config once, in the master, before any worker forks.

    A broken file then stops gunicorn at once with the key path and the fix,
    instead of every worker failing to boot in turn. Warnings (plain-text
    keys, per-worker counting with memory://) are logged here too.
    """
    if not _validate_config(server):
        raise SystemExit(1)
    # this module was read before the config was checked (and `-b` replaces its bind):
    # add admin.listen now, and after every reload's reading of the settings
    _bind_admin(server.cfg)
    load_config = server.app.load_config

    def load_config_with_admin() -> None:
        load_config()
        _bind_admin(server.app.cfg)
    server.app.load_config = load_config_with_admin
    # Ctrl-C: "Shutting down: Master" is the one line a stop needs
    server.log.error_log.addFilter(
        lambda record: record.getMessage() != "Handling signal: int")
    # files left by an earlier run would be added to this run's metrics
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(metrics_dir, name))


def _bind_admin(cfg) -> None:
    """The listeners: the public ones, and admin.listen when the config has one."""
    admin = os.environ.get("GATEWAY_ADMIN_BIND")
    binds = [address for address in cfg.bind if address != admin]
    cfg.set("bind", binds + [admin] if admin else binds)


def when_ready(server):
    """``kill -HUP`` reloads only a config that validates, and never leaves a gap.

    gunicorn's own reload starts new workers on the new file and stops the old
    ones; a worker that cannot load the config fails to boot, and gunicorn then
    shuts down altogether. So the reload is wrapped: the file is validated
    first, and when it is invalid every problem is logged with its key path and
    the current workers go on serving the current config. And the old workers
    are stopped only once the new ones have loaded the app
    (gateway/serve/reload.py): gunicorn would stop them at once.
    """
    from gateway.serve.reload import keep_old_workers_until_ready

    keep_old_workers_until_ready(server, server.gateway_config_dir)
    reload = server.reload

    def validated_reload():
        if _validate_config(server):
            server.log.info("reload accepted: %s, %s", _config_path(), server.gateway_config_summary)
            reload()
            _keep_log_reader(server)
        else:
            server.log.error("reload refused: %s is invalid (above); the gateway goes on "
                             "serving with its current workers and config. Fix the file "
                             "(`gateway check` says the same) and send HUP again.",
                             _config_path())

    server.reload = validated_reload
    _keep_log_reader(server)


def _keep_log_reader(server) -> None:
    """With an offloaded service, the log socket nginx writes to and a reader on it
    (gateway/serve/logsocket.py); started at start and after each accepted reload."""
    from gateway.serve import logsocket

    keeper = getattr(server, "gateway_log_reader", None)
    if not server.gateway_offloaded:
        if keeper is not None:
            keeper.stop()
            server.gateway_log_reader = None
        return
    env = dict(os.environ, GATEWAY_CONFIG_ORIGIN=os.path.abspath(_config_path()))
    if keeper is None:
        path = os.environ.get(logsocket.ENV) or logsocket.DEFAULT
        try:
            channel = logsocket.bind(path, os.environ.get(logsocket.GROUP_ENV) or None)
        except logsocket.LogSocketError as error:
            server.log.error("%s", error)
            raise SystemExit(1) from None
        advice = logsocket.queue_advice()
        if advice:
            server.log.warning("%s", advice)
        keeper = server.gateway_log_reader = logsocket.ReaderKeeper(channel, path, server.log)
    keeper.start(server.gateway_config_copy, env)


def on_exit(server):
    """The log reader reads what nginx queued, then stops with the master."""
    keeper = getattr(server, "gateway_log_reader", None)
    if keeper is not None:
        keeper.stop()


def post_fork(server, worker):
    """Workers load the copy of the config the master validated, never the file itself:
    an edit to the file reaches no worker (one restarted after a crash included)
    until a HUP has validated it.

    A new worker still has the master's signal handlers until gunicorn installs its
    own (after gevent's patching, well into the boot): a TERM then would go into the
    master's queue, in this process's copy, and be lost, and the master would wait its
    whole graceful timeout for a worker that never heard it. So from the first moment
    a stop signal ends a worker that has not booted at once: it has nothing in flight
    (the worker class does the same once gunicorn's handlers are in).
    """
    import signal

    from gateway.serve.worker import stop_while_booting

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, lambda signum, frame: stop_while_booting(
            worker, quietly=signum != signal.SIGTERM))
    # a relative sqlite:/// path is relative to the file the operator named, not the copy
    os.environ["GATEWAY_CONFIG_ORIGIN"] = os.path.abspath(_config_path())
    os.environ["GATEWAY_CONFIG"] = server.gateway_config_copy
    from gateway.serve.reload import ready_file

    worker.gateway_ready_file = ready_file(server.gateway_config_dir, os.getpid())


def post_worker_init(worker):
    """The app has loaded: the master may now stop the workers this one replaces."""
    from gateway.serve.reload import mark_ready

    mark_ready(worker.gateway_ready_file)
    worker.log.info("Worker ready (pid: %s)", worker.pid)


def _config_path() -> str:
    return os.environ.get("GATEWAY_CONFIG") or "./gateway.yaml"


def _validate_config(server) -> bool:
    """Copy the config file, run ``gateway check`` on the copy in a child process,
    log what it says, and on success make the copy the one workers load.

    A child, not an import: the master then imports nothing of the gateway, so
    gevent patches the standard library before urllib3 or redis is loaded, and
    workers forked after a reload import the blueprints' current code.
    """
    import atexit
    import re
    import shutil
    import subprocess
    import sys
    import tempfile

    if not hasattr(server, "gateway_config_dir"):
        server.gateway_config_dir = tempfile.mkdtemp(prefix="gateway-config-")
        master = os.getpid()

        def remove_config_copies() -> None:
            if os.getpid() == master:
                shutil.rmtree(server.gateway_config_dir, ignore_errors=True)
        atexit.register(remove_config_copies)
        server.gateway_config_copies = 0
    path = _config_path()
    server.gateway_config_copies += 1
    copy = os.path.join(server.gateway_config_dir, f"gateway-{server.gateway_config_copies}.yaml")
    command = [sys.executable, "-m", "gateway.cli", "check", "--config", copy]
    try:
        shutil.copyfile(path, copy)
    except OSError:
        # unreadable: gateway check says why, of the file as GATEWAY_CONFIG names it
        command = command[:-2]
    env = dict(os.environ, GATEWAY_WORKERS=str(server.cfg.workers),
               GATEWAY_CONFIG_ORIGIN=os.path.abspath(path))
    check = _checked_by_checker(server, command[3:], env)
    if check is None:  # no checker to ask: a child of its own, as before
        try:
            check = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=120)
        except subprocess.TimeoutExpired:
            server.log.error("`gateway check` did not finish in 120 s")
            return False
    for line in check.stderr.replace(copy, path).splitlines():
        if line.startswith("warning: "):
            server.log.warning("%s", line[len("warning: "):])
        elif line.strip():
            server.log.error("%s", line)
    if check.returncode != 0:
        if os.path.exists(copy):
            os.remove(copy)
        return False
    previous = getattr(server, "gateway_config_copy", None)
    server.gateway_config_copy = copy
    from gateway.serve.reload import config_summary

    server.gateway_config_summary = config_summary(check.stdout)
    # an offloaded service's line in check's table: nginx logs to the gateway's socket
    server.gateway_offloaded = bool(re.search(r"^/\S*\s+\S+\s+.*[\s,]offloaded$",
                                              check.stdout, re.MULTILINE))
    admin = re.search(r"^ADMIN API on (\S+)", check.stdout, re.MULTILINE)
    if admin:
        os.environ["GATEWAY_ADMIN_BIND"] = admin.group(1)
    else:
        os.environ.pop("GATEWAY_ADMIN_BIND", None)
    if previous and previous != copy and previous.startswith(server.gateway_config_dir):
        os.remove(previous)  # workers parse the file when they boot; none reads the old one now
    return True


def _checked_by_checker(server, argv: list[str], env: dict):
    """``gateway <argv>`` answered by the master's checker process
    (gateway/serve/checker.py: the gateway imported once, a fork per check), started on
    first use; None when it cannot answer (the caller then runs the command itself)."""
    import json
    import subprocess
    import sys
    from types import SimpleNamespace

    checker = getattr(server, "gateway_checker", None)
    try:
        if checker is None or checker.poll() is not None:
            # no metrics of its own in the workers' directory: it only checks files
            quiet = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            checker = server.gateway_checker = subprocess.Popen(
                [sys.executable, "-m", "gateway.serve.checker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=quiet)
            master = os.getpid()

            def stop_checker() -> None:
                if os.getpid() == master and checker.poll() is None:
                    checker.kill()
            import atexit
            atexit.register(stop_checker)
            if not _line_within(checker, 120) == "ready":
                raise OSError("the checker did not start")
        assert checker.stdin is not None
        checker.stdin.write(json.dumps({"argv": argv, "env": {
            k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}}) + "\n")
        checker.stdin.flush()
        answer = json.loads(_line_within(checker, 120))
    except (OSError, ValueError, TypeError):
        if checker is not None and checker.poll() is None:
            checker.kill()
        server.gateway_checker = None
        return None
    return SimpleNamespace(returncode=answer["code"], stdout=answer["stdout"],
                           stderr=answer["stderr"])


def _line_within(process, seconds: float) -> str:
    """The process's next line of output, or OSError when none comes in time."""
    import select

    ready, _, _ = select.select([process.stdout], [], [], seconds)
    if not ready:
        raise OSError("no answer in time")
    line = process.stdout.readline()
    if not line:
        raise OSError("the checker has ended")
    return line.strip()


def worker_exit(server, worker):
    """A worker that stops (a graceful stop, a reload, a recycle after max_requests)
    writes the usage it still holds before it goes (gateway/usage/recorder.py)."""
    from gateway.usage import flush_all

    flush_all()


def child_exit(server, worker):
    """A dead worker's live gauges must not be reported any more."""
    from prometheus_client import multiprocess

    from gateway.serve.reload import forget

    multiprocess.mark_process_dead(worker.pid)
    forget(server.gateway_config_dir, worker.pid)
