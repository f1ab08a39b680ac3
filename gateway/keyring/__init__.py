"""API keys and the consumers they belong to, as every worker holds them.

:mod:`.issued` is the form of the keys the gateway issues (a prefix, 30 random
base62 characters, a CRC32 checksum); :mod:`.directory` is the in-memory
lookup by a key's hash that ``auth: api_key`` asks (the file's consumers and
the database's, the same cost with 100,000 keys as with 10), which
gateway/db/follower.py keeps in step with the database, off the request path.
"""

from .directory import ConsumerEntry, Directory, KeyEntry, Refusal
from .issued import IssuedKeys

__all__ = ["ConsumerEntry", "Directory", "IssuedKeys", "KeyEntry", "Refusal"]
