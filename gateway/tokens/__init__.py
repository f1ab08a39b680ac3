"""Tokens: JWT verification against each issuer's JWKS, and RFC 7662 introspection.

- :mod:`.fetch`: discovery, JWKS and introspection calls, through pooled Upstreams (2 s).
- :mod:`.keys`: one issuer's keys: single flight, stale while the IdP is down, refetch cooldown.
- :mod:`.verify`: :class:`Verifier`: a bearer token in, ``(issuer, claims)`` out, or a TokenError.

The policy that uses it is gateway/policies/authentication.py. PyJWT (with
``cryptography``) parses tokens and checks signatures; what is written here
is only the fetch policy and the rules the issue lists.
"""

from .verify import TokenError, Verifier

__all__ = ["TokenError", "Verifier"]
