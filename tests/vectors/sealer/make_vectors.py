"""Make the sealer.v1 test vectors of this folder (run once; the outputs are committed).

    .venv/bin/python tests/vectors/sealer/make_vectors.py [all | tokens | signatures | NAME]

Keys are derived from fixed labels, so they are the same on every run; HPKE is randomised, so the
tokens are not: running this again rewrites every token (and the vectors stay valid). Every private
key here is a PUBLIC TEST KEY that protects nothing. `signatures` writes only the signature-*.json
vectors (docs/format.md § 6), whose tokens, and so signatures, also change on every run. A NAME
(`x25519-expiry`) writes that vector alone, leaving the others' tokens as they are.
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
EXPIRES_AT = 1795564800  # 2026-11-25T00:00:00Z: a year later
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
    {
        "name": "x25519-expiry",
        "description": "one age X25519 recipient, a value with an expiry:"
        " the 17-byte header of an upper-case type (§5)",
        "kinds": ["x25519"],
        "document": SECRET,
        "fields": {"name": "db", "key": "password"},
        "scope": None,
        "path": ("stringData", "password"),
        "plaintext": "correct horse battery staple 789",
        "expires_at": EXPIRES_AT,
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
        expires_at=spec.get("expires_at"),
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
        **({"expires_at": token.expires_at} if token.expires_at is not None else {}),
        "header_hex": token.header.hex(),
        "context_hex": context_bytes(token.header, ctx, token.kids).hex(),
        "token": token_text,
        "document": doc,
        "plaintext": spec["plaintext"],
        "plaintext_hex": spec["plaintext"].encode().hex(),
    }
    # Check before writing: every recipient opens it through the public path.
    for ident in idents:
        opened = unseal_file(load(doc, source), {ident.kid: ident}.get, rules=UNCHECKED, now=SEALED_AT)
        assert spec["plaintext"] in opened.text, spec["name"]
    blob = token_text.split(",")[2][:-1]
    assert base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))[: len(token.header)] == token.header
    return out


# --- signature vectors (docs/format.md § 6): signature-*.json --------------------------------------

SIG_WARNING = (
    "PUBLIC TEST KEYS: the signer key in this file (and the x25519 key of x25519.json that its token is"
    " sealed to) is published on purpose, as a test vector. It protects nothing. Never use it to sign or"
    " seal anything real."
)

SIGNED_SECRET = """\
# A signed Secret (sealer.sig.v2 test vector: the signer key is a PUBLIC TEST KEY)
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: payments
  labels:
    app.kubernetes.io/name: db
    backup: "off"
  annotations:
    example.com/rotated: !!str 2025-11-25
  ownerReferences:
    - apiVersion: apps/v1
      kind: StatefulSet
      name: db
      controller: true
type: Opaque
stringData:
  password: correct horse battery staple 789
"""
SIGNED_VALUES = """\
# Helm values for charts/api in prod: not a manifest, so scope env (sealer.sig.v2 test vector)
replicaCount: 3
image:
  repository: registry.example.com/api
  tag: '1.4.2'
features:
  debug: "off"
  legacyAuth: !!str no
  ports: [8080, 8443]
motd: |
  Zoë's API
  second line
database:
  host: db.payments.svc
  password: tok-7c1d-values-file
  timeout: 2.5
hosts:
  - name: api.example.com
    tls: true
  - name: api-internal.example.com
    tls: false
fallback: ~
"""
SIGNED_ALIASES = """\
# Anchors, flow collections, custom and verbatim tags, a tagged mapping (sealer.sig.v2 test vector)
---
apiVersion: v1
kind: Secret
metadata:
  name: api
  namespace: payments
  labels: &labels {app: api, 'tier': backend}
  annotations:
    example.com/owner: !team payments
    example.com/reviewed: !<tag:yaml.org,2002:str> yes
    example.com/checked: 2025-11-25T12:00:00Z
    example.com/note: >
      folded onto
      one line
    example.com/maintenance: "off"
  finalizers: [example.com/keep, example.com/audit]
x-selector: *labels
x-reviewers: !!set {alice, bob}
data: {"tls.key": c2VjcmV0LWtleS1ieXRlcw==}
"""

# name, description, document, repository-relative path, env, scope, signer, the value to seal
SIGNATURE_VECTORS: list[dict[str, Any]] = [
    {
        "name": "signature-secret",
        "description": "a signed Secret: a sealed token, a quoted 'off', a !!str date, a list of mappings (§6)",
        "document": SIGNED_SECRET,
        "path": "deploy/prod/db.yaml",
        "env": "prod",
        "scope": None,
        "signer": "alice",
        "seal": "stringData.password",
    },
    {
        "name": "signature-values",
        "description": "a signed Helm values file, scope env: plain ints, floats, bools and null, quoted, tagged and"
        " block scalars, a flow list, UTF-8 text (§6)",
        "document": SIGNED_VALUES,
        "path": "charts/api/values-prod.yaml",
        "env": "prod",
        "scope": None,
        "signer": "ci@example.com",
        "seal": "database.password",
    },
    {
        "name": "signature-aliases",
        "description": "a signed Secret, scope namespace: an alias (expanded), flow mappings, a custom tag, a verbatim"
        " tag, a timestamp, a folded scalar, a !!set, a token double-quoted in a flow mapping (§6)",
        "document": SIGNED_ALIASES,
        "path": "clusters/eu-1/payments/api.yaml",
        "env": "staging",
        "scope": "namespace",
        "signer": "bob",
        "seal": 'data["tls.key"]',
    },
]


def signer_for(vector: str) -> tuple[str, bytes]:
    label = f"sealer.sig.v2 test vector {vector} signer"
    return label, hashlib.sha256(label.encode()).digest()


def make_signature(spec: dict[str, Any]) -> dict[str, Any]:
    from nacl.signing import VerifyKey

    from sealer._signing import SignaturePolicy, SignerKey, Signing, content_bytes

    label, seed = signer_for(spec["name"])
    key = SignerKey(seed)
    recipient = identity("x25519", secret_for("x25519", 0)[1]).recipient
    signed, report = seal_text(
        spec["document"],
        spec["path"],
        env=spec["env"],
        recipients=[recipient],
        selector=lambda p: p == spec["seal"],
        scope=spec["scope"],
        now=SEALED_AT,
        signing=Signing(key, spec["signer"], path=spec["path"]),
    )
    assert (report.sealed, report.signed) == (1, 1), spec["name"]
    sf = load(signed, spec["path"])
    (doc,) = sf.docs
    meta = doc.meta
    assert meta is not None and meta.signature is not None
    sig = meta.signature
    assert (sig.signer, sig.key) == (spec["signer"], key.kid)
    message = content_bytes(doc, meta, sig.signer, sig.key, path=spec["path"], text=signed, source=spec["path"])
    raw = base64.urlsafe_b64decode(sig.sig + "==")
    VerifyKey(key.public.raw).verify(message, raw)
    policy = SignaturePolicy(meta.env, True, ((spec["signer"], key.kid, key.public.text),))
    policy.check(sf, path=spec["path"])
    (token,) = [leaf.text for leaf in doc.leaves if leaf.sealed]
    return {
        "warning": SIG_WARNING,
        "name": spec["name"],
        "description": spec["description"],
        "signer": {
            "name": spec["signer"],
            "kid": key.kid,
            "public_key": key.public.text,
            "secret_key": key.encode(),
            "seed_hex": seed.hex(),
            "seed_is": f"the 32-byte Ed25519 seed (RFC 8032 private key) = SHA-256({label!r})",
        },
        "path": spec["path"],
        "env": meta.env,
        "scope": meta.scope,
        "version": meta.version,
        "token": token,
        "token_sealed_to": f"{recipient.kid} (the public test key of x25519.json)",
        "document": signed,
        "message_hex": message.hex(),
        "signature": sig.sig,
    }


def main(which: str = "all") -> None:
    """`all` (the default), `tokens` or `signatures`: which vectors to (re)write."""
    if which in ("all", "tokens") or which in {v["name"] for v in VECTORS}:
        for spec in VECTORS:
            if which not in ("all", "tokens", spec["name"]):
                continue
            vector = make(spec)
            path = HERE / f"{spec['name']}.json"
            path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n")
            print(f"wrote {path.relative_to(HERE)}: {len(vector['token'])}-character token")
    if which in ("all", "signatures"):
        for spec in SIGNATURE_VECTORS:
            vector = make_signature(spec)
            path = HERE / f"{spec['name']}.json"
            path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n")
            print(f"wrote {path.relative_to(HERE)}: {len(vector['message_hex']) // 2}-byte message")


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])
