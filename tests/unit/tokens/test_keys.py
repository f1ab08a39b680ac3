"""An issuer's keys: single flight, waiting for a fetch in flight, fetch policy (no network:
a fetcher that answers what the test says, when the test says)."""

from __future__ import annotations

import json
import threading

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.config.issuers import IssuerConfig
from gateway.tokens.fetch import FetchError
from gateway.tokens.keys import IssuerKeys, KeysUnavailable

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(KEY.public_key())),
                  "kid": "k1", "use": "sig", "alg": "RS256"}]}


class SlowFetcher:
    """Answers the JWKS once ``release`` is set; counts the fetches."""

    def __init__(self, fail: bool = False):
        self.release = threading.Event()
        self.started = threading.Event()
        self.fetches = 0
        self.fail = fail

    def json(self, url: str, method: str = "GET", **kwargs):
        self.fetches += 1
        self.started.set()
        self.release.wait(5)
        if self.fail:
            raise FetchError(f"{url} answered 503")
        return JWKS


def keys(fetcher, **config) -> IssuerKeys:
    issuer = IssuerConfig.model_validate({"issuer": "https://idp.example", "audiences": ["a"],
                                          "jwks_uri": "https://idp.example/certs", **config})
    return IssuerKeys("corp", issuer, fetcher)


def ask_from_threads(issuer_keys: IssuerKeys, fetcher: SlowFetcher, count: int) -> list:
    """``count`` requests for key k1 while the first fetch is in flight."""
    results: list = []

    def ask():
        try:
            results.append(issuer_keys.key("k1"))
        except KeysUnavailable as exc:
            results.append(exc)
    first = threading.Thread(target=ask)
    first.start()
    assert fetcher.started.wait(5)
    others = [threading.Thread(target=ask) for _ in range(count - 1)]
    for thread in others:
        thread.start()
    fetcher.release.set()
    for thread in [first, *others]:
        thread.join(5)
    return results


def test_requests_arriving_during_the_first_fetch_wait_for_it():
    fetcher = SlowFetcher()
    results = ask_from_threads(keys(fetcher), fetcher, 20)
    assert all(r is not None and not isinstance(r, Exception) for r in results), results
    assert fetcher.fetches == 1


def test_only_a_fetch_that_fails_gives_keys_unavailable():
    fetcher = SlowFetcher(fail=True)
    results = ask_from_threads(keys(fetcher), fetcher, 10)
    assert all(isinstance(r, KeysUnavailable) for r in results)
    assert fetcher.fetches == 1       # the waiters use its outcome, they do not ask again


def test_an_unknown_kid_asks_again_at_most_once_per_interval():
    fetcher = SlowFetcher()
    fetcher.release.set()
    issuer_keys = keys(fetcher, min_refetch_interval=30)
    assert issuer_keys.key("k1") is not None
    for _ in range(5):
        assert issuer_keys.key("rotated-in") is None
    assert fetcher.fetches == 1


def test_a_token_without_kid_uses_the_only_key():
    fetcher = SlowFetcher()
    fetcher.release.set()
    assert keys(fetcher).key(None) is not None


# -- when to ask again, on a moved clock ---------------------------------------------------

class SwitchedFetcher:
    """Answers the JWKS, or fails while ``down``; counts the fetches."""

    def __init__(self, down: bool = False):
        self.down, self.fetches = down, 0

    def json(self, url: str, method: str = "GET", **kwargs):
        self.fetches += 1
        if self.down:
            raise FetchError(f"{url}: the identity provider refused the connection")
        return JWKS


def moved(fetcher, clock, **config) -> IssuerKeys:
    issuer = IssuerConfig.model_validate({"issuer": "https://idp.example", "audiences": ["a"],
                                          "jwks_uri": "https://idp.example/certs", **config})
    return IssuerKeys("corp", issuer, fetcher, clock=clock)


def test_an_idp_down_at_start_is_asked_again_after_min_refetch_interval():
    from gateway.testing import MovedClock
    clock, fetcher = MovedClock(), SwitchedFetcher(down=True)
    issuer_keys = moved(fetcher, clock, min_refetch_interval=1)
    try:
        issuer_keys.key("k1")
        raise AssertionError("no keys yet: KeysUnavailable")
    except KeysUnavailable as exc:
        assert exc.retry_after == 1
    fetcher.down = False
    clock.advance(0.5)  # within the interval: not asked again
    try:
        issuer_keys.key("k1")
    except KeysUnavailable:
        pass
    assert fetcher.fetches == 1
    clock.advance(0.6)
    assert issuer_keys.key("k1") is not None and fetcher.fetches == 2


def test_stale_keys_serve_while_the_refresh_fails(caplog):
    from gateway.testing import MovedClock
    clock, fetcher = MovedClock(), SwitchedFetcher()
    issuer_keys = moved(fetcher, clock, cache_duration=1, min_refetch_interval=0)
    assert issuer_keys.key("k1") is not None
    fetcher.down = True
    clock.advance(1.5)  # stale: refreshed on the next need, which fails
    assert issuer_keys.key("k1") is not None and fetcher.fetches == 2
    assert "refreshing the keys failed" in caplog.text
