"""The payload: STREAM over ChaCha20-Poly1305, 64 KiB chunks, each nonce an 11-byte big-endian counter
and a last-chunk flag (C2SP `age.md`, "Payload").

Why a module of its own (Go age's `internal/stream`): the chunking rules are where truncation and
reordering are caught (a missing final chunk, an empty final chunk after others, data after the
final one), and they are the same whatever recipients the header names. It takes the payload key
ready made; the header decides whether there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._errors import AgePayloadError

CHUNK_SIZE: Final = 64 * 1024
_TAG_SIZE: Final = 16
_ENC_CHUNK_SIZE: Final = CHUNK_SIZE + _TAG_SIZE


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def seal_chunks(aead: ChaCha20Poly1305, plaintext: bytes) -> bytes:
    """The encrypted chunks of `plaintext` (after the payload nonce, which the caller writes)."""
    out = bytearray()
    view = memoryview(plaintext)
    count = max(1, -(-len(plaintext) // CHUNK_SIZE))  # an empty payload is one empty final chunk
    for i in range(count):
        chunk = bytes(view[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE])
        out += aead.encrypt(_chunk_nonce(i, i == count - 1), chunk, None)
    return bytes(out)


def open_chunks(aead: ChaCha20Poly1305, payload: memoryview, source: str | None) -> Iterator[bytes]:
    """Each chunk's plaintext as soon as it authenticates; a payload error where the stream goes wrong."""
    pos = 0
    counter = 0
    while True:
        chunk = bytes(payload[pos : pos + _ENC_CHUNK_SIZE])
        if not chunk:
            raise AgePayloadError("truncated payload: no final chunk", file=source)
        if len(chunk) < _ENC_CHUNK_SIZE:
            if counter and len(chunk) == _TAG_SIZE:
                raise AgePayloadError("malformed payload: an empty final chunk after other chunks", file=source)
            last = True
            plain = _open_chunk(aead, counter, True, chunk)
        else:
            last = False
            plain = _open_chunk(aead, counter, False, chunk)
            if plain is None:  # a full-size chunk may be the final one
                last = True
                plain = _open_chunk(aead, counter, True, chunk)
        if plain is None:
            raise AgePayloadError(f"payload chunk {counter} does not authenticate (altered or truncated)", file=source)
        yield plain
        pos += len(chunk)
        counter += 1
        if last:
            if pos != len(payload):
                raise AgePayloadError("data after the payload's final chunk", file=source)
            return


def _open_chunk(aead: ChaCha20Poly1305, counter: int, last: bool, chunk: bytes) -> bytes | None:
    try:
        return aead.decrypt(_chunk_nonce(counter, last), chunk, None)
    except InvalidTag:
        return None
