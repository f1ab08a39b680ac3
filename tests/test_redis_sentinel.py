"""``storage: redis+sentinel://…``: a real master, replica and sentinel; the master dies
under load and the gateway goes on, failing open, then counting exactly again."""

from __future__ import annotations

import threading
import time

import requests

from gateway.config import hash_key


def sentinel_config(storage: str, upstream: str) -> dict:
    return {"storage": storage,
            "consumers": {f"c{i}": {"keys": [hash_key(f"key-{i}")]} for i in range(40)},
            "services": {
                "users": {"upstream": upstream, "rate_limit": "100000/minute",
                          "cache": {"ttl": 30}},
                "limited": {"upstream": upstream, "auth": "api_key", "rate_limit": "3/minute"}}}


def counts_exactly(url: str, key: str) -> bool:
    """Five requests of one consumer on a 3-a-minute route: three admitted, two refused."""
    statuses = [requests.get(f"{url}/limited/x", headers={"X-API-Key": key}, timeout=10)
                .status_code for _ in range(5)]
    return statuses == [200, 200, 200, 429, 429]


def test_the_master_dies_under_load_and_nothing_fails(redis_sentinel, upstream,
                                                      gunicorn_gateway):
    # (fixtures in this order: the gateway stops before the Redis servers do, not after,
    # when its workers' last writes would wait on a Sentinel that is gone)
    gw = gunicorn_gateway(sentinel_config(redis_sentinel.url, upstream.url), workers=2)
    assert counts_exactly(gw.url, "key-0")
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    statuses.append(session.get(f"{gw.url}/users/1", timeout=10).status_code)
                except requests.RequestException as exc:
                    failures.append(repr(exc))
    clients = [threading.Thread(target=load) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(0.5)
    redis_sentinel.kill_master()
    deadline = time.monotonic() + 30
    while redis_sentinel.master() != redis_sentinel.replica_port and time.monotonic() < deadline:
        time.sleep(0.2)
    assert redis_sentinel.master() == redis_sentinel.replica_port, "no failover in 30 s"
    promoted = time.monotonic()
    # within 10 s of the promotion, quotas count exactly again (a new consumer each try)
    exact = False
    for attempt in range(1, 40):
        if counts_exactly(gw.url, f"key-{attempt}"):
            exact = True
            break
        if time.monotonic() - promoted > 10:
            break
        time.sleep(0.25)
    stop.set()
    for client in clients:
        client.join(timeout=30)
    assert exact, "quotas did not count exactly within 10 s of the promotion"
    assert failures == [], failures[:3]
    assert statuses and all(status < 500 for status in statuses), sorted(set(statuses))
