"""Bitnami Sealed Secrets: seal a Secret into a `bitnami.com/v1alpha1` SealedSecret for a controller's
certificate, and recovery-unseal one with the controller's private key.

The value format, as kubeseal and the controller compose it (bitnami-labs/sealed-secrets,
pkg/crypto/crypto.go and pkg/apis/sealedsecrets/v1alpha1; checked against a kubeseal v0.14.1 value):

    value = base64std( u16be(len(rsa)) ‖ rsa ‖ gcm )
    rsa   = RSA-OAEP(SHA-256, MGF1-SHA-256, label)(K)      K: 32 random bytes, one per value
    gcm   = AES-GCM(K, nonce = 12 zero bytes, no AAD)(plaintext)   ciphertext ‖ 16-byte tag
    label = "namespace/name" (strict) | "namespace" (namespace-wide) | "" (cluster-wide)

The OAEP label is the only binding, and the controller takes it from the SealedSecret's own
metadata (name, namespace and the scope annotations), never from `spec.template`. There is no key id
in a value: whoever holds several controller keys tries each one.

Only `cryptography` does crypto here. Certificates are read for their public key and validity
dates only: controller certificates carry KeyUsage=EncipherOnly without KeyAgreement, and
cryptography raises as soon as `extensions` is touched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._format.valuepath import format_path
from ..errors import InputError, KeyFormatError, UnsealError

__all__ = [
    "ANNOTATION_CLUSTER_WIDE",
    "ANNOTATION_NAMESPACE_WIDE",
    "API_VERSION",
    "FROM_SEALER_SCOPE",
    "SCOPES",
    "TO_SEALER_SCOPE",
    "AlteredValue",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotRSA",
    "ControllerKeyError",
    "InvalidSecret",
    "LabelMismatch",
    "MalformedSealedSecret",
    "NoKeyCouldDecrypt",
    "Place",
    "Scope",
    "TruncatedBlob",
    "UnsupportedSealedSecret",
    "WrongKey",
    "encryption_label",
    "key_fingerprint",
    "load_certificate",
    "load_documents",
    "load_private_keys",
    "open_value",
    "place_of",
    "scope_of",
    "seal",
    "seal_value",
    "seal_with_key",
    "to_yaml",
    "unseal",
    "unseal_with_keys",
]

Scope = Literal["strict", "namespace-wide", "cluster-wide"]
SCOPES: tuple[Scope, ...] = ("strict", "namespace-wide", "cluster-wide")

API_VERSION = "bitnami.com/v1alpha1"
KIND = "SealedSecret"
ANNOTATION_NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"
ANNOTATION_CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"

# sealer's Secret scopes and theirs bind the same things: namespace+name, namespace, nothing.
FROM_SEALER_SCOPE: dict[str, Scope] = {"strict": "strict", "namespace": "namespace-wide", "env": "cluster-wide"}
TO_SEALER_SCOPE: dict[Scope, str] = {v: k for k, v in FROM_SEALER_SCOPE.items()}

# kubectl and kubecfg keep a full copy of the applied object here, plaintext included (their #227).
_LAST_APPLIED = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
)
_SESSION_KEY_BYTES = 32  # AES-256, as kubeseal writes; Go's aes.NewCipher would also take 16 or 24 on opening
_NONCE = bytes(12)  # every session key encrypts exactly one value
_TAG_BYTES = 16
_MIN_RSA_BITS = 1024
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # what the API server accepts as a Secret data key
_KEY_HINT = "kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml"


# --- errors ------------------------------------------------------------------------------------------


class InvalidSecret(InputError):
    """The Secret to seal is not one kubeseal would accept (no name, no namespace, bad base64, ...)."""


class MalformedSealedSecret(InputError):
    """Not a SealedSecret, or a field of it has the wrong shape."""


class TruncatedBlob(MalformedSealedSecret):
    """A value is shorter than its length prefix says (the controller's ErrTooShort)."""


class UnsupportedSealedSecret(InputError):
    """Valid for the controller but not opened here: the deprecated v1 `spec.data`, Go templates."""


class CertificateError(KeyFormatError):
    """The controller certificate cannot be used to seal."""


class CertificateNotRSA(CertificateError):
    """The certificate's key is not RSA; the controller only has RSA keys."""


class CertificateExpired(CertificateError):
    """The certificate is past its NotAfter date; kubeseal refuses those too."""


class ControllerKeyError(KeyFormatError):
    """The controller private key input holds no usable RSA private key."""


class NoKeyCouldDecrypt(UnsealError):
    """No key given unwraps the value under this SealedSecret's label, and the cause is not provable:
    a key not given, or a value sealed for another name/namespace (OAEP cannot tell them apart)."""


class LabelMismatch(NoKeyCouldDecrypt):
    """Proven move: the value opens under another place's label, not under this SealedSecret's."""


class WrongKey(NoKeyCouldDecrypt):
    """Proven: the value was sealed for an RSA key of a size none of the given keys has."""


class AlteredValue(UnsealError):
    """The key and label unwrap the session key, but AES-GCM authentication fails: the value was edited."""


# --- places and labels ---------------------------------------------------------------------------------


def encryption_label(namespace: str, name: str, scope: Scope) -> bytes:
    """The RSA-OAEP label for a place: the one thing that binds a value to it."""
    if scope == "cluster-wide":
        return b""
    if scope == "namespace-wide":
        return namespace.encode()
    return f"{namespace}/{name}".encode()


@dataclass(frozen=True)
class Place:
    """Where a SealedSecret lives, as far as its label is concerned."""

    namespace: str
    name: str
    scope: Scope

    @property
    def label(self) -> bytes:
        return encryption_label(self.namespace, self.name, self.scope)

    def describe(self) -> str:
        if self.scope == "cluster-wide":
            return "any namespace (cluster-wide)"
        if self.scope == "namespace-wide":
            return f"namespace {self.namespace!r} (namespace-wide)"
        return f"name {self.name!r} in namespace {self.namespace!r} (strict)"


def scope_of(annotations: Mapping[str, Any] | None) -> Scope:
    """The scope the annotations select; cluster-wide wins when both are set, as in the controller."""
    ann = annotations or {}
    if ann.get(ANNOTATION_CLUSTER_WIDE) == "true":
        return "cluster-wide"
    if ann.get(ANNOTATION_NAMESPACE_WIDE) == "true":
        return "namespace-wide"
    return "strict"


def _scope_annotations(annotations: Mapping[str, str], scope: Scope) -> dict[str, str]:
    out = {k: v for k, v in annotations.items() if k not in (ANNOTATION_NAMESPACE_WIDE, ANNOTATION_CLUSTER_WIDE)}
    if scope == "namespace-wide":
        out[ANNOTATION_NAMESPACE_WIDE] = "true"
    elif scope == "cluster-wide":
        out[ANNOTATION_CLUSTER_WIDE] = "true"
    return out


# --- keys and certificates -------------------------------------------------------------------------------


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


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)
_PRIVATE_BLOCKS = {b"RSA PRIVATE KEY", b"PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"DSA PRIVATE KEY"}


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
            "is neither a PEM private key nor a key Secret in YAML or JSON", file=source, hint=_KEY_HINT
        ) from None
    keys: list[rsa.RSAPrivateKey] = []
    for i, doc in enumerate(docs):
        if doc.get("kind") != "Secret":
            raise ControllerKeyError(
                f"document {i} is a {doc.get('kind')!r}, not a Secret holding tls.key", file=source, hint=_KEY_HINT
            )
        keys.extend(_keys_from_secret(doc, i, source))
    if not keys:
        raise ControllerKeyError("holds no private key", file=source, hint=_KEY_HINT)
    return keys


def _keys_from_secret(doc: Mapping[str, Any], index: int, source: str | None) -> list[rsa.RSAPrivateKey]:
    md = doc.get("metadata")
    name = (md.get("name") or md.get("generateName")) if isinstance(md, Mapping) else None
    which = f"Secret {name!r}" if isinstance(name, str) else f"the Secret in document {index}"
    data, string_data = doc.get("data"), doc.get("stringData")
    if isinstance(data, Mapping) and isinstance(data.get("tls.key"), str):
        pem = _b64(data["tls.key"])
        if pem is None:
            raise ControllerKeyError(f'{which}: data["tls.key"] is not base64', file=source)
    elif isinstance(string_data, Mapping) and isinstance(string_data.get("tls.key"), str):
        pem = string_data["tls.key"].encode()
    else:
        raise ControllerKeyError(f"{which} has no tls.key", file=source, hint=_KEY_HINT)
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
        raise ControllerKeyError(f"{where}no PEM private key found", file=source, hint=_KEY_HINT)
    return keys


# --- one value -------------------------------------------------------------------------------------------


def _oaep(label: bytes) -> padding.OAEP:
    # Go's rsa.EncryptOAEP uses one hash for both the OAEP digest and MGF1.
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def seal_value(public_key: rsa.RSAPublicKey, plaintext: bytes, label: bytes) -> str:
    """One sealed value, as kubeseal --raw prints it (HybridEncrypt, then standard base64)."""
    session_key = AESGCM.generate_key(bit_length=8 * _SESSION_KEY_BYTES)
    wrapped = public_key.encrypt(session_key, _oaep(label))
    body = AESGCM(session_key).encrypt(_NONCE, plaintext, None)
    return base64.b64encode(len(wrapped).to_bytes(2, "big") + wrapped + body).decode("ascii")


@dataclass(frozen=True)
class _Blob:
    wrapped: bytes  # the RSA-OAEP ciphertext of the session key
    body: bytes  # AES-GCM ciphertext ‖ tag


def _b64(text: str) -> bytes | None:
    """Go's StdEncoding as encoding/json uses it: padded, standard alphabet, CR and LF ignored."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_blob(value: Any, where: str, source: str | None) -> _Blob:
    if not isinstance(value, str):
        raise MalformedSealedSecret(f"{where} is not a string", file=source)
    raw = _b64(value)
    if raw is None:
        raise MalformedSealedSecret(f"{where} is not standard base64", file=source)
    if len(raw) < 2:
        raise TruncatedBlob(f"{where} is truncated: {len(raw)} byte(s), shorter than its length prefix", file=source)
    n = int.from_bytes(raw[:2], "big")
    if n == 0:
        raise MalformedSealedSecret(f"{where} announces an empty RSA part", file=source)
    if len(raw) < 2 + n + _TAG_BYTES:
        raise TruncatedBlob(
            f"{where} is truncated: {len(raw)} bytes, but its prefix announces a {n}-byte RSA part "
            f"and an AES-GCM part of at least {_TAG_BYTES} bytes",
            file=source,
            hint="copy the whole value again",
        )
    return _Blob(raw[2 : 2 + n], raw[2 + n :])


class _BodyFailed(Exception):
    """The session key unwrapped under the label, but the AES-GCM part did not authenticate."""


def _attempt(blob: _Blob, keys: Sequence[rsa.RSAPrivateKey], label: bytes) -> bytes | None:
    """The plaintext if a key unwraps the session key under `label`; None if none does."""
    for key in keys:
        if (key.key_size + 7) // 8 != len(blob.wrapped):
            continue  # OAEP ciphertexts are exactly as long as the modulus
        try:
            session_key = key.decrypt(blob.wrapped, _oaep(label))
        except ValueError:
            continue
        if len(session_key) not in (16, 24, 32):
            raise _BodyFailed
        try:
            return AESGCM(session_key).decrypt(_NONCE, blob.body, None)
        except InvalidTag:
            raise _BodyFailed from None
    return None


def _diagnose(
    blob: _Blob,
    keys: Sequence[rsa.RSAPrivateKey],
    place: Place,
    alternates: Sequence[Place],
    where: str,
    source: str | None,
    *,
    others_open: bool,
    also: Sequence[str] = (),
) -> NoKeyCouldDecrypt:
    """Why a value does not open at `place`, as precisely as can be proven without guessing."""
    more = f"; {', '.join(also)} also failed" if also else ""
    sizes = sorted({key.key_size for key in keys})
    if 8 * len(blob.wrapped) not in {(s + 7) // 8 * 8 for s in sizes}:
        given = "/".join(map(str, sizes))
        return WrongKey(
            f"{where} was sealed for a {8 * len(blob.wrapped)}-bit RSA key; the {len(keys)} key(s) given "
            f"are {given}-bit{more}",
            file=source,
            hint=f"pass the controller key that was active when it was sealed ({_KEY_HINT})",
        )
    for alt in alternates:
        try:
            opened = _attempt(blob, keys, alt.label) is not None
        except _BodyFailed:
            opened = True  # the label unwrapped the session key: the place is proven either way
        if opened:
            return LabelMismatch(
                f"{where}: the label did not match: it was sealed for {alt.describe()}, "
                f"not for {place.describe()}{more}",
                file=source,
                hint="a sealed value only opens where it was sealed; seal it again for this place",
            )
    return NoKeyCouldDecrypt(
        f"{where}: no key could decrypt it with the label of {place.describe()}: it was sealed for "
        f"another name/namespace (the label did not match) or for a key not given{more}",
        file=source,
        hint="the other values here open with these keys, so it was most likely copied from another SealedSecret"
        if others_open
        else f"pass every controller key ({_KEY_HINT}), or check metadata.name and metadata.namespace",
    )


def open_value(
    value: str,
    label: bytes,
    keys: Sequence[rsa.RSAPrivateKey],
    *,
    where: str = "value",
    source: str | None = None,
) -> bytes:
    """One value's plaintext (the controller's HybridDecrypt, trying every key)."""
    if not keys:
        raise ControllerKeyError("no controller private key given", file=source, hint=_KEY_HINT)
    blob = _parse_blob(value, where, source)
    try:
        plaintext = _attempt(blob, keys, label)
    except _BodyFailed:
        raise _altered(where, source) from None
    if plaintext is None:
        place = Place("", "", "cluster-wide") if not label else _place_from_label(label)
        raise _diagnose(blob, keys, place, [], where, source, others_open=False)
    return plaintext


def _place_from_label(label: bytes) -> Place:
    text = label.decode("utf-8", "replace")
    if "/" in text:
        ns, name = text.split("/", 1)
        return Place(ns, name, "strict")
    return Place(text, "", "namespace-wide")


def _altered(where: str, source: str | None) -> AlteredValue:
    return AlteredValue(
        f"{where}: the key and label are right but AES-GCM authentication failed: the value was altered",
        file=source,
        hint="restore it from git, or seal it again",
    )


# --- SealedSecret objects ----------------------------------------------------------------------------------


def _mapping(value: Any, where: str, source: str | None, err: type[InputError]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise err(f"{where} must be a mapping", file=source)
    return value


def _str_map(value: Any, where: str, source: str | None, err: type[InputError]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _mapping(value, where, source, err).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise err(
                f"{format_path((*where.split('.'), str(k)))} must be a string",
                file=source,
                hint='quote it, e.g. "true"',
            )
        out[k] = v
    return out


def _opt_str(md: Mapping[str, Any], key: str, where: str, source: str | None, err: type[InputError]) -> str:
    v = md.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise err(f"{where}.{key} must be a string", file=source)
    return v


def _namespace(given: str, override: str | None, source: str | None, err: type[InputError]) -> str:
    if override is None or override == given:
        return given
    if given:
        raise err(
            f"metadata.namespace is {given!r}, but namespace {override!r} was asked for",
            file=source,
            hint="drop the namespace option, or fix metadata.namespace",
        )
    return override


def place_of(sealed: Mapping[str, Any], *, namespace: str | None = None, source: str | None = None) -> Place:
    """Where the controller will open `sealed`: its own metadata, never its template."""
    md = _mapping(sealed.get("metadata"), "metadata", source, MalformedSealedSecret)
    name = _opt_str(md, "name", "metadata", source, MalformedSealedSecret)
    if not name:
        raise MalformedSealedSecret("the SealedSecret has no metadata.name", file=source)
    ns = _namespace(
        _opt_str(md, "namespace", "metadata", source, MalformedSealedSecret), namespace, source, MalformedSealedSecret
    )
    scope = scope_of(_str_map(md.get("annotations"), "metadata.annotations", source, MalformedSealedSecret))
    return Place(ns, name, scope)


def _alternates(place: Place, template_md: Mapping[str, Any]) -> list[Place]:
    """Other places a value could have been sealed for: the template's name and namespace (kubeseal
    copies them there, and a move usually edits only the top-level metadata) and the other scopes."""
    spots = [(place.namespace, place.name)]
    t_ns, t_name = template_md.get("namespace"), template_md.get("name")
    if isinstance(t_ns, str) and isinstance(t_name, str) and (t_ns, t_name) != spots[0]:
        spots.append((t_ns, t_name))
    out: list[Place] = []
    seen = {place.label}
    for ns, name in spots:
        for scope in SCOPES:
            p = Place(
                "" if scope == "cluster-wide" else ns,
                name if scope == "strict" else "",
                scope,
            )
            if p.label not in seen:
                seen.add(p.label)
                out.append(p)
    return out


def unseal(
    sealed: Mapping[str, Any],
    private_key_pem_or_secret_yaml: bytes,
    *,
    namespace: str | None = None,
    source: str | None = None,
    key_source: str | None = None,
) -> dict[str, Any]:
    """Recovery-unseal: the Secret the controller would create from `sealed`, with `data` in base64."""
    keys = load_private_keys(private_key_pem_or_secret_yaml, source=key_source)
    return unseal_with_keys(sealed, keys, namespace=namespace, source=source)


def unseal_with_keys(
    sealed: Mapping[str, Any],
    keys: Sequence[rsa.RSAPrivateKey],
    *,
    namespace: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """As `unseal`, with keys already loaded (several key files: concatenate their lists).

    `namespace` stands for `kubectl apply -n` when the file has no metadata.namespace. All or nothing,
    like the controller: one value that does not open fails the whole object, and the error names it.
    """
    if not isinstance(sealed, Mapping):
        raise MalformedSealedSecret("is not a mapping", file=source)
    if sealed.get("apiVersion") != API_VERSION or sealed.get("kind") != KIND:
        raise MalformedSealedSecret(
            f"is a {sealed.get('kind')!r} of {sealed.get('apiVersion')!r}, not a {KIND} of {API_VERSION}",
            file=source,
        )
    if not keys:
        raise ControllerKeyError("no controller private key given", file=source, hint=_KEY_HINT)
    place = place_of(sealed, namespace=namespace, source=source)
    if "spec" not in sealed or not isinstance(sealed["spec"], Mapping):
        raise MalformedSealedSecret("spec must be a mapping", file=source)
    spec = sealed["spec"]
    if spec.get("data") is not None:
        if spec.get("encryptedData"):
            raise MalformedSealedSecret("spec has both encryptedData and the deprecated data", file=source)
        raise UnsupportedSealedSecret(
            "uses the deprecated v1 format (spec.data, one blob for the whole Secret)",
            file=source,
            hint="re-seal it with a current kubeseal first (kubeseal --re-encrypt)",
        )
    encrypted = _mapping(spec.get("encryptedData"), "spec.encryptedData", source, MalformedSealedSecret)
    template = _mapping(spec.get("template"), "spec.template", source, MalformedSealedSecret)
    t_md = _mapping(template.get("metadata"), "spec.template.metadata", source, MalformedSealedSecret)
    labels = _str_map(t_md.get("labels"), "spec.template.metadata.labels", source, MalformedSealedSecret)
    annotations = _str_map(t_md.get("annotations"), "spec.template.metadata.annotations", source, MalformedSealedSecret)
    s_type = _opt_str(template, "type", "spec.template", source, MalformedSealedSecret)
    immutable = template.get("immutable")
    if immutable is not None and not isinstance(immutable, bool):
        raise MalformedSealedSecret("spec.template.immutable must be true or false", file=source)
    literal = _template_data(template.get("data"), source)

    blobs: dict[str, _Blob] = {}
    for item, value in encrypted.items():
        if not isinstance(item, str):
            raise MalformedSealedSecret("spec.encryptedData has a key that is not a string", file=source)
        blobs[item] = _parse_blob(value, format_path(("spec", "encryptedData", item)), source)
    opened: dict[str, bytes] = {}
    failed: list[tuple[str, bool]] = []  # (item, authenticated body failed)
    for item, blob in blobs.items():
        try:
            plaintext = _attempt(blob, keys, place.label)
        except _BodyFailed:
            failed.append((item, True))
            continue
        if plaintext is None:
            failed.append((item, False))
        else:
            opened[item] = plaintext
    if failed:
        item, body_failed = failed[0]
        where = format_path(("spec", "encryptedData", item))
        if body_failed:
            raise _altered(where, source)
        also = [format_path(("spec", "encryptedData", i)) for i, _ in failed[1:]]
        raise _diagnose(
            blobs[item], keys, place, _alternates(place, t_md), where, source, others_open=bool(opened), also=also
        )

    data = {k: base64.b64encode(v).decode("ascii") for k, v in opened.items()}
    for k, v in literal.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = base64.b64encode(v.encode()).decode("ascii")
    metadata: dict[str, Any] = {}
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    if labels:
        metadata["labels"] = dict(sorted(labels.items()))
    metadata["name"] = place.name
    if place.namespace:
        metadata["namespace"] = place.namespace
    secret: dict[str, Any] = {"apiVersion": "v1", "data": dict(sorted(data.items()))}
    if immutable is not None:
        secret["immutable"] = immutable
    secret.update({"kind": "Secret", "metadata": metadata, "type": s_type or "Opaque"})
    return secret


def _template_data(value: Any, source: str | None) -> dict[str, str | None]:
    """`spec.template.data`: literal entries are kept, null entries remove a key; Go templates are refused
    (rendering text/template + sprig faithfully is the controller's job, not ours)."""
    out: dict[str, str | None] = {}
    for k, v in _mapping(value, "spec.template.data", source, MalformedSealedSecret).items():
        where = format_path(("spec", "template", "data", str(k)))
        if v is not None and not isinstance(v, str):
            raise MalformedSealedSecret(f"{where} must be a string", file=source)
        if v is not None and "{{" in v:
            raise UnsupportedSealedSecret(
                f"{where} is a Go template; sealer does not render templates",
                file=source,
                hint="kubeseal --recovery-unseal renders it; or move the value into encryptedData",
            )
        out[str(k)] = v
    return out


# --- sealing -------------------------------------------------------------------------------------------------


def seal(
    secret: Mapping[str, Any],
    cert_pem: bytes,
    scope: Scope | None = None,
    now: datetime | None = None,
    *,
    namespace: str | None = None,
    allow_empty: bool = False,
    source: str | None = None,
    cert_source: str | None = None,
) -> dict[str, Any]:
    """A SealedSecret for the controller holding `cert_pem`'s key, in kubeseal's exact format.

    `now` is the time the certificate's expiry is checked against (naive means UTC); the other
    arguments are those of `seal_with_key`.
    """
    key = load_certificate(cert_pem, now=now, source=cert_source)
    return seal_with_key(secret, key, scope, namespace=namespace, allow_empty=allow_empty, source=source)


def seal_with_key(
    secret: Mapping[str, Any],
    public_key: rsa.RSAPublicKey,
    scope: Scope | None = None,
    *,
    namespace: str | None = None,
    allow_empty: bool = False,
    source: str | None = None,
) -> dict[str, Any]:
    """As `seal`, with the key already loaded (and checked) by `load_certificate`.

    `scope` None takes it from the Secret's scope annotations (strict without any), as kubeseal does
    without --scope; an explicit scope rewrites those annotations, strict included. `namespace` stands
    for the kubeconfig namespace kubeseal uses when the Secret has none. Server-set metadata (uid,
    resourceVersion, ownerReferences, ...) and the last-applied annotations are left out, as kubeseal
    does; `creationTimestamp: null` is written as Go writes an unset time.
    """
    err = InvalidSecret
    if not isinstance(secret, Mapping):
        raise err("is not a mapping", file=source)
    if secret.get("kind") != "Secret" or secret.get("apiVersion", "v1") != "v1":
        raise err(f"is a {secret.get('kind')!r} of {secret.get('apiVersion')!r}, not a v1 Secret", file=source)
    if scope is not None and scope not in SCOPES:
        raise err(f"scope {scope!r} is not one of {', '.join(SCOPES)}", file=source)
    md = _mapping(secret.get("metadata"), "metadata", source, err)
    name = _opt_str(md, "name", "metadata", source, err)
    if not name:
        raise err("missing metadata.name in the Secret", file=source, hint="SealedSecrets are bound to a name")
    ns = _namespace(_opt_str(md, "namespace", "metadata", source, err), namespace, source, err)
    annotations = _str_map(md.get("annotations"), "metadata.annotations", source, err)
    labels = _str_map(md.get("labels"), "metadata.labels", source, err)
    if scope is None:
        scope = scope_of(annotations)
    else:
        annotations = _scope_annotations(annotations, scope)
    if scope != "cluster-wide" and not ns:
        raise err(
            f"has no metadata.namespace; a {scope} SealedSecret is bound to one",
            file=source,
            hint="add metadata.namespace, pass a namespace, or use the cluster-wide scope",
        )
    s_type = secret.get("type") or ""
    if not isinstance(s_type, str):
        raise err("type must be a string", file=source)
    immutable = secret.get("immutable")
    if immutable is not None and not isinstance(immutable, bool):
        raise err("immutable must be true or false", file=source)

    items: dict[str, bytes] = {}
    for section in ("data", "stringData"):  # stringData second: it wins on a shared key, as in kubeseal
        for k, v in _mapping(secret.get(section), section, source, err).items():
            where = format_path((section, str(k)))
            if not isinstance(k, str) or not _SECRET_KEY.fullmatch(k) or len(k) > 253:
                raise err(f"{where}: a Secret key is 1-253 of A-Z a-z 0-9 - _ .", file=source)
            if v is None:
                items[k] = b""
            elif not isinstance(v, str):
                raise err(f"{where} must be a string, not {_kind_of(v)}", file=source, hint='quote it, e.g. "5432"')
            elif section == "stringData":
                items[k] = v.encode("utf-8")
            else:
                raw = _b64(v)
                if raw is None:
                    raise err(f"{where} is not valid base64", file=source, hint="put plain text under stringData")
                items[k] = raw
    if not items and not allow_empty:
        raise err(
            "has no data or stringData; kubeseal refuses that as a likely mistake",
            file=source,
            hint="allow an empty SealedSecret explicitly if that is what you want",
        )

    label = encryption_label(ns, name, scope)
    encrypted = {k: seal_value(public_key, v, label) for k, v in sorted(items.items())}
    t_md: dict[str, Any] = {}
    kept = {k: v for k, v in annotations.items() if k not in _LAST_APPLIED}
    if kept:
        t_md["annotations"] = dict(sorted(kept.items()))
    t_md["creationTimestamp"] = None
    if labels:
        t_md["labels"] = dict(sorted(labels.items()))
    t_md["name"] = name
    if ns:
        t_md["namespace"] = ns
    template: dict[str, Any] = {}
    if immutable is not None:
        template["immutable"] = immutable
    template["metadata"] = t_md
    if s_type:
        template["type"] = s_type
    ss_md: dict[str, Any] = {}
    scope_ann = _scope_annotations({}, scope)
    if scope_ann:
        ss_md["annotations"] = scope_ann
    ss_md["creationTimestamp"] = None
    ss_md["name"] = name
    if ns:
        ss_md["namespace"] = ns
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": ss_md,
        "spec": {"encryptedData": encrypted, "template": template},
    }


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int | float):
        return "a number"
    return "a mapping" if isinstance(v, Mapping) else "a list" if isinstance(v, list) else "a non-string value"


# --- YAML in and out --------------------------------------------------------------------------------------


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The mapping documents of a YAML or JSON file (kubeseal writes JSON by default), with the items
    of a `kind: List` taken out of it. Nothing is constructed from custom tags."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        raw = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MalformedSealedSecret(f"malformed YAML or JSON{at}", file=source) from None
    except (RecursionError, ValueError, TypeError):
        raise MalformedSealedSecret("malformed YAML or JSON", file=source) from None
    docs: list[dict[str, Any]] = []
    for i, doc in enumerate(raw):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise MalformedSealedSecret(f"document {i} is not a mapping", file=source)
        if doc.get("kind") == "List" or (isinstance(doc.get("kind"), str) and doc["kind"].endswith("List")):
            items = doc.get("items") or []
            if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
                raise MalformedSealedSecret(f"document {i}: items must be a list of mappings", file=source)
            docs.extend(items)
        else:
            docs.append(doc)
    return docs


def to_yaml(obj: Mapping[str, Any]) -> str:
    """One object as kubeseal -o yaml lays it out: `---` first, keys sorted (they are built sorted),
    block style, long values never folded, an unset time as `null`."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 1 << 20
    yaml.explicit_start = True
    out = io.StringIO()
    yaml.dump(_plain(obj), out)
    return out.getvalue()


def _plain(v: Any) -> Any:
    """Plain dicts and lists, so the dumper never writes anchors for shared sub-objects."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v
