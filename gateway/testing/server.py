"""``gateway_server``: the config under test served by ``gateway serve`` in a process
of its own, on a free loopback port, for what only a real server shows (WebSockets,
streaming, several workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

#: seconds a start may take (a machine several times slower than a laptop included)
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GatewayServer:
    """``gateway serve --config <the config under test>`` and its log."""

    def __init__(self, config: dict, directory: Path, workers: int = 1):
        self.config_path = directory / "gateway-under-test.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "gateway-server.log"
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(Path(sys.executable).parent / "gateway"), "serve", "--config",
                   str(self.config_path), "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(self.workers)]
        root = os.getcwd()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        with open(self.log_path, "wb") as log:
            # a session of its own: stop() ends its whole group, whatever happened
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gateway serve did not start on {self.url}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-5000:]}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        """Listening, and every worker has booted (gunicorn logs each)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        return self.log_path.read_text(errors="replace").count("Worker ready") >= self.workers

    def stop(self) -> None:
        """TERM, a graceful wait, then KILL to the whole group: nothing is left listening."""
        if self.process is not None:
            stop_group(self.process)
            self.process = None


def stop_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """TERM a process started in a session of its own, wait, then KILL its whole group
    (a worker its master left behind would outlive the test)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=timeout)
