"""`ssh-ed25519` keys as recipients, converted to X25519 the way age converts them.

A custodian's existing SSH key can be a (recovery) recipient: the Ed25519 public key maps to its
X25519 twin (the birational map, `crypto_sign_ed25519_pk_to_curve25519` in libsodium via pynacl),
and the private key from the OpenSSH key file maps likewise. Values are then sealed with the same
HPKE X25519 suite as age keys. (age's own ssh-ed25519 *file* stanza adds a tweak; sealer tokens are
not age files and do not need it: see docs/format.md.)
"""

from __future__ import annotations

import base64
import binascii
import struct

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ..errors import KeyFormatError
from ._base import HpkeIdentity, HpkeRecipient
from .x25519 import SUITE

PREFIX = "ssh-ed25519"
# The PEM label, split so that secret scanners (ours included) do not take this source for a key.
OPENSSH_BEGIN = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"


def _ssh_string(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise ValueError("truncated")
    (n,) = struct.unpack(">I", data[offset : offset + 4])
    end = offset + 4 + n
    if end > len(data):
        raise ValueError("truncated")
    return data[offset + 4 : end], end


class SshEd25519Recipient(HpkeRecipient):
    kind = "ssh-ed25519"
    _suite = SUITE

    def __init__(self, ed25519_public: bytes) -> None:
        from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519

        try:
            curve = crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
        except Exception:
            raise KeyFormatError("invalid ssh-ed25519 public key") from None
        self._ed = ed25519_public
        self._public_key = x25519.X25519PublicKey.from_public_bytes(curve)
        blob = struct.pack(">I", len(PREFIX)) + PREFIX.encode() + struct.pack(">I", 32) + ed25519_public
        # `ssh-ed25519 AAAA…` without the comment: the comment is not part of the key.
        self._set_text(f"{PREFIX} {base64.b64encode(blob).decode()}")

    @classmethod
    def parse(cls, text: str) -> SshEd25519Recipient:
        parts = text.split()
        if len(parts) < 2 or parts[0] != PREFIX:
            raise KeyFormatError("not an ssh-ed25519 public key: expected 'ssh-ed25519 AAAA…'")
        try:
            blob = base64.b64decode(parts[1], validate=True)
            kind, off = _ssh_string(blob, 0)
            key, off = _ssh_string(blob, off)
        except (binascii.Error, ValueError):
            raise KeyFormatError("malformed ssh-ed25519 public key") from None
        if kind != PREFIX.encode() or len(key) != 32 or off != len(blob):
            raise KeyFormatError("malformed ssh-ed25519 public key")
        return cls(key)


def _has_bcrypt() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("bcrypt") is not None
    except (ImportError, ValueError):
        return False


class SshEd25519Identity(HpkeIdentity):
    """From an OpenSSH private key file (the `BEGIN OPENSSH PRIVATE KEY` PEM block)."""

    _suite = SUITE

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        from nacl.bindings import crypto_sign_ed25519_sk_to_curve25519, crypto_sign_seed_keypair

        self._ed = private_key
        seed = private_key.private_bytes_raw()
        public, secret = crypto_sign_seed_keypair(seed)
        self._private_key = x25519.X25519PrivateKey.from_private_bytes(crypto_sign_ed25519_sk_to_curve25519(secret))
        self.recipient = SshEd25519Recipient(public)
        self.kid = self.recipient.kid

    @staticmethod
    def encrypted(text: str) -> bool:
        """Whether an OpenSSH private key file is passphrase-protected: its cipher is not `none`
        (the `openssh-key-v1` header, PROTOCOL.key). False for anything unparseable: `parse` says why."""
        body = "".join(line.strip() for line in text.strip().splitlines()[1:-1])
        try:
            blob = base64.b64decode(body, validate=True)
        except binascii.Error:
            return False
        magic = b"openssh-key-v1\0"
        if not blob.startswith(magic):
            return False
        try:
            cipher, _ = _ssh_string(blob, len(magic))
        except ValueError:
            return False
        return cipher != b"none"

    @classmethod
    def parse(cls, text: str, passphrase: bytes | None = None) -> SshEd25519Identity:
        """`passphrase` opens a protected key (bcrypt-pbkdf, through cryptography and `bcrypt`).
        Errors never quote the key; the caller adds the file's name."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        try:
            key = load_ssh_private_key(text.encode(), password=passphrase or None)
        except TypeError:  # a protected key and no passphrase, or the reverse
            raise KeyFormatError(
                "this OpenSSH private key is passphrase-protected, and no passphrase was given"
                if not passphrase
                else "this OpenSSH private key is not passphrase-protected"
            ) from None
        except UnsupportedAlgorithm:
            if passphrase and not _has_bcrypt():
                raise KeyFormatError(
                    "opening a passphrase-protected OpenSSH private key needs the bcrypt package",
                    hint="reinstall sealer, which depends on it, or run: pip install bcrypt",
                ) from None
            raise KeyFormatError("this OpenSSH private key uses a cipher or key kind sealer cannot read") from None
        except ValueError:
            raise KeyFormatError(
                "wrong passphrase for this OpenSSH private key (or the key file is damaged)"
                if passphrase
                else "malformed OpenSSH private key"
            ) from None
        except Exception:
            raise KeyFormatError("unreadable OpenSSH private key") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyFormatError("only ssh-ed25519 private keys can be sealer identities")
        return cls(key)

    def encode(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self._ed.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
