"""BIP-173 Bech32 (not Bech32m), with age's one deviation: no 90-character limit.

age encodes keys this way, and lifted the limit so that long (post-quantum, plugin) keys fit; we follow
it so that every key age accepts, we accept. Error messages never echo the input: it may be a private key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_CHECKSUM_LEN = 6


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    codes = [ord(c) for c in hrp]
    return [c >> 5 for c in codes] + [0] + [c & 31 for c in codes]


def _convert_bits(data: Iterable[int], frombits: int, tobits: int, *, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value >> frombits:
            raise ValueError("bech32: data value out of range")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits:
        raise ValueError("bech32: excess padding")
    elif (acc << (tobits - bits)) & maxv:
        raise ValueError("bech32: non-zero padding")
    return out


def _check_hrp(hrp: str) -> None:
    if not hrp:
        raise ValueError("bech32: empty human-readable part")
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32: invalid character in human-readable part")


def encode_words(hrp: str, words: Sequence[int]) -> str:
    """Encode 5-bit words. The output has the case of `hrp` (age writes identities upper case)."""
    _check_hrp(hrp)
    lower = hrp.lower()
    if hrp != lower and hrp != hrp.upper():
        raise ValueError("bech32: mixed-case human-readable part")
    if any(not 0 <= w < 32 for w in words):
        raise ValueError("bech32: data value out of range")
    mod = _polymod([*_hrp_expand(lower), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(_CHECKSUM_LEN)]
    out = lower + "1" + "".join(CHARSET[w] for w in [*words, *checksum])
    return out if hrp == lower else out.upper()


def decode_words(text: str) -> tuple[str, list[int]]:
    """Check a Bech32 string and return (lower-case HRP, 5-bit data words without the checksum)."""
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise ValueError("bech32: invalid character")
    lower = text.lower()
    if text != lower and text != text.upper():
        raise ValueError("bech32: mixed case")
    pos = lower.rfind("1")
    if pos < 1:
        raise ValueError("bech32: missing separator or empty human-readable part")
    if pos + 1 + _CHECKSUM_LEN > len(lower):
        raise ValueError("bech32: checksum too short")
    hrp = lower[:pos]
    try:
        words = [_CHARSET_REV[c] for c in lower[pos + 1 :]]
    except KeyError:
        raise ValueError("bech32: invalid character in data part") from None
    if _polymod([*_hrp_expand(hrp), *words]) != 1:
        raise ValueError("bech32: invalid checksum")
    return hrp, words[:-_CHECKSUM_LEN]


def encode(hrp: str, data: bytes) -> str:
    """Encode bytes as age does (8-bit groups regrouped into 5-bit words, zero-padded)."""
    return encode_words(hrp, _convert_bits(data, 8, 5, pad=True))


def decode(text: str) -> tuple[str, bytes]:
    """Decode to (lower-case HRP, bytes); padding must be canonical, so each value has one encoding."""
    hrp, words = decode_words(text)
    return hrp, bytes(_convert_bits(words, 5, 8, pad=False))
