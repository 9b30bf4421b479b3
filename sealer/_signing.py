"""Signed sealing: who sealed a document, not only that it was sealed to the right keys.

Anyone holding an environment's public key can seal any value, so a token proves nothing about its
author. A *signer* is an Ed25519 key (pynacl); keys/ENV.yaml lists an environment's allowed signers,
and its policy may require every sealed document to carry a signature by one of them.

The signature covers the document as data, not as text: every scalar with its path and resolved
tag (sealed values as their tokens, plaintext as it is), plus the sealer: block's version, env and
scope and the signer's name and key id. A value added, removed, moved or edited breaks it; comments,
key order, quoting and indentation do not. The exact bytes are in docs/format.md §6.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _bech32
from ._fsio import read_private_file
from .errors import InputError, KeyFormatError, UnsealError, UsageError

if TYPE_CHECKING:
    from ._config import Policy
    from ._document import Document, Meta, SealedFile, Signature
    from ._registry import Registry

PUBLIC_HRP = "sealer-signer"
SECRET_HRP = "SEALER-SIGNER-SECRET-KEY-"  # noqa: S105  pragma: allowlist secret (an encoding prefix)
DOMAIN = b"sealer.sig.v1\x00"
MAX_KEY_FILE = 64 * 1024
MAX_NODES = 200_000


class SignatureError(UnsealError):
    """A document's signature is missing where required, by an unknown signer, or does not match.

    An UnsealError: the document is refused exactly as a value that does not open is. `code` says
    which (`unsigned`, `unknown-signer`, `bad-signature`), for `sealer check --output json`."""

    def __init__(self, message: str, *, code: str, file: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, file=file, hint=hint)
        self.code = code


# --- keys ------------------------------------------------------------------------------------------


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
        raise KeyFormatError("not UTF-8 text", file=name) from None
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


# --- the signed content ----------------------------------------------------------------------------


def content_bytes(doc: Document, meta: Meta, signer: str, key: str, source: str) -> bytes:
    """The exact bytes a document's signature covers (docs/format.md §6)."""
    out = [
        DOMAIN,
        _lp(signer.encode()),
        _lp(key.encode()),
        _lp(str(meta.version).encode()),
        _lp(meta.env.encode()),
        _lp(meta.scope.encode()),
    ]
    budget = [MAX_NODES]
    entries = [
        _node(k, budget, set(), source) + _node(v, budget, set(), source)
        for k, v in doc.root.value
        if not (k.id == "scalar" and k.value == "sealer")
    ]
    out.append(b"m" + len(entries).to_bytes(4, "big") + b"".join(sorted(entries)))
    return b"".join(out)


def _node(node: Any, budget: list[int], stack: set[int], source: str) -> bytes:
    budget[0] -= 1
    if budget[0] < 0:
        raise InputError(f"more than {MAX_NODES} nodes once aliases are expanded", file=source)
    if node.id == "scalar":
        return b"s" + _lp(str(node.tag).encode()) + _lp(str(node.value).encode())
    if id(node) in stack:
        raise InputError("a recursive alias cannot be signed", file=source)
    stack.add(id(node))
    try:
        if node.id == "sequence":
            items = [_node(v, budget, stack, source) for v in node.value]
            return b"l" + len(items).to_bytes(4, "big") + b"".join(items)
        entries = [_node(k, budget, stack, source) + _node(v, budget, stack, source) for k, v in node.value]
        return b"m" + len(entries).to_bytes(4, "big") + b"".join(sorted(entries))
    finally:
        stack.discard(id(node))


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def sign_document(doc: Document, meta: Meta, key: SignerKey, name: str, source: str) -> Signature:
    """The signature of `doc` as it will be with `meta` (ignoring any signature already in it).

    Ed25519 is deterministic: signing unchanged content again gives the same bytes, so re-signing
    an unchanged document changes nothing in the file."""
    import base64

    from ._document import Signature

    sig = key.sign(content_bytes(doc, meta, name, key.kid, source))
    return Signature(name, key.kid, base64.urlsafe_b64encode(sig).rstrip(b"=").decode())


# --- checking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignaturePolicy:
    """What an environment accepts: its allowed signers, and whether a signature is required.

    Plain data (picklable), so the controller can hand it to worker processes."""

    env: str
    required: bool
    signers: tuple[tuple[str, str, str], ...]  # (name, key id, sealer-signer1… public key)

    @classmethod
    def of(cls, registry: Registry, policy: Policy) -> SignaturePolicy:
        return cls(registry.env, policy.require_signature, tuple((s.name, s.kid, s.key) for s in registry.signers))

    def check(self, sf: SealedFile) -> None:
        """Raise on the first document that fails; see `problems`."""
        for problem in self.problems(sf):
            raise problem

    def problems(self, sf: SealedFile) -> list[SignatureError]:
        """Every signature problem of a sealed file.

        A present signature must verify against an allowed signer, required or not: a signature
        that cannot be checked would only give false confidence. With `required`, every document of
        a file that holds sealed content must be signed (unseal renders all of them)."""
        if not any(d.meta is not None or any(leaf.sealed for leaf in d.leaves) for d in sf.docs):
            return []
        out = []
        for doc in sf.docs:
            sig = doc.meta.signature if doc.meta is not None else None
            if sig is None:
                if self.required:
                    out.append(
                        SignatureError(
                            f"document {doc.index} is not signed, and environment {self.env} requires a signature"
                            " (policy require_signature)",
                            code="unsigned",
                            file=sf.source,
                            hint="an allowed signer signs it: sealer seal FILE --sign-with KEY",
                        )
                    )
                continue
            assert doc.meta is not None
            problem = self.verify(doc, doc.meta, sig, sf.source)
            if problem is not None:
                out.append(problem)
        return out

    def verify(self, doc: Document, meta: Meta, sig: Signature, source: str) -> SignatureError | None:
        allowed = next((s for s in self.signers if s[1] == sig.key), None)
        if allowed is None or allowed[0] != sig.signer:
            listed = f"; key {sig.key} is listed as {allowed[0]!r}" if allowed else ""
            return SignatureError(
                f"document {doc.index} is signed by {sig.signer!r} (key {sig.key}), who is not an allowed signer"
                f" of {self.env}{listed}",
                code="unknown-signer",
                file=source,
                hint=f"allowed signers are listed in keys/{self.env}.yaml; see: sealer signers list",
            )
        import base64

        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        public = parse_signer_public(allowed[2])
        raw = base64.urlsafe_b64decode(sig.sig + "==")
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != sig.sig:
            return SignatureError(
                f"document {doc.index}: the signature is not canonical base64url",
                code="bad-signature",
                file=source,
                hint="sign it again",
            )
        try:
            VerifyKey(public.raw).verify(content_bytes(doc, meta, sig.signer, sig.key, source), raw)
        except BadSignatureError:
            return SignatureError(
                f"document {doc.index}: the signature by {sig.signer!r} does not match the content (a value was"
                " added, removed, moved or edited after signing)",
                code="bad-signature",
                file=source,
                hint="restore the file from git, or have an allowed signer sign it again with --sign-with",
            )
        return None


def check_name(name: str) -> str:
    from ._document import SIGNER_NAME

    if not SIGNER_NAME.fullmatch(name):
        raise UsageError(
            f"bad signer name {name!r}",
            hint="letters, digits and . _ @ + - (up to 64 characters), e.g. alice or alice@example.com",
        )
    return name
