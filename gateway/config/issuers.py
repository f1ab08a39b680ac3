"""``issuers:``: the identity providers whose tokens (JWT, or opaque ones to
introspect) services may accept with ``auth: jwt``.

One block per provider, by name. Validation refuses what would make tokens
forgeable or unverifiable: no ``issuer``, no audiences, the ``none``
algorithm, HS* without a shared secret (and a secret mixed with public-key
algorithms). Fetching keys and verifying tokens is gateway/tokens/.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .types import Section, TargetUrl, fail

PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512", "EdDSA")
SHARED_SECRET_ALGORITHMS = ("HS256", "HS384", "HS512")
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                    "ES512", "EdDSA", "HS256", "HS384", "HS512"]
DEFAULT_ALGORITHMS: list[Algorithm] = ["RS256", "ES256"]


class IntrospectionConfig(Section):
    """RFC 7662 for opaque tokens: form POST with HTTP Basic client authentication."""

    client_id: str = Field(min_length=1, description="the gateway's client id at the "
                           "introspection endpoint (HTTP Basic user)")
    client_secret: str | None = Field(None, description="the client secret written in the file; "
                                      "prefer client_secret_env")
    client_secret_env: str | None = Field(None, description="the environment variable "
                                          "holding the client secret")
    endpoint: TargetUrl | None = Field(None, description="default: introspection_endpoint "
                                       "from discovery")

    @model_validator(mode="after")
    def _one_secret(self) -> IntrospectionConfig:
        if (self.client_secret is None) == (self.client_secret_env is None):
            raise fail("give the client secret as client_secret_env: NAME (an environment "
                       "variable) or client_secret: literal, one of the two")
        return self


class IssuerConfig(Section):
    """One identity provider: ``issuer``, ``audiences``, and how its keys are kept."""

    issuer: str = Field(description="the exact `iss` of its tokens, e.g. "
                        "https://idp.example.com/realms/corp")
    jwks_uri: TargetUrl | None = Field(None, description="default: from OIDC discovery")
    audiences: list[str] = Field(description="a token's `aud` must hold one of these")
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: list(DEFAULT_ALGORITHMS),
        description="accepted signature algorithms (never none)")
    leeway: int = Field(30, ge=0, le=600, description="seconds of clock skew on exp/nbf/iat")
    cache_duration: int = Field(300, ge=1, description="seconds fetched keys count as fresh")
    min_refetch_interval: int = Field(30, ge=0, description="an unknown kid refetches the "
                                      "JWKS at most this often (seconds)")
    secret_env: str | None = Field(None, description="for HS256/384/512: the environment "
                                   "variable holding the shared secret")
    introspection: IntrospectionConfig | None = None

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, issuer: str) -> str:
        if not issuer.startswith(("https://", "http://")):
            raise fail(f"{issuer!r} is not an issuer URL (e.g. https://idp.example.com/realms/corp)")
        return issuer

    @field_validator("audiences")
    @classmethod
    def _audiences(cls, audiences: list[str]) -> list[str]:
        if not audiences or not all(audiences):
            raise fail("expected at least one audience, e.g. [orders-api]: a token for "
                       "another API must not pass")
        return audiences

    @field_validator("algorithms", mode="before")
    @classmethod
    def _no_none(cls, algorithms):
        if isinstance(algorithms, list) and any(str(a).lower() == "none" for a in algorithms):
            raise fail("'none' is never accepted: unsigned tokens prove nothing")
        return algorithms

    @model_validator(mode="after")
    def _secrets(self) -> IssuerConfig:
        shared = [a for a in self.algorithms if a in SHARED_SECRET_ALGORITHMS]
        if shared and not self.secret_env:
            raise fail(f"algorithms: {', '.join(shared)} need a shared secret: name its "
                       "environment variable in secret_env")
        if self.secret_env and len(shared) != len(self.algorithms):
            raise fail("algorithms: with secret_env only HS256/HS384/HS512 may be listed "
                       "(a shared secret must never be tried as a public key)")
        if not self.algorithms:
            raise fail("algorithms: expected at least one, e.g. [RS256]")
        return self
