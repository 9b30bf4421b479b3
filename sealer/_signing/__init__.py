"""Signed sealing: who sealed a document, not only that it was sealed to the right keys.

Anyone holding an environment's public key can seal any value, so a token proves nothing about its
author. A *signer* is an Ed25519 key (pynacl); keys/ENV.yaml lists an environment's allowed signers,
and its policy may require every sealed document to carry a signature by one of them.

The signature covers the document as data, not as text: the file's repository-relative path, the
sealer: block's version, env and scope, the signer's name and key id, and every scalar with its
path, resolved tag and style class (plain, quoted or tagged: what YAML 1.1 readers see depends on
it), sealed values as their tokens, plaintext as it is. A value added, removed, moved or edited, a
document copied to another file, or `"off"` unquoted breaks it; comments, key order, indentation
and the choice of quotes do not. The bytes are laid out by sealer._format.signature
(docs/format.md §6).

- `keys`: signer keys and key files;
- `content`: a YAML document as the neutral tree that is signed, and the path a signature names;
- `policy`: checking signatures (`check`, `unseal`, the controller);
- `write`: `--sign-with` and the stale-signature rule (seal, set, reseal).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> submodule. Loaded on first use: opening a file needs `policy` only, and only a signed
# document needs `content` and the message bytes; `write` is for seal, set and reseal.
_WHERE = {
    "MAX_NODES": "content",
    "STDIN": "content",
    "content_bytes": "content",
    "repo_path": "content",
    "tree_of": "content",
    "MAX_KEY_FILE": "keys",
    "PUBLIC_HRP": "keys",
    "SECRET_HRP": "keys",
    "SignerKey": "keys",
    "SignerPublic": "keys",
    "check_name": "keys",
    "parse_signer_public": "keys",
    "parse_signer_secret": "keys",
    "read_signer_file": "keys",
    "signer_kid": "keys",
    "write_signer_file": "keys",
    "SignatureError": "policy",
    "SignaturePolicy": "policy",
    "Signing": "write",
    "refuse_unvouched": "write",
    "resign": "write",
    "sign_document": "write",
    "signing_for": "write",
    "vouch": "write",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .content import MAX_NODES as MAX_NODES
    from .content import STDIN as STDIN
    from .content import content_bytes as content_bytes
    from .content import repo_path as repo_path
    from .content import tree_of as tree_of
    from .keys import MAX_KEY_FILE as MAX_KEY_FILE
    from .keys import PUBLIC_HRP as PUBLIC_HRP
    from .keys import SECRET_HRP as SECRET_HRP
    from .keys import SignerKey as SignerKey
    from .keys import SignerPublic as SignerPublic
    from .keys import check_name as check_name
    from .keys import parse_signer_public as parse_signer_public
    from .keys import parse_signer_secret as parse_signer_secret
    from .keys import read_signer_file as read_signer_file
    from .keys import signer_kid as signer_kid
    from .keys import write_signer_file as write_signer_file
    from .policy import SignatureError as SignatureError
    from .policy import SignaturePolicy as SignaturePolicy
    from .write import Signing as Signing
    from .write import refuse_unvouched as refuse_unvouched
    from .write import resign as resign
    from .write import sign_document as sign_document
    from .write import signing_for as signing_for
    from .write import vouch as vouch

__all__ = [
    "MAX_KEY_FILE",
    "MAX_NODES",
    "PUBLIC_HRP",
    "SECRET_HRP",
    "STDIN",
    "SignatureError",
    "SignaturePolicy",
    "SignerKey",
    "SignerPublic",
    "Signing",
    "check_name",
    "content_bytes",
    "parse_signer_public",
    "parse_signer_secret",
    "read_signer_file",
    "refuse_unvouched",
    "repo_path",
    "resign",
    "sign_document",
    "signer_kid",
    "signing_for",
    "tree_of",
    "vouch",
    "write_signer_file",
]
