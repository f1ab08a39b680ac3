"""A bearer token in, ``(issuer name, claims)`` out, or a :class:`TokenError`.

Rules, in order, each refusal a 401 ``invalid_token`` with a short reason:
too large; five parts (JWE); not three parts → introspection if an allowed
issuer has it; a ``crit`` header (no extension is supported); an ``iss`` that
is none of the route's issuers (refused before any fetch); an ``alg`` outside
that issuer's list or unlike its key; then PyJWT checks the signature with a
key from *that issuer's* JWKS (``jku``, ``x5u`` and ``jwk`` headers are never
followed), ``exp`` (required), ``nbf``/``iat`` with leeway, ``aud``, ``iss``.

Verified tokens are kept by their sha256 until their ``exp`` (at most
``cache_duration``), so a signature is checked once per token, not per request.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from typing import Any
from urllib.parse import quote_plus

import jwt
from cachetools import TTLCache

from ..clock import SYSTEM, Clock
from ..config.issuers import IssuerConfig
from ..errors import GatewayError
from .fetch import Fetcher, FetchError
from .keys import IssuerKeys, KeysUnavailable

#: A token larger than this is refused unread (an Authorization header of 8 kB).
MAX_TOKEN_BYTES = 8192
_CACHE_SIZE = 10_000


class TokenError(GatewayError):
    """A refusal with its RFC 6750 challenge; ``reason`` labels the metric."""

    def __init__(self, status: int, code: str, message: str, challenge: str,
                 retry_after: int | None = None):
        headers = {"WWW-Authenticate": challenge}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        super().__init__(status, code, message, headers)
        self.reason = code


def invalid(realm: str, why: str) -> TokenError:
    return TokenError(401, "invalid_token", f"the token is not valid: {why}",
                      f'Bearer realm="{realm}", error="invalid_token", error_description="{why}"')


class Verifier:
    """Every configured issuer's keys and the verified-token cache (one per app)."""

    def __init__(self, issuers: dict[str, IssuerConfig], clock: Clock = SYSTEM):
        """:param clock: when a verified token stops being served from the cache, and
            when an issuer's keys are due again."""
        self.issuers = issuers
        self.clock = clock
        self.fetcher = Fetcher()
        self.keys = {name: IssuerKeys(name, config, self.fetcher, clock=clock.monotonic)
                     for name, config in issuers.items()}
        self.by_iss = {config.issuer: name for name, config in issuers.items()}
        self.secrets = {name: os.environ.get(config.secret_env, "")
                        for name, config in issuers.items() if config.secret_env}
        self._verified: TTLCache[str, tuple[str, dict, float]] = TTLCache(
            _CACHE_SIZE, ttl=max((c.cache_duration for c in issuers.values()), default=300),
            timer=clock.monotonic)
        self._lock = threading.Lock()

    def verify(self, token: str, allowed: list[str], realm: str) -> tuple[str, dict]:
        """The issuer's name and the token's claims.

        :raises TokenError: 401 invalid, 503 when the keys or introspection cannot be had.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid(realm, "too large")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        with self._lock:
            cached = self._verified.get(digest)
        if cached is not None and cached[2] > self.clock.time() and cached[0] in allowed:
            return cached[0], cached[1]
        parts = token.split(".")
        if len(parts) == 5:
            raise invalid(realm, "encrypted tokens (JWE) are not accepted")
        if len(parts) != 3:
            name, claims, until = self.introspect(token, allowed, realm)
        else:
            name, claims, until = self.check_jwt(token, allowed, realm)
        with self._lock:
            self._verified[digest] = (name, claims, until)
        return name, claims

    def check_jwt(self, token: str, allowed: list[str], realm: str) -> tuple[str, dict, float]:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise invalid(realm, "malformed") from None
        if "crit" in header:  # no extension is supported, so none may be critical
            raise invalid(realm, "unsupported critical header")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise invalid(realm, "malformed") from None
        issuer = unverified.get("iss") if isinstance(unverified, dict) else None
        name = self.by_iss.get(issuer) if isinstance(issuer, str) else None
        if name is None or name not in allowed:
            raise invalid(realm, "unknown issuer")
        config = self.issuers[name]
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise invalid(realm, "algorithm not allowed")
        if algorithm.startswith("HS"):
            key: Any = self.secrets.get(name, "")
        else:
            try:
                jwk = self.keys[name].key(header.get("kid"))
            except KeysUnavailable as exc:
                raise unavailable(realm, str(exc), exc.retry_after) from None
            if jwk is None:
                raise invalid(realm, "unknown key")
            if jwk.algorithm_name and jwk.algorithm_name != algorithm and \
                    jwk.algorithm_name in config.algorithms:
                raise invalid(realm, "algorithm does not match the key")
            key = jwk.key
        try:
            # exp, nbf and iat are compared with the gateway's clock below, not PyJWT's own
            # (a test moves it: gateway.testing's gateway_clock)
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=config.audiences,
                                issuer=config.issuer,
                                options={"require": ["exp", "iss"], "verify_exp": False,
                                         "verify_nbf": False, "verify_iat": False})
            _check_times(claims, self.clock.time(), config.leeway, realm)
        except jwt.InvalidAudienceError:
            raise invalid(realm, "wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise invalid(realm, f"no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise invalid(realm, "bad signature") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise invalid(realm, "does not verify") from None
        until = min(float(claims["exp"]), self.clock.time() + config.cache_duration)
        return name, claims, until

    def introspect(self, token: str, allowed: list[str], realm: str) -> tuple[str, dict, float]:
        """RFC 7662 at each allowed issuer that has introspection, in order."""
        candidates = [n for n in allowed if self.issuers[n].introspection]
        if not candidates:
            raise invalid(realm, "not a JWT")
        for name in candidates:
            config = self.issuers[name]
            settings = config.introspection
            assert settings is not None
            secret = settings.client_secret or os.environ.get(settings.client_secret_env or "", "")
            credentials = f"{quote_plus(settings.client_id)}:{quote_plus(secret)}"
            basic = base64.b64encode(credentials.encode()).decode()
            try:
                endpoint = settings.endpoint or self.keys[name].discover().get(
                    "introspection_endpoint")
                if not isinstance(endpoint, str):
                    raise FetchError("the discovery document names no introspection_endpoint")
                answer = self.fetcher.json(endpoint, "POST", data={
                    "token": token, "token_type_hint": "access_token"},
                    headers={"Authorization": f"Basic {basic}", "Accept": "application/json"})
            except FetchError as exc:
                raise unavailable(realm, f"introspection at issuer {name!r} failed: {exc}", 5) \
                    from None
            if isinstance(answer, dict) and answer.get("active") is True:
                expires = answer.get("exp")
                until = self.clock.time() + config.cache_duration
                if isinstance(expires, (int, float)):
                    if expires <= self.clock.time():
                        raise invalid(realm, "expired")
                    until = min(until, float(expires))
                return name, answer, until
        raise invalid(realm, "not active")


def _check_times(claims: dict, now: float, leeway: int, realm: str) -> None:
    """``exp`` (required), ``nbf`` and ``iat`` against ``now``, with ``leeway`` seconds of
    skew either way, as PyJWT checks them against the system clock."""
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise invalid(realm, f"{name} is not a number")
    if claims["exp"] <= now - leeway:
        raise invalid(realm, "expired")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise invalid(realm, "not yet valid")
    if "iat" in claims and claims["iat"] > now + leeway:
        raise invalid(realm, "not yet valid")


def unavailable(realm: str, why: str, retry_after: int) -> TokenError:
    return TokenError(503, "identity_provider_unavailable",
                      f"the identity provider cannot be reached to check the token ({why}); "
                      "retry later", f'Bearer realm="{realm}"', retry_after)
