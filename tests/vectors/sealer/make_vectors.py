"""Make the sealer.v1 test vectors of this folder (run once; the outputs are committed).

    .venv/bin/python tests/vectors/sealer/make_vectors.py

Keys are derived from fixed labels, so they are the same on every run; HPKE is randomised, so the
tokens are not: running this again rewrites every token (and the vectors stay valid). Every private
key here is a PUBLIC TEST KEY that protects nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from sealer._document import load
from sealer._format import Context, context_bytes, format_path
from sealer._keys import Identity
from sealer._keys.hybrid import HybridIdentity
from sealer._keys.ssh import SshEd25519Identity
from sealer._keys.x25519 import X25519Identity
from sealer._seal import seal_text
from sealer._unseal import UNCHECKED, unseal_file

HERE = Path(__file__).parent
SEALED_AT = 1764028800  # 2025-11-25T00:00:00Z
WARNING = (
    "PUBLIC TEST KEYS: every private key in this file is published on purpose, as a test vector."
    " It protects nothing. Never use it, or anything sealed to it, for a real secret."
)
DERIVATION = {
    "x25519": "the X25519 scalar",
    "mlkem768x25519": "the 32-byte X-Wing seed",
    "ssh-ed25519": "the 32-byte Ed25519 seed (RFC 8032 private key)",
}

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: payments
stringData:
  {key}: {value}
"""
VALUES = """\
# Helm-style values: not a manifest, so scope env binds no namespace or name
servers:
  - token: {value}
"""

# name, kinds (in token order), document template, its fields, scope, the path, plaintext
VECTORS: list[dict[str, Any]] = [
    {
        "name": "x25519",
        "description": "one age X25519 recipient: the payload is HPKE output directly (§5, one kid)",
        "kinds": ["x25519"],
        "document": SECRET,
        "fields": {"name": "db", "key": "password"},
        "scope": None,
        "path": ("stringData", "password"),
        "plaintext": "correct horse battery staple 456",
    },
    {
        "name": "x25519-multi",
        "description": "two age X25519 recipients: a data key wrapped to each, then the body (§5, several kids)",
        "kinds": ["x25519", "x25519"],
        "document": VALUES,
        "fields": {},
        "scope": None,
        "path": ("servers", 0, "token"),
        "plaintext": "tok-4f9a2c1e-two-recipients",
    },
    {
        "name": "mlkem768x25519",
        "description": "one post-quantum ML-KEM-768 + X25519 (X-Wing) recipient, age1pq1 (§7.2)",
        "kinds": ["mlkem768x25519"],
        "document": SECRET,
        "fields": {"name": "api", "key": "apiKey"},
        "scope": None,
        "path": ("stringData", "apiKey"),
        "plaintext": "pq-api-key-0123456789abcdef",
    },
    {
        "name": "mlkem768x25519-multi",
        "description": "a post-quantum environment key and a post-quantum recovery key, scope namespace (§7.2, §5)",
        "kinds": ["mlkem768x25519", "mlkem768x25519"],
        "document": SECRET,
        "fields": {"name": "db", "key": "password"},
        "scope": "namespace",
        "path": ("stringData", "password"),
        "plaintext": "hunter2-but-post-quantum",
    },
    {
        "name": "ssh-ed25519",
        "description": "one ssh-ed25519 recipient, converted to X25519 without a tweak (§7.3)",
        "kinds": ["ssh-ed25519"],
        "document": SECRET,
        "fields": {"name": "db", "key": '"break.glass"'},
        "scope": None,
        "path": ("stringData", "break.glass"),
        "plaintext": "opened by the custodian's ssh key",
    },
]


def secret_for(vector: str, index: int) -> tuple[str, bytes]:
    label = f"sealer.v1 test vector {vector} {index}"
    return label, hashlib.sha256(label.encode()).digest()


def identity(kind: str, secret: bytes) -> Identity:
    if kind == "x25519":
        return X25519Identity(x25519.X25519PrivateKey.from_private_bytes(secret))
    if kind == "mlkem768x25519":
        return HybridIdentity(secret)
    return SshEd25519Identity(ed25519.Ed25519PrivateKey.from_private_bytes(secret))


def identity_text(kind: str, ident: Identity) -> str:
    """The identity as its owner holds it: age's text, or an unencrypted OpenSSH key file (PEM)."""
    return ident.encode()


def make(spec: dict[str, Any]) -> dict[str, Any]:
    recipients = []
    idents = []
    for i, kind in enumerate(spec["kinds"]):
        label, secret = secret_for(spec["name"], i)
        ident = identity(kind, secret)
        idents.append(ident)
        recipients.append(
            {
                "kind": kind,
                "recipient": ident.recipient.encode(),
                "kid": ident.kid,
                "identity": identity_text(kind, ident),
                "secret_hex": secret.hex(),
                "secret_is": f"{DERIVATION[kind]} = SHA-256({label!r})",
            }
        )
    plain_doc = spec["document"].format(value=spec["plaintext"], **spec["fields"])
    source = f"{spec['name']}.yaml"
    doc, _report = seal_text(
        plain_doc,
        source,
        env="prod",
        recipients=[i.recipient for i in idents],
        scope=spec["scope"],
        now=SEALED_AT,
    )
    sf = load(doc, source)
    leaf = next(leaf for _d, leaf in sf.all_leaves() if leaf.sealed)
    token_text = leaf.node.value
    d = sf.docs[0]
    assert d.meta is not None
    ctx: Context = d.context("prod", d.meta.scope, tuple(spec["path"]))
    token = leaf.token(source)
    bound_ns, bound_name = ctx.bound()
    out = {
        "warning": WARNING,
        "name": spec["name"],
        "description": spec["description"],
        "recipients": recipients,
        "context": {
            "env": ctx.env,
            "scope": ctx.scope,
            "namespace": bound_ns,
            "name": bound_name,
            "path": list(spec["path"]),
            "path_text": format_path(ctx.path),
        },
        "type": token.vtype,
        "sealed_at": token.sealed_at,
        "header_hex": token.header.hex(),
        "context_hex": context_bytes(token.header, ctx, token.kids).hex(),
        "token": token_text,
        "document": doc,
        "plaintext": spec["plaintext"],
        "plaintext_hex": spec["plaintext"].encode().hex(),
    }
    # Check before writing: every recipient opens it through the public path.
    for ident in idents:
        opened = unseal_file(load(doc, source), {ident.kid: ident}.get, rules=UNCHECKED)
        assert spec["plaintext"] in opened.text, spec["name"]
    blob = token_text.split(",")[2][:-1]
    assert base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))[:12] == token.header
    return out


def main() -> None:
    for spec in VECTORS:
        vector = make(spec)
        path = HERE / f"{spec['name']}.json"
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path.relative_to(HERE)}: {len(vector['token'])}-character token")


if __name__ == "__main__":
    main()
