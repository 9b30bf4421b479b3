"""Signer keys: Ed25519 (pynacl), encoded in Bech32 like age keys (docs/format.md § 6, "Keys")."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .._format import bech32 as _bech32
from .._fsio import read_private_file
from ..errors import InputError, KeyFormatError, UsageError

PUBLIC_HRP = "sealer-signer"
SECRET_HRP = "SEALER-SIGNER-SECRET-KEY-"  # noqa: S105  pragma: allowlist secret (an encoding prefix)
MAX_KEY_FILE = 64 * 1024


def signer_kid(public: str) -> str:
    """`hex(SHA-256(ascii(public key string)))[0:16]`, as environment key ids are made."""
    return hashlib.sha256(public.encode("ascii")).hexdigest()[:16]


@dataclass(frozen=True)
class SignerPublic:
    """An allowed signer's public key: `sealer-signer1…` (Bech32 of the 32-byte Ed25519 key)."""

    raw: bytes
    text: str

    @property
    def kid(self) -> str:
        return signer_kid(self.text)


def parse_signer_public(text: str) -> SignerPublic:
    text = text.strip()
    if text.upper().startswith(SECRET_HRP):
        raise KeyFormatError("this is a signer's private key, not its public key: expected sealer-signer1…")
    try:
        hrp, data = _bech32.decode(text)
    except ValueError:
        raise KeyFormatError("not a signer public key: expected sealer-signer1…") from None
    if hrp != PUBLIC_HRP or text != text.lower() or len(data) != 32:
        raise KeyFormatError("not a signer public key: expected sealer-signer1… (32-byte Ed25519 key)")
    return SignerPublic(data, text)


class SignerKey:
    """A signer's private key (the 32-byte Ed25519 seed). Never printed, never in an error message."""

    def __init__(self, seed: bytes) -> None:
        from nacl.signing import SigningKey

        if len(seed) != 32:
            raise KeyFormatError("a signer key is a 32-byte Ed25519 seed")
        self._key = SigningKey(seed)
        self._seed = seed
        text = _bech32.encode(PUBLIC_HRP, bytes(self._key.verify_key))
        self.public = SignerPublic(bytes(self._key.verify_key), text)

    @classmethod
    def generate(cls) -> SignerKey:
        return cls(os.urandom(32))

    @property
    def kid(self) -> str:
        return self.public.kid

    def encode(self) -> str:
        return _bech32.encode(SECRET_HRP, self._seed)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)

    def __repr__(self) -> str:
        return f"SignerKey(kid={self.kid})"


def parse_signer_secret(text: str) -> SignerKey:
    text = text.strip()
    try:
        hrp, data = _bech32.decode(text)
    except ValueError:
        raise KeyFormatError("not a signer private key: expected SEALER-SIGNER-SECRET-KEY-1…") from None
    if hrp != SECRET_HRP.lower() or text != text.upper() or len(data) != 32:
        raise KeyFormatError("not a signer private key: expected SEALER-SIGNER-SECRET-KEY-1…")
    return SignerKey(data)


def read_signer_file(path: str | os.PathLike[str]) -> SignerKey:
    """Read a signer key file (`#` comment lines, one key line), refusing one that group or others
    may read, as identity files are refused."""
    name = os.fspath(path)
    data = read_private_file(name, what="signer key file", limit=MAX_KEY_FILE, unsafe=UsageError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(
            "not UTF-8 text, so not a signer key file",
            file=name,
            hint="a signer key file is one line SEALER-SIGNER-SECRET-KEY-1…; make one with: sealer signers generate",
        ) from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if len(lines) != 1:
        raise KeyFormatError("expected exactly one line SEALER-SIGNER-SECRET-KEY-1…", file=name)
    try:
        return parse_signer_secret(lines[0])
    except KeyFormatError as e:
        raise KeyFormatError(str(e), file=name) from None


def write_signer_file(path: Path, key: SignerKey, name: str) -> None:
    """Write a new signer key file, mode 0600 from creation; never replaces an existing file."""
    import datetime as dt

    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    content = f"# created: {created}\n# sealer signer: {name}\n# public key: {key.public.text}\n{key.encode()}\n"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UsageError("file already exists; refusing to overwrite it", file=str(path)) from None
    except OSError as e:
        raise InputError(f"cannot write signer key file: {e.strerror}", file=str(path)) from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(content.encode())
        f.flush()
        os.fsync(f.fileno())


def check_name(name: str) -> str:
    from .._document import SIGNER_NAME

    if not SIGNER_NAME.fullmatch(name):
        raise UsageError(
            f"bad signer name {name!r}",
            hint="letters, digits and . _ @ + - (up to 64 characters), e.g. alice or alice@example.com",
        )
    return name
