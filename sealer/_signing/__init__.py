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

from .content import MAX_NODES, STDIN, content_bytes, repo_path, tree_of
from .keys import (
    MAX_KEY_FILE,
    PUBLIC_HRP,
    SECRET_HRP,
    SignerKey,
    SignerPublic,
    check_name,
    parse_signer_public,
    parse_signer_secret,
    read_signer_file,
    signer_kid,
    write_signer_file,
)
from .policy import SignatureError, SignaturePolicy
from .write import Signing, refuse_unvouched, resign, sign_document, signing_for, vouch

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
