"""``quota: {mode: lease}``: batches of hits from the shared window, never over the limit."""

from __future__ import annotations

import json
import threading

import redis
import requests

from tests.conftest import raw_request

KEY = "lease-key"


def lease_config(storage: str, limit: str, **service) -> dict:
    return {"storage": storage, "quota": {"mode": "lease"},
            "consumers": {"web": {"keys": [KEY]}},
            "services": {"users": {"upstream": service.pop("upstream"), "rate_limit": limit,
                                   **service}}}


class RoundTrips:
    """Counts what a Redis server reads: round trips (a script is one, whatever it runs).

    ``since()`` is the count since the last call, less its own INFO.
    """

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self.last = self.read()

    def read(self) -> int:
        return int(self.client.info("stats")["total_reads_processed"])

    def since(self) -> int:
        now = self.read()
        counted, self.last = now - self.last - 1, now
        return counted


def test_a_spent_window_is_answered_locally_with_429_and_honest_headers(make_gateway, upstream,
                                                                         private_redis):
    gw = make_gateway(lease_config(private_redis.url, "20/minute", upstream=upstream.url))
    answers = [raw_request(gw.port, "GET", f"/users/{i}") for i in range(20)]
    assert [a.status for a in answers] == [200] * 20
    remaining = [int(a.header("RateLimit-Remaining")) for a in answers]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
    trips = RoundTrips(private_redis.url)
    refused = [raw_request(gw.port, "GET", "/users/x") for _ in range(10)]
    assert {r.status for r in refused} == {429}
    assert json.loads(refused[0].body)["error"] == "rate_limited"
    assert all(r.header("RateLimit-Remaining") == "0" for r in refused)
    assert 1 <= int(refused[0].header("Retry-After")) <= 60
    # the first 429 asked Redis once; the rest were answered from what the worker knew
    assert trips.since() == 1


def test_steady_load_below_a_tenth_of_the_limit_costs_a_trip_per_ten_requests(
        make_gateway, upstream, private_redis):
    gw = make_gateway(lease_config(private_redis.url, "1000/minute", upstream=upstream.url))
    for i in range(5):  # the worker's connection and the script are set up once
        assert raw_request(gw.port, "GET", f"/users/{i}").status == 200
    trips = RoundTrips(private_redis.url)
    for i in range(90):
        assert raw_request(gw.port, "GET", f"/users/{i}").status == 200
    assert trips.since() <= 9


def test_two_gateways_of_two_workers_never_admit_more_than_the_limit(gunicorn_gateway, upstream,
                                                                     private_redis):
    """Two gunicorn masters × two workers on one Redis, 1000 per minute, 1500 requests
    as fast as they come: 950 to 1000 admitted, and under 0.3 Redis round trips each."""
    config = lease_config(private_redis.url, "1000/minute", upstream=upstream.url)
    gateways = [gunicorn_gateway(config, workers=2) for _ in range(2)]
    sessions = threading.local()
    statuses: list[int] = []
    lock = threading.Lock()

    def send(count: int, url: str) -> None:
        session = sessions.__dict__.setdefault("s", requests.Session())
        for _ in range(count):
            status = session.get(url, timeout=30).status_code
            with lock:
                statuses.append(status)
    trips = RoundTrips(private_redis.url)
    clients = [threading.Thread(target=send, args=(50, f"{gateways[i % 2].url}/users/1"))
               for i in range(30)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=120)
    counted = trips.since()
    admitted = statuses.count(200)
    assert len(statuses) == 1500 and set(statuses) <= {200, 429}
    assert 950 <= admitted <= 1000, admitted
    assert counted < 0.3 * 1500, counted
