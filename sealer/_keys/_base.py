"""The two small interfaces every key kind implements, and the HPKE and Bech32 plumbing they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from .._format import bech32 as _bech32
from .._format import kid_of
from ..errors import KeyFormatError, UnsealError


class Recipient(ABC):
    """A public key that values are sealed to."""

    kid: str
    kind: str
    # Is this kind safe against a quantum adversary? Classic (False) kinds must not share an
    # environment with post-quantum ones: either alone opens a token (sealer._registry.check_kinds).
    post_quantum: bool = False

    @abstractmethod
    def encode(self) -> str:
        """The canonical text form, as age writes it."""

    @abstractmethod
    def seal(self, plaintext: bytes, info: bytes) -> bytes:
        """HPKE base-mode single-shot seal; returns enc || ciphertext. `info` binds the context."""

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.encode()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recipient):
            return NotImplemented
        return self.kind == other.kind and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash((self.kind, self.encode()))


class Identity(ABC):
    """A private key. Its text never appears in repr/str or in any error message."""

    kid: str
    recipient: Recipient

    @abstractmethod
    def encode(self) -> str:
        """The secret text form, as age-keygen writes it. The only way to get the secret out."""

    @abstractmethod
    def open(self, sealed: bytes, info: bytes) -> bytes:
        """Inverse of `Recipient.seal`; any failure is an `UnsealError` naming only the kid."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kid={self.kid!r}, recipient={self.recipient.encode()!r})"

    __str__ = __repr__


class HpkeRecipient(Recipient):
    """A recipient sealed to with one HPKE suite and one public key object, its text fixed when made."""

    _suite: Any
    _public_key: Any
    _text: str

    def _set_text(self, text: str) -> None:
        """The canonical text (`encode`) and the key id, which is derived from it."""
        self._text = text
        self.kid = kid_of(text)

    def encode(self) -> str:
        return self._text

    def seal(self, plaintext: bytes, info: bytes) -> bytes:
        return bytes(self._suite.encrypt(plaintext, self._public_key, info=info))


class HpkeIdentity(Identity):
    """An identity that opens with one HPKE suite and one private key object."""

    _suite: Any
    _private_key: Any

    def open(self, sealed: bytes, info: bytes) -> bytes:
        try:
            return bytes(self._suite.decrypt(sealed, self._private_key, info=info))
        except Exception:
            # Whatever went wrong (tag, length, point), say only which key did not open it.
            raise UnsealError(f"does not open with key {self.kid}") from None


def bech32_key(
    text: str, hrp: str, *, malformed: str, wrong: str, size: int | None = None, any_case: bool = False
) -> bytes:
    """The bytes of the Bech32 key `text`, whose HRP must be `hrp`, written as age writes it (`hrp`
    then `1`, in that case, unless `any_case`), and `size` bytes long when given. The errors name
    the key `malformed` (bad text, wrong size) or say `wrong` (another HRP)."""
    try:
        got, data = _bech32.decode(text)
    except ValueError as err:
        raise KeyFormatError(f"malformed {malformed}: {err}") from None
    if got != hrp.lower() or not (any_case or text.startswith(hrp + "1")):
        raise KeyFormatError(f"{wrong}: expected {hrp}1…")
    if size is not None and len(data) != size:
        raise KeyFormatError(f"malformed {malformed}: key is {len(data)} bytes, expected {size}")
    return data
