"""``mirror``: copies of sampled requests to another upstream; the client never waits."""

from __future__ import annotations

import json
import threading
import time

import requests

from tests.conftest import dead_port


class Recorder:
    """A mirror upstream that records each copy; ``delay`` seconds before answering."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.copies: list[dict] = []
        self.answered = threading.Event()
        self.received = threading.Condition()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        copy = {"method": environ["REQUEST_METHOD"],
                "target": environ.get("RAW_URI") or environ.get("REQUEST_URI"),
                "headers": {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                            if k.startswith("HTTP_")},
                "body": environ["wsgi.input"].read(length) if length else b""}
        with self.received:
            self.copies.append(copy)
            self.received.notify_all()
        time.sleep(self.delay)
        self.answered.set()
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"the mirror's answer, which nobody reads"]

    def wait_for(self, count: int, timeout: float = 5) -> bool:
        with self.received:
            return self.received.wait_for(lambda: len(self.copies) >= count, timeout=timeout)


def mirrored(upstream, mirror_url: str, **settings) -> dict:
    return {"services": {"orders": {"upstream": upstream.url, "strip_prefix": True,
                                    "mirror": {"upstream": mirror_url, **settings}}}}


def test_every_copy_arrives_as_the_primary_got_it(gunicorn_gateway, upstream, serve):
    recorder = Recorder()
    mirror = serve(recorder)
    gw = gunicorn_gateway(mirrored(upstream, mirror.url), workers=2)
    sent = []
    with requests.Session() as client:
        for n in range(6):
            answer = client.post(f"{gw.url}/orders/items?n={n}", data=f"body {n}".encode(),
                                 headers={"X-Tenant": "acme"}, timeout=10)
            assert answer.status_code == 200
            sent.append(answer.json())
        chunked = client.post(f"{gw.url}/orders/items?n=chunked", timeout=10,
                              data=iter([b"in ", b"pieces"]))
        assert chunked.status_code == 200
    assert recorder.wait_for(7)
    by_target = {c["target"]: c for c in recorder.copies}
    for n, primary in enumerate(sent):
        copy = by_target[f"/items?n={n}"]  # after strip_prefix, as the primary got it
        assert copy["method"] == "POST" and copy["body"] == f"body {n}".encode()
        assert copy["headers"]["x-gateway-mirror"] == "1"
        assert copy["headers"]["x-tenant"] == "acme"
        assert copy["headers"]["x-request-id"] == primary["headers"]["x-request-id"]
        assert "x-gateway-mirror" not in primary["headers"]
    assert by_target["/items?n=chunked"]["body"] == b"in pieces"


def test_a_slow_or_dead_mirror_changes_nothing_for_the_client(make_gateway, upstream, serve):
    recorder = Recorder(delay=3)
    mirror = serve(recorder)
    for url in (mirror.url, f"http://127.0.0.1:{dead_port()}"):
        gw = make_gateway(mirrored(upstream, url, timeout=5))
        answer = requests.get(f"{gw.url}/orders/users/1", timeout=10)
        assert answer.status_code == 200 and answer.json()["upstream"] == "one"
        # the client has its whole answer while the mirror is still thinking
        assert not recorder.answered.is_set()
    assert recorder.wait_for(1)


def metric(gw, result: str) -> float:
    text = gw.client.get("/metrics").get_data(as_text=True)
    sample = f'gateway_mirror_requests_total{{result="{result}",service="orders"}} '
    return next((float(line.split()[-1]) for line in text.splitlines()
                 if line.startswith(sample)), 0.0)


def test_large_bodies_and_a_full_worker_are_counted_not_sent(make_gateway, upstream, serve):
    recorder = Recorder(delay=1)
    mirror = serve(recorder)
    gw = make_gateway(mirrored(upstream, mirror.url, max_body_bytes=10, max_in_flight=1))
    before = {r: metric(gw, r) for r in ("too_large", "dropped", "sent")}
    assert requests.post(f"{gw.url}/orders/x", data=b"y" * 11, timeout=10).status_code == 200
    assert metric(gw, "too_large") == before["too_large"] + 1
    for _ in range(3):  # the first copy holds the one slot for a second: two are dropped
        assert requests.get(f"{gw.url}/orders/x", timeout=10).status_code == 200
    assert metric(gw, "dropped") == before["dropped"] + 2
    assert recorder.wait_for(1)
    deadline = time.monotonic() + 5
    while metric(gw, "sent") < before["sent"] + 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [c["body"] for c in recorder.copies] == [b""]  # never the 11-byte body


def test_percent_samples_requests(make_gateway, upstream, serve):
    recorder = Recorder()
    mirror = serve(recorder)
    gw = make_gateway(mirrored(upstream, mirror.url, percent=0))
    for _ in range(20):
        assert requests.get(f"{gw.url}/orders/x", timeout=10).status_code == 200
    time.sleep(0.3)
    assert recorder.copies == []
    assert json.loads(gw.client.get("/orders/x").data)["upstream"] == "one"
