"""The controller's keys: its public key from the certificate kubeseal fetches, its private keys from
PEM or from the key Secrets a backup holds, and the fingerprint the controller logs them under.

Why a module of its own: controller keys arrive in many wrappings (a PEM with certificates beside
it, a `kubernetes.io/tls` Secret, a `kind: List` of them) and each wrong input needs its own clear
refusal, which has nothing to do with sealing itself. Certificates are read for their public key
and validity dates only: controller certificates carry KeyUsage=EncipherOnly without KeyAgreement,
and cryptography raises as soon as `extensions` is touched.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from ...errors import InputError
from ._document import b64decode, load_documents
from ._errors import KEY_HINT, CertificateError, CertificateExpired, CertificateNotRSA, ControllerKeyError

_MIN_RSA_BITS = 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)
_PRIVATE_BLOCKS = {b"RSA PRIVATE KEY", b"PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"DSA PRIVATE KEY"}


def key_fingerprint(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """The key id the controller logs and registers keys under (Go `ssh.FingerprintSHA256`)."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    line = pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    wire = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


def _key_kind(key: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (ec.EllipticCurvePublicKey, "an EC key"),
        (ec.EllipticCurvePrivateKey, "an EC key"),
        (ed25519.Ed25519PublicKey, "an Ed25519 key"),
        (ed25519.Ed25519PrivateKey, "an Ed25519 key"),
        (ed448.Ed448PublicKey, "an Ed448 key"),
        (ed448.Ed448PrivateKey, "an Ed448 key"),
        (x25519.X25519PrivateKey, "an X25519 key"),
        (x448.X448PrivateKey, "an X448 key"),
        (dsa.DSAPublicKey, "a DSA key"),
        (dsa.DSAPrivateKey, "a DSA key"),
    )
    return next((name for cls, name in kinds if isinstance(key, cls)), "not an RSA key")


def load_certificate(cert_pem: bytes, *, now: datetime | None = None, source: str | None = None) -> rsa.RSAPublicKey:
    """The controller's public key from its certificate (the first one in the PEM, as kubeseal takes).

    Refused, in kubeseal's order: a key that is not RSA, then a certificate past NotAfter. Only
    `public_key()` and `not_valid_after_utc` are read; the extensions are never parsed.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError):
        raise CertificateError(
            "is not a PEM certificate", file=source, hint="get the controller's with: kubeseal --fetch-cert"
        ) from None
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateNotRSA("the certificate's key is of an unsupported type, not RSA", file=source) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateNotRSA(
            f"the certificate's key is {_key_kind(key)}, not RSA",
            file=source,
            hint="Sealed Secrets controllers use RSA keys; is this the controller's certificate?",
        )
    when = datetime.now(UTC) if now is None else now
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    not_after = cert.not_valid_after_utc
    if when > not_after:
        raise CertificateExpired(
            f"the certificate expired on {not_after:%Y-%m-%d %H:%M:%S} UTC; kubeseal refuses it too",
            file=source,
            hint="fetch the controller's current certificate: kubeseal --fetch-cert",
        )
    if key.key_size < _MIN_RSA_BITS:
        raise CertificateError(f"the certificate's RSA key has only {key.key_size} bits", file=source)
    return key


def load_private_keys(data: bytes, *, source: str | None = None) -> list[rsa.RSAPrivateKey]:
    """Every controller key in `data`, as kubeseal's --recovery-private-key reads them.

    `data` is PEM (one or more private keys; certificates beside them are skipped) or the controller's
    key Secret(s) as YAML or JSON: a `kubernetes.io/tls` Secret with `tls.key`, a `kind: List` of them
    (what `kubectl get secret -l … -o yaml` writes for a backup), or several documents.
    """
    if data.lstrip().startswith(b"-----BEGIN"):
        return _keys_from_pem(data, source, "")
    try:
        docs = load_documents(data.decode("utf-8"), source or "key")
    except (UnicodeDecodeError, InputError):
        if _PEM_BLOCK.search(data):  # PEM with text around it (openssl's "Bag Attributes", comments)
            return _keys_from_pem(data, source, "")
        raise ControllerKeyError(
            "is neither a PEM private key nor a key Secret in YAML or JSON", file=source, hint=KEY_HINT
        ) from None
    keys: list[rsa.RSAPrivateKey] = []
    for i, doc in enumerate(docs):
        if doc.get("kind") != "Secret":
            raise ControllerKeyError(
                f"document {i} is a {doc.get('kind')!r}, not a Secret holding tls.key", file=source, hint=KEY_HINT
            )
        keys.extend(_keys_from_secret(doc, i, source))
    if not keys:
        raise ControllerKeyError("holds no private key", file=source, hint=KEY_HINT)
    return keys


def _keys_from_secret(doc: Mapping[str, Any], index: int, source: str | None) -> list[rsa.RSAPrivateKey]:
    md = doc.get("metadata")
    name = (md.get("name") or md.get("generateName")) if isinstance(md, Mapping) else None
    which = f"Secret {name!r}" if isinstance(name, str) else f"the Secret in document {index}"
    data, string_data = doc.get("data"), doc.get("stringData")
    if isinstance(data, Mapping) and isinstance(data.get("tls.key"), str):
        pem = b64decode(data["tls.key"])
        if pem is None:
            raise ControllerKeyError(f'{which}: data["tls.key"] is not base64', file=source)
    elif isinstance(string_data, Mapping) and isinstance(string_data.get("tls.key"), str):
        pem = string_data["tls.key"].encode()
    else:
        raise ControllerKeyError(f"{which} has no tls.key", file=source, hint=KEY_HINT)
    return _keys_from_pem(pem, source, f"{which}: ")


def _keys_from_pem(data: bytes, source: str | None, where: str) -> list[rsa.RSAPrivateKey]:
    keys: list[rsa.RSAPrivateKey] = []
    for m in _PEM_BLOCK.finditer(data):
        kind = m.group(1)
        if kind not in _PRIVATE_BLOCKS:
            continue  # a certificate or public key next to the private key
        label = kind.decode()
        if kind == b"ENCRYPTED PRIVATE KEY" or b"ENCRYPTED" in m.group(0).split(b"\n", 2)[1]:
            raise ControllerKeyError(
                f"{where}the {label} is passphrase-protected",
                file=source,
                hint="decrypt it first: openssl pkey -in KEY -out PLAIN.pem (controller keys are not encrypted)",
            )
        try:
            key = serialization.load_pem_private_key(m.group(0), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ControllerKeyError(f"{where}the {label} PEM block cannot be read", file=source) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ControllerKeyError(
                f"{where}the {label} is {_key_kind(key)}; Sealed Secrets controller keys are RSA", file=source
            )
        keys.append(key)
    if not keys:
        raise ControllerKeyError(f"{where}no PEM private key found", file=source, hint=KEY_HINT)
    return keys
