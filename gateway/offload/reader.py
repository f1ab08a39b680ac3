"""The offload log reader: nginx's lines become the gateway's log, metrics, usage and spans.

A process of its own (``python -m gateway.offload.reader --fd N``), started by
gunicorn's master on the log socket it bound (gateway/serve/logsocket.py), so that
no request a worker handles ever delays a line and no line a worker's request. For
each of nginx's lines (gateway/offload/logs.py) it writes the access-log line on
stdout, counts the request in the Prometheus metrics (multiprocess mode: ``/metrics``
on any worker adds them in), hands the entry to a usage recorder of its own (flushed
as a worker's is) and ends the request's server span, which the decision began, with
the ids the decision chose. Workers' heartbeats feed the count of lines lost.

TERM or INT: what is already queued on the socket is read, the usage flushed, the
spans exported, and the process ends (a reload starts the next reader first: the
socket and its queue are the master's, so no line falls between the two).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from ..config import GatewayConfig, load_config
from ..config.types import is_redis
from ..policies.allowance import ServiceCounts
from ..storage import open_storage, redis_connection
from ..telemetry import accesslog, metrics
from ..telemetry.tracing import Tracing
from ..telemetry.usagerecords import usage_recorder
from .logs import DEFAULT_LOST_AFTER, LostLines, NotALine, decision, entry, parse

log = logging.getLogger("gateway.offload")

#: bytes of one datagram at most (nginx's lines are far smaller)
DATAGRAM = 65536


class GivenIds(IdGenerator):
    """The ids of the next span: those the decision chose, else random ones."""

    def __init__(self) -> None:
        self.random = RandomIdGenerator()
        self.trace_id: int | None = None
        self.span_id: int | None = None

    def generate_trace_id(self) -> int:
        return self.trace_id if self.trace_id is not None else self.random.generate_trace_id()

    def generate_span_id(self) -> int:
        return self.span_id if self.span_id is not None else self.random.generate_span_id()


class LogReader:
    """What each datagram becomes; no socket of its own (:func:`serve` reads them)."""

    def __init__(self, config: GatewayConfig, sink: Callable[[str], None] = accesslog.write_stdout,
                 lost_after: float = DEFAULT_LOST_AFTER, clock: Callable[[], float] = time.time):
        self.sink = sink
        self.clock = clock
        self.encode = accesslog.encoder(accesslog.chosen_format(config))
        self.usage = None
        if config.usage.enabled:
            storage = open_storage(config.storage) if is_redis(config.storage) else None
            engine = None
            if config.database is not None:
                from ..db.checks import operator_path
                from ..db.engine import open_engine

                engine = open_engine(config.database, operator_path(config))
            self.usage = usage_recorder(config, ServiceCounts(redis_connection(storage)).write,
                                        engine)
        self.ids = GivenIds()
        self.tracing = Tracing(config.tracing, id_generator=self.ids) \
            if config.tracing is not None else None
        self.lost = LostLines(lost_after)
        self.unreadable = 0

    def handle(self, datagram: bytes) -> None:
        try:
            line = parse(datagram)
        except NotALine as error:
            self.unreadable += 1
            if self.unreadable == 1:  # once: a flood of them must not flood the log
                log.warning("a datagram on the log socket is not nginx's line (%s): is "
                            "nginx's log_format the one `gateway nginx` wrote?", error)
            return
        now = self.clock()
        heartbeat = line.get("decided")
        if heartbeat is not None:
            try:
                pid, last = int(heartbeat[0]), int(heartbeat[1])
            except (TypeError, ValueError, IndexError):
                return
            self.lost.decided(pid, last, now)
            return
        told = decision(line)
        made = entry(line, told)
        self.sink(self.encode(made))
        metrics.offloaded_request(made)
        if self.usage is not None:
            self.usage.record(made)
        if self.tracing is not None and told.get("span"):
            self.end_span(made, told["span"], line)
        if told.get("seq"):
            self.lost.logged(told["seq"], now)

    def end_span(self, made: dict, span: list, line: dict) -> None:
        """The request's server span, begun by the decision, ended as nginx saw it end."""
        assert self.tracing is not None
        try:
            trace_id, span_id = int(span[0], 16), int(span[1], 16)
            parent_id = int(span[2], 16) if span[2] else None
            started, sampled = int(span[3]), bool(span[4])
            ended = int(float(line.get("msec") or 0) * 1e9)
        except (TypeError, ValueError, IndexError):
            return
        context = None
        if parent_id is not None:
            context = set_span_in_context(NonRecordingSpan(SpanContext(
                trace_id, parent_id, is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0))))
        self.ids.trace_id, self.ids.span_id = trace_id, span_id
        try:
            made_span = self.tracing.tracer.start_span(
                f"{made['method']} {made['service']}", context=context, kind=SpanKind.SERVER,
                start_time=started, attributes={
                    "http.request.method": made["method"] or "", "url.path": made["path"],
                    "gateway.request_id": made["request_id"] or "",
                    "client.address": made["client_ip"] or "",
                    "http.response.status_code": made["status"],
                    "gateway.service": made["service"] or "", "gateway.offloaded": True})
        finally:
            self.ids.trace_id = self.ids.span_id = None
        if made.get("consumer"):
            made_span.set_attribute("gateway.consumer", made["consumer"])
        if made.get("key_id"):
            made_span.set_attribute("gateway.key_id", made["key_id"])
        if made["status"] >= 500:
            made_span.set_status(Status(StatusCode.ERROR))
        made_span.end(end_time=max(ended, started))

    def tick(self) -> None:
        """Count the lines now known lost (every half second)."""
        lost = self.lost.expired(self.clock())
        if lost:
            metrics.offload_lines_lost(lost)
            log.warning("%d offloaded request(s) decided but never logged: nginx could not "
                        "send their lines (raise net.unix.max_dgram_qlen: the deployment "
                        "guide)", lost)

    def close(self) -> None:
        if self.usage is not None:
            self.usage.stop()
        if self.tracing is not None:
            self.tracing.shutdown()


def serve(reader: LogReader, channel: socket.socket, stopping: threading.Event,
          wake: int | None = None) -> None:
    """Read datagrams until ``stopping``, then what is still queued.

    :param wake: a descriptor that becomes readable when a signal arrives (the wait for
        the next datagram ends at once)."""
    channel.setblocking(False)
    waiting_on = [channel.fileno()] if wake is None else [channel.fileno(), wake]
    ticked = time.monotonic()
    while True:
        stop = stopping.is_set()
        if not stop:
            select.select(waiting_on, [], [], 0.5)
        while True:  # everything queued, then wait again
            try:
                datagram = channel.recv(DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            try:
                reader.handle(datagram)
            except Exception:  # one bad line must not end the reader
                log.exception("an offload log line could not be handled")
        if time.monotonic() - ticked >= 0.5:
            ticked = time.monotonic()
            reader.tick()
        if stop:
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.offload.reader")
    parser.add_argument("--fd", type=int, required=True, help="the bound log socket")
    parser.add_argument("--ready-fd", type=int, help="written to once the reader reads")
    options = parser.parse_args(argv)
    logging.basicConfig(format="[gateway offload log reader] %(levelname)s %(message)s",
                        level=os.environ.get("GATEWAY_LOG_LEVEL", "info").upper())
    config = load_config(os.environ.get("GATEWAY_CONFIG"))
    lost_after = float(os.environ.get("GATEWAY_OFFLOAD_LOST_AFTER") or DEFAULT_LOST_AFTER)
    reader = LogReader(config, lost_after=lost_after)
    stopping = threading.Event()
    # (a reader the master's keeper thread starts again inherits that thread's mask, which
    # blocks every signal: a TERM would wait in it for ever)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stopping.set())
    wake, woken = os.pipe()  # a stop signal ends the wait for the next datagram at once
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken)
    channel = socket.socket(fileno=options.fd)
    if options.ready_fd is not None:
        os.write(options.ready_fd, b"ready\n")
        os.close(options.ready_fd)
    try:
        serve(reader, channel, stopping, wake)
    finally:
        reader.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
