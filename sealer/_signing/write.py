"""Signing on write: `--sign-with` on seal, set and reseal, and the stale-signature rule.

A signer vouches only for what it knows: `--sign-with` first checks the signature a document
already has, and signs only documents whose old signature verifies, or that hold no sealed value
but the ones this run sealed from plaintext. Anything else (a token edited, added or replaced
after signing, an unsigned document of someone else's tokens) is refused, naming the file and
the document, and nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SealerError, UsageError
from .content import STDIN, content_bytes, repo_path
from .policy import SignatureError, SignaturePolicy

if TYPE_CHECKING:
    from .._config import Config
    from .._document import Document, Meta, SealedFile, Signature
    from .keys import SignerKey


@dataclass(frozen=True)
class Signing:
    """How a write treats signatures. With `key`, every document of the file is signed by that
    allowed signer, once its old signature is checked (see the module). Without it, a change to a
    signed document is refused, unless `drop` says to remove the signature it would invalidate: a
    stale signature is never left behind silently.

    `policy` holds the signers whose old signatures count (default: `key` alone); `root` is the
    repository root that signed paths are relative to (`content.repo_path`)."""

    key: SignerKey | None = None
    name: str = ""  # the key's signer name in the environment's registry
    drop: bool = False
    policy: SignaturePolicy | None = None
    root: str | None = None
    path: str | None = None  # the file's repository-relative path, which the signature covers


def signing_for(
    cfg: Config, env: str, key: SignerKey | None, *, drop: bool = False, path: str | None = None
) -> Signing:
    """Check that `key` is an allowed signer of `env` (signing with any other key is a mistake that
    check and unseal would refuse later) and bind its registered name."""
    root = str(cfg.root)
    if key is None:
        return Signing(drop=drop, root=root, path=path)
    if drop:
        raise UsageError("--sign-with and --drop-signature exclude each other")
    reg = cfg.registry(env)
    record = reg.find_signer(key.kid)
    if record is None:
        raise UsageError(
            f"signer key {key.kid} is not an allowed signer of {env}",
            file=str(reg.path),
            hint=f"a custodian adds it: sealer signers add {env} NAME {key.public.text}",
        )
    policy = SignaturePolicy.of(reg, cfg.environments[env].policy)
    return Signing(key, record.name, policy=policy, root=root, path=path)


def sign_document(
    doc: Document, meta: Meta, key: SignerKey, name: str, *, path: str, text: str, source: str
) -> Signature:
    """The signature of `doc` (read from `text`, the file at repository path `path`) as it will be
    with `meta`, ignoring any signature already in it.

    Ed25519 is deterministic: signing unchanged content again gives the same bytes, so re-signing
    an unchanged document changes nothing in the file."""
    import base64

    from .._document import Signature

    sig = key.sign(content_bytes(doc, meta, name, key.kid, path=path, text=text, source=source))
    return Signature(name, key.kid, base64.urlsafe_b64encode(sig).rstrip(b"=").decode())


def resign(
    old: str,
    new: str,
    source: str,
    *,
    env: str,
    signing: Signing | None,
    fresh: bool = True,
    path: str | None = None,
) -> tuple[str, int, list[int]]:
    """Bring the signatures of `new` (the edited `old`) in line with `signing`.

    `fresh`: the tokens of `new` that are not in `old` were sealed from plaintext by this run
    (seal, set). A reseal passes False: its new tokens hold the old tokens' values.

    Returns the text, the number of documents signed and the documents whose signature was dropped.
    Files without signatures cost one substring test unless a key is given."""
    signing = signing or Signing()
    if signing.key is None and "signature:" not in old:
        return new, 0, []
    from .._document import Edit, Meta, apply_edits, load, meta_edit

    if signing.key is not None and source == STDIN:
        raise UsageError(
            "a document read from stdin cannot be signed: its signature names the file's path",
            hint="seal the file in place: sealer seal FILE --sign-with KEY",
        )
    path = path or signing.path or repo_path(source, signing.root)
    after = load(new, source)
    before_file = load(old, source)
    before = {d.index: d for d in before_file.docs}
    edits: list[Edit] = []
    signed = 0
    dropped: list[int] = []
    if signing.key is not None:
        _vouch(before_file, after if fresh else None, signing, env=env, path=path)
    for doc in after.docs:
        meta = doc.meta
        if signing.key is not None:
            if meta is None:
                from .._seal import _scope_for

                meta = Meta(1, env, _scope_for(doc, None, source))
            signature = sign_document(doc, meta, signing.key, signing.name, path=path, text=new, source=source)
            target_meta = dataclasses.replace(meta, signature=signature)
            signed += 1
        else:
            if meta is None or meta.signature is None:
                continue
            sig = meta.signature
            prev = before.get(doc.index)
            if (
                prev is not None
                and prev.meta is not None
                and prev.meta.signature == sig
                and content_bytes(prev, prev.meta, sig.signer, sig.key, path=path, text=old, source=source)
                == content_bytes(doc, meta, sig.signer, sig.key, path=path, text=new, source=source)
            ):
                continue  # this document did not change: its signature still holds
            if not signing.drop:
                raise UsageError(
                    f"document {doc.index} is signed by {sig.signer!r}; this change would invalidate the signature",
                    file=source,
                    hint="pass --sign-with KEY to sign it again, or --drop-signature to remove the signature",
                )
            target_meta = dataclasses.replace(meta, signature=None)
            dropped.append(doc.index)
        m = meta_edit(new, doc, target_meta)
        if m is not None:
            edits.append(m)
    return (apply_edits(new, edits) if edits else new), signed, dropped


def vouch(text: str, source: str, signing: Signing, *, env: str, path: str | None = None) -> None:
    """Refuse, before anything is written, to sign a file as it is (a reseal: no value of it is
    sealed from plaintext by this run) unless each of its documents is vouched for (see `_vouch`)."""
    from .._document import load

    _vouch(load(text, source), None, signing, env=env, path=path or repo_path(source, signing.root))


def refuse_unvouched(files: Sequence[tuple[str, str, Signing, str]]) -> None:
    """`vouch` each (file, source, signing, env) before a reseal writes any of them; one error
    naming the first file refused and how many others are."""
    from .._fsio import read_text

    refused: list[SignatureError] = []
    for name, source, signing, env in files:
        try:
            vouch(read_text(name), source, signing, env=env, path=source)  # source: the repo-relative path
        except SignatureError as e:
            refused.append(e)
        except SealerError:
            pass  # unreadable or malformed: the reseal of that file fails and says so, as without a key
    if refused:
        first = refused[0]
        others = [str(e.file) for e in refused[1:]]
        more = f" ({len(others)} more file(s) refused: {', '.join(others[:3])}{' …' if len(others) > 3 else ''})"
        raise SignatureError(
            first.message + (more if others else ""), code=first.code, file=first.file, hint=first.hint
        )


def _vouch(before: SealedFile, after: SealedFile | None, signing: Signing, *, env: str, path: str) -> None:
    """Each document of `before` must be vouched for before `signing` signs its successor in
    `after`: its signature verifies (sealer.sig.v2, or v1 to renew it), or it is unsigned and
    holds no sealed value. Tokens of `after` that `before` does not hold were sealed from
    plaintext by this run (`after` is None when there are none): the old signature is then also
    checked over the document without the plaintext values they replace."""
    assert signing.key is not None
    policy = signing.policy or SignaturePolicy(env, False, ((signing.name, signing.key.kid, signing.key.public.text),))
    old_tokens = {leaf.text for _doc, leaf in before.all_leaves() if leaf.sealed}
    new_docs = {d.index: d for d in after.docs} if after is not None else {}
    for doc in before.docs:
        successor = new_docs.get(doc.index)
        mine = successor.leaves if successor is not None else []
        fresh = {leaf.path for leaf in mine if leaf.sealed and leaf.text not in old_tokens}
        sig = doc.meta.signature if doc.meta is not None else None
        if sig is not None:
            assert doc.meta is not None
            omit = [id(leaf.node) for leaf in doc.leaves if not leaf.sealed and leaf.path in fresh]
            verdict, problem = policy.judge(
                doc, doc.meta, sig, path=path, text=before.text, source=before.source, omit=omit
            )
            if verdict:
                continue  # v2, or v1 (renewed now)
            assert problem is not None
            raise SignatureError(
                f"refusing to sign: {problem.message}",
                code="unvouched",
                file=before.source,
                hint="nothing was written; restore the signed version from git and find out who changed it",
            )
        theirs = [leaf for leaf in doc.leaves if leaf.sealed and leaf.path not in fresh]
        if theirs:
            from .._format import format_path

            raise SignatureError(
                f"refusing to sign: document {doc.index} is not signed and holds sealed values this run did not"
                f" seal (e.g. {format_path(theirs[0].path)}); signing would vouch for someone else's values",
                code="unvouched",
                file=before.source,
                hint="nothing was written; to sign them, seal them again from plaintext in one run with --sign-with",
            )
