"""A real upstream for the tests: an HTTP server on loopback that reports what it got.

It is a bare WSGI app so that the tests control every byte of the answer:
``/echo`` (any method) answers with what arrived, the raw request target,
headers and a digest of the body; the other paths produce the awkward answers
a proxy must pass through (streams, repeated headers, reason phrases...).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from urllib.parse import parse_qs

from werkzeug.serving import make_server

from gateway.testing.fakes import LoopbackServer

#: Between the first chunk of /stream and the rest, the upstream waits on this
#: gate, which the test opens once it has read that first chunk.
CHUNK = 64 * 1024


class UpstreamApp:
    def __init__(self, name: str = "upstream"):
        self.name = name
        self.gate = threading.Event()
        self.finished = threading.Event()
        self.hits = 0
        #: health-check probes received (User-Agent: gateway-health-check)
        self.probes = 0
        #: what /healthz answers (a target can fail its health check yet accept connections)
        self.health_status = 200
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def __call__(self, environ, start_response):
        if environ.get("HTTP_USER_AGENT") == "gateway-health-check":
            self.probes += 1  # the gateway's health checks are not clients' requests
        else:
            self.hits += 1
        path = environ["PATH_INFO"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        # the first path segment naming an answer picks it, so /users/cookies
        # and /cookies both work, with or without strip_prefix
        for segment in path.split("/"):
            handler = getattr(self, "do_" + segment, None)
            if handler is not None:
                return handler(environ, start_response, query)
        return self.do_echo(environ, start_response, query)

    # -- answers -------------------------------------------------------------------

    def do_echo(self, environ, start_response, query):
        stream = environ["wsgi.input"]
        digest, length = hashlib.sha256(), 0
        declared = environ.get("CONTENT_LENGTH")
        if declared not in (None, "", "0") or (not declared and environ.get("wsgi.input_terminated")):
            remaining = int(declared) if declared else None
            while True:
                chunk = stream.read(min(CHUNK, remaining) if remaining else CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                length += len(chunk)
                if remaining:
                    remaining -= len(chunk)
                    if remaining == 0:
                        break
        headers = [(k[5:].replace("_", "-").lower(), v) for k, v in environ.items()
                   if k.startswith("HTTP_")]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").lower(), environ[key]))
        body = json.dumps({
            "upstream": self.name,
            "method": environ["REQUEST_METHOD"],
            "raw_uri": environ.get("RAW_URI") or environ.get("REQUEST_URI"),
            "path": environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace"),
            "headers": dict(headers),
            "body_length": length,
            "body_sha256": digest.hexdigest(),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def do_status(self, environ, start_response, query):
        code = environ["PATH_INFO"].rsplit("/", 1)[-1]
        reason = query.get("reason", ["Whatever"])[0]
        body = b"" if code in ("204", "304") else f"status {code}".encode()
        headers = [("Content-Length", str(len(body)))] if body else []
        if code.startswith("3"):
            headers.append(("Location", "/elsewhere"))
        start_response(f"{code} {reason}", headers)
        return [body]

    def do_healthz(self, environ, start_response, query):
        body = f"health {self.health_status}".encode()
        start_response(f"{self.health_status} Health", [("Content-Length", str(len(body)))])
        return [body]

    def do_cookies(self, environ, start_response, query):
        start_response("200 OK", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly"),
                                  ("X-Multi", "one"), ("X-Multi", "two"),
                                  ("Content-Length", "2")])
        return [b"ok"]

    def do_hop(self, environ, start_response, query):
        start_response("200 OK", [("Connection", "X-Private-Hop"), ("X-Private-Hop", "secret"),
                                  ("Keep-Alive", "timeout=5"), ("X-End-To-End", "kept"),
                                  ("Content-Length", "2")])
        return [b"ok"]

    def do_gzip(self, environ, start_response, query):
        body = gzip.compress(b"hello compressed world" * 100)
        start_response("200 OK", [("Content-Encoding", "gzip"), ("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def do_stream(self, environ, start_response, query):
        """Two JSON lines, the second only once the test has opened the gate."""
        start_response("200 OK", [("Content-Type", "application/x-ndjson")])

        def lines():
            yield b'{"line": 1}\n'
            self.gate.wait(timeout=10)
            yield b'{"line": 2}\n'
            self.finished.set()
        return lines()

    def do_sse(self, environ, start_response, query):
        """Server-sent events: ``count`` of them, one every ``every`` seconds; how the
        stream ended (``complete``, or ``client left``) goes in ``events_outcome``."""
        count = int(query.get("count", ["3"])[0])
        every = float(query.get("every", ["0.2"])[0])
        start_response("200 OK", [("Content-Type", "text/event-stream"),
                                  ("Cache-Control", "max-age=60")])
        self.events_outcome = threading.Event()
        self.events_outcome.how = None  # type: ignore[attr-defined]

        def events():
            how = "client left"
            try:
                for n in range(count):
                    if n:
                        time.sleep(every)
                    yield f"id: {n}\ndata: event {n}\n\n".encode()
                how = "complete"
            finally:
                self.events_outcome.how = how  # type: ignore[attr-defined]
                self.events_outcome.set()
        return events()

    def do_bytes(self, environ, start_response, query):
        size = int(query.get("size", ["0"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        block = b"x" * CHUNK

        def body():
            left = size
            while left:
                n = min(left, CHUNK)
                yield block[:n]
                left -= n
        return body()

    def do_sleep(self, environ, start_response, query):
        time.sleep(float(query.get("s", ["1"])[0]))
        start_response("200 OK", [("Content-Length", "5")])
        return [b"slept"]

    def do_hold(self, environ, start_response, query):
        """Stays open until the test opens the gate; counts how many are held at once."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.gate.wait(timeout=20)
        with self.lock:
            self.in_flight -= 1
        start_response("200 OK", [("Content-Length", "4")])
        return [b"held"]

    def do_truncated(self, environ, start_response, query):
        """Promises 100000 bytes, sends 10, then the connection drops (a crashed backend)."""
        start_response("200 OK", [("Content-Length", "100000")])

        def body():
            yield b"0123456789"
            raise ConnectionAbortedError("backend crashed mid-body")
        return body()

    def do_redirect(self, environ, start_response, query):
        start_response("302 Found", [("Location", "http://example.invalid/next"),
                                     ("Content-Length", "0")])
        return [b""]


#: A WSGI app served over real HTTP on 127.0.0.1: the plugin's (gateway.testing), one copy
ServerThread = LoopbackServer


def main() -> None:
    """``python -m tests.upstream PORT [NAME]``: serve the upstream in its own process."""
    import sys
    port = int(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "upstream"
    server = make_server("127.0.0.1", port, UpstreamApp(name), threaded=True)
    server.serve_forever(0.05)


if __name__ == "__main__":
    main()


class CacheUpstream(UpstreamApp):
    """Answers that say how they may be cached; each carries a serial number."""

    def __call__(self, environ, start_response):
        if environ.get("HTTP_USER_AGENT") == "gateway-health-check":
            self.probes += 1  # the gateway's health checks are not clients' requests
        else:
            self.hits += 1
        query = parse_qs(environ.get("QUERY_STRING", ""))
        headers = [("Content-Type", "text/plain"), ("X-Serial", str(self.hits))]
        for value in query.get("cc", []):
            headers.append(("Cache-Control", value))
        for value in query.get("vary", []):
            headers.append(("Vary", value))
        if "cookie" in query:
            headers.append(("Set-Cookie", "s=1"))
        status = query.get("status", ["200"])[0]
        size = int(query.get("size", ["0"])[0])
        body = (b"x" * size) if size else f"serial {self.hits} {environ.get('HTTP_ACCEPT_LANGUAGE', '')}".encode()
        if "chunked" in query:  # no Content-Length: a streamed body
            start_response(f"{status} Whatever", headers)
            return [body[i:i + 1000] for i in range(0, len(body), 1000)]
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} Whatever", headers)
        return [body]
