"""The form of an issued key: ``<prefix>_<30 random base62><6-character checksum>``.

Like GitHub's tokens: the prefix tells a secret scanner (and a person) what the
string is, the 30 characters drawn by :mod:`secrets` from ``0-9A-Za-z`` carry
178 random bits, and the checksum (``zlib.crc32`` of those 30 characters,
written in base62, most significant digit first, left-padded with ``0`` to 6)
lets a scanner, or the gateway before any lookup, tell a real key from a typo
or a made-up string. A key id is ``key_`` and 16 base62 characters: it names a
key in logs, traces and the audit log and is no secret.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
ID_LENGTH = 16
DEFAULT_PREFIX = "gw"


def base62(number: int, width: int) -> str:
    """``number`` in base62, most significant digit first, left-padded with ``0``."""
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(random_part: str) -> str:
    return base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def random_base62(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def key_hash(key: str) -> str:
    """What the database holds of a key: its sha256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key_id() -> str:
    return "key_" + random_base62(ID_LENGTH)


class IssuedKeys:
    """Issuing and recognising keys with one prefix (``keys: {prefix: gw}``)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX):
        self.prefix = prefix
        self.pattern = re.compile(
            rf"^{re.escape(prefix)}_[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}$")

    def issue(self) -> str:
        """A new key: shown once, never stored."""
        random_part = random_base62(RANDOM_LENGTH)
        return f"{self.prefix}_{random_part}{checksum(random_part)}"

    def hint(self, key: str) -> str:
        """What a person sees of a key after it was shown: ``gw_…a1B2``."""
        return f"{self.prefix}_…{key[-4:]}"

    def looks_issued(self, key: str) -> bool:
        return self.pattern.match(key) is not None

    def checksum_ok(self, key: str) -> bool:
        """For a key of the issued form: whether its last 6 characters are its checksum."""
        body = key[len(self.prefix) + 1:]
        return checksum(body[:RANDOM_LENGTH]) == body[RANDOM_LENGTH:]

    def regex(self) -> str:
        """The regular expression a secret scanner can use (the docs print it)."""
        return (rf"\b{re.escape(self.prefix)}_[0-9A-Za-z]{{{RANDOM_LENGTH}}}"
                rf"[0-9A-Za-z]{{{CHECKSUM_LENGTH}}}\b")
