"""The per-route policies: the keys a service and a hand-written blueprint share.

Each policy is off unless configured. A policy with settings of its own is a
small section here (cache, cors, circuit_breaker); a new policy adds its
section and one field to :class:`RoutePolicies`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .types import Auth, Network, Origin, RateLimit, Seconds, Section, fail

DEFAULT_CACHE_STATUSES = (200, 203, 204, 300, 301, 404, 410)
DEFAULT_CACHE_MAX_BODY = 1024 * 1024


class CacheConfig(Section):
    """``cache: {ttl: 30}``: GET and HEAD answers kept for ``ttl`` seconds."""

    ttl: Seconds = Field(description="how many seconds an answer may be served from cache")
    statuses: frozenset[int] = Field(
        frozenset(DEFAULT_CACHE_STATUSES), description="the status codes that may be stored",
        json_schema_extra={"items": {"type": "integer", "minimum": 100, "maximum": 599}})
    #: answers with a larger body are streamed through but not stored
    max_body_bytes: int = Field(DEFAULT_CACHE_MAX_BODY, ge=0,
                                description="larger answers are passed through, not stored")

    @field_validator("statuses", mode="plain")
    @classmethod
    def _statuses(cls, value):
        if not isinstance(value, (list, frozenset)) or not all(
                isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in value):
            raise fail("expected a list of HTTP status codes")
        return frozenset(value)


class BreakerConfig(Section):
    """``circuit_breaker: {failures: 5, reset_after: 30}``, per upstream target."""

    failures: int = Field(5, ge=1, description="consecutive failures that open the circuit")
    reset_after: Seconds = Field(30.0, description="seconds before one probe is let through")


class CorsConfig(Section):
    """``cors: {origins: [...]}``: preflights answered by the gateway."""

    origins: list[Origin] = Field(description="allowed origins, e.g. ['https://app.example.com'], "
                                              "or ['*']")
    methods: list[str] | None = Field(None, description="default: the route's methods")
    headers: list[str] | None = Field(None, description="default: whatever the preflight asks for")
    expose_headers: list[str] = Field([], description="answer headers browser scripts may read "
                                      "(Access-Control-Expose-Headers)")
    credentials: bool = Field(False, description="let browsers send cookies and credentials "
                              "(Access-Control-Allow-Credentials); not with origins ['*']")
    max_age: int = Field(600, ge=0, description="seconds a browser may keep a preflight's answer")

    @field_validator("origins")
    @classmethod
    def _at_least_one(cls, origins: list[str]) -> list[str]:
        if not origins:
            raise fail("expected at least one origin, e.g. ['https://app.example.com'] (or ['*'])")
        return origins

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: list[str] | None) -> list[str] | None:
        return [m.upper() for m in methods] if methods else None

    @model_validator(mode="after")
    def _credentials_need_origins(self) -> CorsConfig:
        if self.credentials and "*" in self.origins:
            raise fail("credentials: browsers refuse credentials with origin '*': "
                       "list the origins instead")
        return self


#: Headers the gateway writes itself: a claim may not be copied into them.
OWNED_HEADERS = ("host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                 "x-forwarded-port", "x-forwarded-prefix", "x-request-id", "x-consumer",
                 "authorization", "x-api-key", "content-length", "transfer-encoding",
                 "connection", "traceparent", "tracestate")


class RoutePolicies(Section):
    """The policy keys of one route (a service, or a hand-written blueprint)."""

    auth: Auth | list[Literal["api_key", "jwt"]] = Field(
        "none", description="api_key (X-API-Key), jwt (Authorization: Bearer), or a list of "
                            "them, any one of which admits")
    issuers: list[str] | None = Field(None, description="for auth: jwt, the issuers accepted "
                                      "(default: every configured one)")
    scopes: list[str] | dict[str, list[str]] = Field(
        [], description="scopes a token must all have, or by method: {GET: [...], '*': [...]}")
    claims_to_headers: dict[str, str] = Field(
        {}, description="headers sent upstream from token claims (dotted paths), "
                        "e.g. {X-User-Id: sub}")
    forward_token: bool = Field(False, description="send the verified Authorization header "
                                                   "upstream")
    rate_limit: RateLimit | None = Field(
        None, description="per consumer (per client address without auth), e.g. '100/minute'")
    cache: CacheConfig | None = None
    cors: CorsConfig | None = None
    allow_ips: list[Network] = Field([], description="only these client addresses or networks "
                                     "(CIDR) get through; empty: everyone")
    deny_ips: list[Network] = Field([], description="these addresses or networks get 403, even "
                                    "when allow_ips lists them")
    max_body_bytes: int | None = Field(None, ge=0, description="larger bodies get 413")

    @field_validator("auth", mode="plain")
    @classmethod
    def _auth(cls, auth):
        if auth in ("none", "api_key", "jwt"):
            return auth
        if isinstance(auth, list) and auth and all(a in ("api_key", "jwt") for a in auth):
            return list(dict.fromkeys(auth))
        raise fail(f"{auth!r} is not one of none, api_key, jwt, or a list of api_key and jwt "
                   "(any one of which admits), e.g. [api_key, jwt]")

    @field_validator("claims_to_headers")
    @classmethod
    def _not_owned(cls, claims: dict[str, str]) -> dict[str, str]:
        for header, claim in claims.items():
            if header.lower() in OWNED_HEADERS:
                raise fail(f"{header!r} is a header the gateway writes itself; "
                           "choose another name, e.g. X-User-Id")
            if not header.replace("-", "").isalnum() or not claim:
                raise fail(f"{header}: {claim!r} is not a header name and a claim path "
                           "(e.g. X-User-Id: sub)")
        return claims

    @property
    def auth_methods(self) -> frozenset[str]:
        """``{"api_key"}``, ``{"jwt"}``, both, or empty for ``auth: none``."""
        if isinstance(self.auth, list):
            return frozenset(self.auth)
        return frozenset() if self.auth == "none" else frozenset({self.auth})

    def scopes_for(self, method: str) -> list[str]:
        """The scopes a token needs for ``method``."""
        if isinstance(self.scopes, list):
            return self.scopes
        return self.scopes.get(method, self.scopes.get("*", []))

    def describe(self) -> str:
        """A one-line summary of the policies, for ``gateway check``."""
        parts: list[str] = []
        if self.auth_methods:
            parts.append("/".join(sorted(self.auth_methods)))
        if self.rate_limit:
            parts.append(f"quota {self.rate_limit}")
        if self.cache:
            parts.append(f"cache {self.cache.ttl:g}s")
        if self.cors:
            parts.append("cors")
        if self.allow_ips or self.deny_ips:
            parts.append("ip rules")
        if self.max_body_bytes is not None:
            parts.append(f"body<={self.max_body_bytes}")
        return ", ".join(parts)

    def keeps_state(self) -> bool:
        """Quotas, caches and breakers keep state that workers may need to share."""
        return bool(self.rate_limit or self.cache)
