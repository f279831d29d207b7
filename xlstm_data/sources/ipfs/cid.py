"""Content identifiers (CIDs): parsing, a canonical spelling, and the hash check of a block.

Only what UnixFS trees need: CIDv0 (base58btc `Qm…`) and CIDv1 in base32 (`b…`) or base58btc
(`z…`), with the codecs raw (0x55) and dag-pb (0x70) and the sha2-256 multihash (0x12). Any other
hash function is refused rather than trusted unverified.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib

from xlstm_data.errors import DataError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb"}
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class CidError(DataError):
    """A string or bytes that is not a CID this source can use."""


class IntegrityError(DataError):
    """Bytes that do not match the CID they were fetched for."""


@dataclasses.dataclass(frozen=True)
class Cid:
    version: int
    codec: int
    digest: bytes
    """The sha2-256 digest of the block the CID names."""

    @classmethod
    def parse(cls, text: str) -> Cid:
        """A CID from its text form (CIDv0 `Qm…`, or CIDv1 with multibase prefix `b` or `z`)."""
        text = text.strip()
        if not text:
            raise CidError("An empty string is not a CID.")
        try:
            if len(text) == 46 and text.startswith("Qm"):
                return cls.from_bytes(_base58_decode(text))
            if text[0] in "bB":
                body = text[1:].upper()
                return cls.from_bytes(base64.b32decode(body + "=" * (-len(body) % 8)))
            if text[0] == "z":
                return cls.from_bytes(_base58_decode(text[1:]))
        except ValueError as error:  # binascii.Error is a ValueError
            raise CidError(f"{text!r} is not a valid CID: {error}") from error
        raise CidError(
            f"{text!r} is not a CID this source reads: use a CIDv0 (Qm…) or a CIDv1 "
            "in base32 (b…) or base58btc (z…)."
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Cid:
        """A CID from its binary form, as stored in dag-pb links."""
        if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == 32:
            return cls(0, DAG_PB, bytes(raw[2:]))
        version, position = read_varint(raw, 0)
        if version != 1:
            raise CidError(f"CID version {version} is unknown (only 0 and 1 exist).")
        codec, position = read_varint(raw, position)
        hash_code, position = read_varint(raw, position)
        length, position = read_varint(raw, position)
        digest = bytes(raw[position:])
        if hash_code != SHA2_256:
            raise CidError(
                f"CID with multihash 0x{hash_code:x} cannot be verified: this source "
                "checks sha2-256 (0x12) only. Re-add the data with --hash=sha2-256."
            )
        if length != 32 or len(digest) != 32:
            raise CidError(f"sha2-256 CID has a {len(digest)}-byte digest, not 32.")
        return cls(1, codec, digest)

    def to_bytes(self) -> bytes:
        """Binary CIDv1 (a CIDv0 is written as the CIDv1 of the same block)."""
        return bytes([1, *_varint(self.codec), SHA2_256, 32]) + self.digest

    def __str__(self) -> str:
        """Canonical spelling: CIDv1 in lower-case base32, safe as a file name."""
        return "b" + base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES.get(self.codec, f"0x{self.codec:x}")


def verify_block(cid: Cid, data: bytes | memoryview, source: str) -> None:
    """Raises IntegrityError unless `data` hashes to `cid`; `source` says where it came from."""
    if hashlib.sha256(data).digest() != cid.digest:
        raise IntegrityError(
            f"{len(data)} bytes from {source} do not hash to CID {cid}: the "
            "content was altered or is not what the CID names."
        )


def read_varint(data: bytes | memoryview, position: int) -> tuple[int, int]:
    """Unsigned LEB128 varint at `position` → (value, position after it)."""
    value, shift = 0, 0
    while True:
        if position >= len(data):
            raise CidError("Truncated varint.")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise CidError("Varint longer than 64 bits.")


def _varint(value: int) -> list[int]:
    out = []
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return [*out, value]


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _BASE58.find(char)
        if index < 0:
            raise CidError(f"{char!r} is not a base58btc character.")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_zeros + body
