"""Bodies stream both ways: chunks arrive as sent, and memory stays flat.

The memory cases run the gateway under real gunicorn (one worker) and the
upstream in its own process, and watch the worker's resident memory while a
1 GiB answer and a 256 MiB chunked upload go through.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for, wait_for_port

GiB = 1024 ** 3
MiB = 1024 ** 2
#: How much a worker's RSS may grow while a body many times larger passes.
FLAT = 64 * MiB


def test_first_chunk_reaches_client_before_upstream_finishes(make_gateway, upstream):
    gw = make_gateway({"services": {"events": upstream.url}})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
    conn.request("GET", "/events/stream")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/x-ndjson"
    first = resp.readline()
    assert first == b'{"line": 1}\n'
    # the upstream is still holding its second line back
    assert not upstream.app.finished.is_set()
    upstream.app.gate.set()
    assert resp.read() == b'{"line": 2}\n'
    conn.close()


def test_first_chunk_streams_through_gunicorn(gunicorn_gateway, upstream):
    gw = gunicorn_gateway({"services": {"events": upstream.url}}, workers=1)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
    conn.request("GET", "/events/stream")
    resp = conn.getresponse()
    assert resp.readline() == b'{"line": 1}\n'
    assert not upstream.app.finished.is_set()
    upstream.app.gate.set()
    assert resp.read() == b'{"line": 2}\n'
    conn.close()


@pytest.fixture
def upstream_process():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.upstream", str(port), "big"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def worker_pids(master_pid: int) -> list[int]:
    """The master's workers (not its config checker, gateway/serve/checker.py)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(master_pid)],
                         capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if line.strip() and "gateway.serve.checker" not in line]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class RssWatcher:
    """Samples a process's resident memory in the background."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.start = pid, 0, rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak - self.start


def test_one_gib_download_passes_with_flat_memory(gunicorn_gateway, upstream_process):
    gw = gunicorn_gateway({"services": {"files": upstream_process}}, workers=1)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    conn.request("GET", f"/files/bytes?size={GiB}")  # warm the worker up first
    resp = conn.getresponse()
    (worker,) = worker_pids(gw.process.pid)
    watcher = RssWatcher(worker)
    assert resp.getheader("Content-Length") == str(GiB)
    received = 0
    while chunk := resp.read(MiB):
        received += len(chunk)
    growth = watcher.stop()
    conn.close()
    assert received == GiB
    assert growth < FLAT, f"worker RSS grew by {growth / MiB:.0f} MiB for a 1 GiB body"


def test_large_chunked_upload_streams_with_flat_memory(gunicorn_gateway, upstream_process):
    gw = gunicorn_gateway({"services": {"files": upstream_process}}, workers=1)
    # the worker has loaded the app: its imports are no growth of the upload's (watched
    # from the port alone, a slow boot's imports once counted 81 MiB)
    assert wait_for(lambda: "Worker ready" in gw.log(), timeout=60)
    (worker,) = worker_pids(gw.process.pid)
    size, block = 256 * MiB, bytes(range(256)) * 256  # 64 KiB
    digest = hashlib.sha256()
    watcher = RssWatcher(worker)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    conn.putrequest("POST", "/files/upload")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for _ in range(size // len(block)):
        digest.update(block)
        conn.send(b"%x\r\n%s\r\n" % (len(block), block))
    conn.send(b"0\r\n\r\n")
    got = json.loads(conn.getresponse().read())
    growth = watcher.stop()
    conn.close()
    assert got["body_length"] == size
    assert got["body_sha256"] == digest.hexdigest()
    assert growth < FLAT, f"worker RSS grew by {growth / MiB:.0f} MiB for a 256 MiB upload"


# -- server-sent events ------------------------------------------------------------------

def read_event(resp) -> bytes:
    """One server-sent event (up to its blank line)."""
    event = b""
    while not event.endswith(b"\n\n"):
        line = resp.readline()
        if not line:
            break
        event += line
    return event


def test_events_arrive_one_by_one_and_are_marked_for_nginx(gunicorn_gateway, upstream):
    gw = gunicorn_gateway({"services": {"feed": {"upstream": upstream.url,
                                                 "cache": {"ttl": 60}}}}, workers=1)
    for _ in range(2):  # never stored: the second request is no cache hit
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        conn.request("GET", "/feed/sse?count=3&every=1")
        resp = conn.getresponse()
        assert resp.getheader("Content-Type") == "text/event-stream"
        assert resp.getheader("X-Accel-Buffering") == "no"
        assert resp.getheader("X-Cache-Status") != "HIT"
        assert read_event(resp) == b"id: 0\ndata: event 0\n\n"
        # the first event is here while the upstream is still a second from its next
        assert not upstream.app.events_outcome.is_set()
        assert resp.read() == b"id: 1\ndata: event 1\n\nid: 2\ndata: event 2\n\n"
        conn.close()


def test_read_timeout_is_the_silence_between_events(gunicorn_gateway, upstream):
    """A stream of an event a second runs its whole length under `timeout.read: 2`;
    a silence longer than that cuts the answer short, never with a clean end."""
    gw = gunicorn_gateway({"services": {"feed": {"upstream": upstream.url,
                                                 "timeout": {"read": 2}}}}, workers=1)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    conn.request("GET", "/feed/sse?count=11&every=1")  # 10 s
    body = conn.getresponse().read()
    assert body.count(b"data: event") == 11
    conn.close()

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    conn.request("GET", "/feed/sse?count=2&every=3")
    resp = conn.getresponse()
    assert read_event(resp) == b"id: 0\ndata: event 0\n\n"
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    deadline = time.monotonic() + 5
    while '"error":"timeout"' not in gw.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"error":"timeout"' in gw.log()


def test_a_client_leaving_ends_the_upstream_stream(gunicorn_gateway, upstream):
    gw = gunicorn_gateway({"services": {"feed": upstream.url}}, workers=1)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET /feed/sse?count=100&every=0.2 HTTP/1.1\r\nHost: gw\r\n\r\n")
        seen = b""
        while b"data: event 0" not in seen:  # the headers and the first event may come apart
            chunk = sock.recv(4096)
            assert chunk, seen
            seen += chunk
    assert upstream.app.events_outcome.wait(timeout=3)
    assert upstream.app.events_outcome.how == "client left"
