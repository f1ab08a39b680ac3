"""The issued key's form: prefix, 30 random base62 characters, a CRC32 checksum in base62."""

from __future__ import annotations

import re
import zlib

from gateway.keyring.issued import ALPHABET, IssuedKeys, base62, checksum, new_key_id


def test_an_issued_key_is_prefix_30_random_and_its_checksum():
    issued = IssuedKeys("gw")
    key = issued.issue()
    assert re.fullmatch(r"gw_[0-9A-Za-z]{36}", key)
    random_part, written = key[3:33], key[33:]
    # the checksum by hand: CRC32 of the 30 characters, base62, most significant first
    number, digits = zlib.crc32(random_part.encode()), ""
    while number:
        number, digit = divmod(number, 62)
        digits = ALPHABET[digit] + digits
    assert written == digits.rjust(6, "0")
    assert issued.checksum_ok(key) and issued.looks_issued(key)
    assert issued.hint(key) == f"gw_…{key[-4:]}"
    assert re.search(issued.regex(), f"token={key};")


def test_base62_pads_to_six_and_the_largest_crc_fits():
    assert base62(0, 6) == "000000"
    assert base62(61, 6) == "00000z"
    assert base62(62, 6) == "000010"
    assert len(base62(2**32 - 1, 6)) == 6
    assert checksum("0" * 30) == base62(zlib.crc32(b"0" * 30), 6)


def test_keys_and_ids_differ_each_time_and_a_prefix_is_kept():
    issued = IssuedKeys("acme1")
    keys = {issued.issue() for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("acme1_") for k in keys)
    assert re.fullmatch(r"key_[0-9A-Za-z]{16}", new_key_id())
