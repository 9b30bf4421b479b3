"""Checking signatures: an environment's allowed signers, and whether it requires a signature."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UnsealError

if TYPE_CHECKING:
    from .._config import Policy
    from .._document import Document, Meta, SealedFile, Signature
    from .._registry import Registry

BAD = "does not verify (the document was edited, or moved or copied from another file)"


class SignatureError(UnsealError):
    """A document's signature is missing where required, by an unknown signer, or does not match.

    An UnsealError: the document is refused exactly as a value that does not open is. `code` says
    which (`unsigned`, `unknown-signer`, `bad-signature`, `old-signature`, and when signing,
    `unvouched`), for `sealer check --output json`."""

    def __init__(self, message: str, *, code: str, file: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, file=file, hint=hint)
        self.code = code


@dataclass(frozen=True)
class SignaturePolicy:
    """What an environment accepts: its allowed signers, and whether a signature is required.

    Plain data (picklable), so the controller can hand it to worker processes. `root` is the
    sealer repository's root: a signature names the file's path relative to it (`repo_path`)."""

    env: str
    required: bool
    signers: tuple[tuple[str, str, str], ...]  # (name, key id, sealer-signer1… public key)
    root: str | None = None

    @classmethod
    def of(cls, registry: Registry, policy: Policy) -> SignaturePolicy:
        signers = tuple((s.name, s.kid, s.key) for s in registry.signers)
        root = str(registry.path.parent.parent)  # keys/ENV.yaml lives at the root
        return cls(registry.env, policy.require_signature, signers, root)

    def check(self, sf: SealedFile, *, path: str | None = None) -> None:
        """Raise on the first document that fails; see `problems`."""
        for problem in self.problems(sf, path=path):
            raise problem

    def problems(self, sf: SealedFile, *, path: str | None = None) -> list[SignatureError]:
        """Every signature problem of a sealed file.

        A present signature must verify against an allowed signer, required or not: a signature
        that cannot be checked would only give false confidence. With `required`, every document of
        a file of the environment must be signed, plaintext files included (unseal hands out all of
        them). `path` is the file's repository-relative path: the repository's doors pass it
        (else `repo_path` reads it off the name)."""
        if not self.required and not any(d.meta is not None or any(leaf.sealed for leaf in d.leaves) for d in sf.docs):
            return []  # required or not, a plaintext file is never handed out unsigned: see the docstring
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
            if path is None:
                from .content import repo_path  # a signed document: now the signed bytes matter

                path = repo_path(sf.source, self.root)
            problem = self.verify(doc, doc.meta, sig, path=path, text=sf.text, source=sf.source)
            if problem is not None:
                out.append(problem)
        return out

    def verify(
        self, doc: Document, meta: Meta, sig: Signature, *, path: str, text: str, source: str
    ) -> SignatureError | None:
        """None when `sig` is a valid sealer.sig.v2 signature of the document by an allowed signer."""
        return self.judge(doc, meta, sig, path=path, text=text, source=source)[1]

    def judge(
        self,
        doc: Document,
        meta: Meta,
        sig: Signature,
        *,
        path: str,
        text: str,
        source: str,
        omit: Collection[int] = (),
    ) -> tuple[str, SignatureError | None]:
        """("v2", None) for a valid signature; ("v1", error) for a valid one in the old format
        (which signing may renew, and nothing else accepts); ("", error) otherwise. With `omit`,
        the document without those nodes counts too (see `content.tree_of`)."""
        from .content import content_bytes

        allowed = next((s for s in self.signers if s[1] == sig.key), None)
        if allowed is None or allowed[0] != sig.signer:
            listed = f"; key {sig.key} is listed as {allowed[0]!r}" if allowed else ""
            return "", SignatureError(
                f"document {doc.index} is signed by {sig.signer!r} (key {sig.key}), who is not an allowed signer"
                f" of {self.env}{listed}",
                code="unknown-signer",
                file=source,
                hint=f"allowed signers are listed in keys/{self.env}.yaml; see: sealer signers list",
            )
        import base64

        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        raw = base64.urlsafe_b64decode(sig.sig + "==")
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != sig.sig:
            return "", SignatureError(
                f"document {doc.index}: the signature is not canonical base64url",
                code="bad-signature",
                file=source,
                hint="sign it again",
            )
        from .keys import parse_signer_public

        key = VerifyKey(parse_signer_public(allowed[2]).raw)
        variants: list[Collection[int]] = [(), omit] if omit else [()]
        for v1 in (False, True):
            for left_out in variants:
                content = content_bytes(
                    doc, meta, sig.signer, sig.key, path=path, text=text, source=source, omit=left_out, v1=v1
                )
                try:
                    key.verify(content, raw)
                except BadSignatureError:
                    continue
                if not v1:
                    return "v2", None
                return "v1", SignatureError(
                    f"document {doc.index}: the signature by {sig.signer!r} is in the old sealer.sig.v1 format,"
                    " which does not cover the file's path or how values are written; it no longer counts",
                    code="old-signature",
                    file=source,
                    hint="an allowed signer signs it again: sealer seal FILE --sign-with KEY"
                    " (or, when re-sealing, sealer reseal --sign-with KEY)",
                )
        return "", SignatureError(
            f"document {doc.index}: the signature by {sig.signer!r} {BAD}",
            code="bad-signature",
            file=source,
            hint="restore the file from git, or have an allowed signer sign it again with --sign-with",
        )
