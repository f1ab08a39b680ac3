"""The master's side of the offload log socket: bind it, keep a log reader on it.

With an offloaded service in the config, gunicorn's master binds the unix datagram
socket nginx sends its lines to (``gateway serve --log-socket``, ``GATEWAY_LOG_SOCKET``,
default ``/run/gateway/nginx.sock``: the same as ``gateway nginx``'s), removing a
stale one, with mode 0666, or 0660 and the group ``GATEWAY_LOG_SOCKET_GROUP`` names,
so that nginx's workers can write to it. The socket stays the master's from start to
stop; the reader (gateway/offload/reader.py) is a process it starts on it, again on a
reload (the new one reads before the old one stops: the socket's queue is never
without a reader for long) and again if it dies.

Stdlib only: the master imports nothing gevent must patch first.
"""

from __future__ import annotations

import grp
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

ENV = "GATEWAY_LOG_SOCKET"
GROUP_ENV = "GATEWAY_LOG_SOCKET_GROUP"
DEFAULT = "/run/gateway/nginx.sock"
#: the host settings that bound how many lines can wait for the reader, and what the
#: deployment guide sets them to: the socket's queue, in lines (read when the gateway
#: makes the socket), and each nginx worker's send buffer, in bytes (read when nginx
#: opens its syslog socket: 208 KiB, the usual default, holds about 160 lines)
HOST_SETTINGS = {"net.unix.max_dgram_qlen": 4096, "net.core.wmem_default": 1048576}
#: below a quarter of it, the gateway warns at start
_WARN_BELOW = 4


class LogSocketError(Exception):
    """The socket cannot be made: the message says why and what to change."""


def bind(path: str, group: str | None = None) -> socket.socket:
    """The bound socket, a stale one at ``path`` removed first."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.exists(path) or os.path.islink(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise LogSocketError(f"{ENV}: {path} exists and is not a socket: name "
                                     "another path (gateway serve --log-socket PATH)")
            os.remove(path)
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except OSError as error:
        raise LogSocketError(f"{ENV}: cannot make the log socket {path} ({error.strerror}): "
                             "name a path in a directory the gateway may write to "
                             "(gateway serve --log-socket PATH)") from None
    try:
        channel.bind(path)
        # room for bursts: the kernel caps it at net.core.rmem_max
        channel.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        if group:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                channel.close()
                raise LogSocketError(f"{GROUP_ENV}: no group named {group!r}: name the "
                                     "group nginx's workers run in") from None
            os.chown(path, -1, gid)
            os.chmod(path, 0o660)
        else:
            os.chmod(path, 0o666)
    except OSError as error:
        channel.close()
        raise LogSocketError(f"{ENV}: cannot make the log socket {path} ({error.strerror}): "
                             "name a path in a directory the gateway may write to "
                             "(gateway serve --log-socket PATH)") from None
    return channel


def host_setting(name: str) -> str:
    with open("/proc/sys/" + name.replace(".", "/")) as file:
        return file.read().strip()


def queue_advice(read=host_setting) -> str | None:
    """A warning naming the host settings that hold too few lines (nginx drops what does
    not fit), with the command that raises them.

    :param read: ``f(name) -> value`` of a sysctl setting."""
    low = {}
    for name, advised in HOST_SETTINGS.items():
        try:
            value = int(read(name))
        except (OSError, ValueError):
            continue
        if value < advised // _WARN_BELOW:
            low[name] = value
    if not low:
        return None
    now = ", ".join(f"{name} is {value}" for name, value in low.items())
    raise_them = " ".join(f"{name}={HOST_SETTINGS[name]}" for name in low)
    return (f"{now}: nginx drops offloaded requests' log lines when more wait for the "
            f"reader than these hold; raise them, then start the gateway and reload nginx "
            f"(sysctl -w {raise_them}; the deployment guide, offload)")


class ReaderKeeper:
    """The master's log socket and the reader process on it."""

    def __init__(self, channel: socket.socket, path: str, log):
        self.channel = channel
        self.path = path
        self.log = log
        self.process: subprocess.Popen | None = None
        self.config: str | None = None
        self.stopping = False
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None

    def start(self, config_copy: str, env: dict) -> None:
        """A reader on ``config_copy``; the one before it stops once the new one reads."""
        with self._lock:
            self.config, self.env = config_copy, env
            previous = self.process
            self.process = self._spawn()
            if previous is not None:
                _stop(previous)
        if self._watch is None:
            self._watch = threading.Thread(target=self._keep, daemon=True,
                                           name="gateway-log-reader-watch")
            self._watch.start()

    def stop(self) -> None:
        self.stopping = True
        with self._lock:
            if self.process is not None:
                _stop(self.process)
                self.process = None
        self.channel.close()
        try:
            os.remove(self.path)
        except OSError:
            pass

    def _spawn(self) -> subprocess.Popen:
        ready_read, ready_write = os.pipe()
        env = dict(self.env, GATEWAY_CONFIG=self.config or "")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.offload.reader", "--fd",
             str(self.channel.fileno()), "--ready-fd", str(ready_write)],
            pass_fds=(self.channel.fileno(), ready_write), env=env)
        os.close(ready_write)
        try:
            ready, _, _ = select.select([ready_read], [], [], 60)
            if not ready or not os.read(ready_read, 16):
                self.log.error("the offload log reader did not start (pid %s): nginx's lines "
                               "wait on %s", process.pid, self.path)
            else:
                self.log.info("offload log reader on %s (pid: %s)", self.path, process.pid)
        finally:
            os.close(ready_read)
        return process

    def _keep(self) -> None:
        """A reader that ends when nobody stopped it is started again."""
        # the master's signals (HUP, TERM, CHLD) go to its main thread, where gunicorn
        # handles them at once: the kernel may hand one to any thread that does not
        # block it, and Python runs its handler only when the main thread wakes
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while not self.stopping:
            time.sleep(1.0)
            with self._lock:
                process = self.process
                if self.stopping or process is None or process.poll() is None:
                    continue
                self.log.error("the offload log reader (pid %s) ended (%s): starting "
                               "another", process.pid, process.returncode)
                self.process = self._spawn()


def _stop(process: subprocess.Popen) -> None:
    """TERM, and KILL if it has not ended in 10 s (it reads what is queued first)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
