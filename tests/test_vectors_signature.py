"""tests/vectors/sealer/signature-*.json against docs/format.md § 6, the bytes a signature covers.

Each vector is checked twice: by sealer's verifier through its public path (`sealer._document.load`
+ `sealer._signing.SignaturePolicy`), which must accept it at its path and refuse it at another path
or with `"off"` unquoted; and by a verifier written here from § 6's text alone: PyYAML's composer
(not ruamel, which sealer reads with) gives the nodes, a resolver written from the spec's list
(YAML 1.2 core schema plus timestamps, `<<`, `=`) gives plain scalars their tags, the neutral
tree and its bytes follow § 6 line by line, and pynacl's VerifyKey checks the signature. No sealer
code is used for that. Every signer key in the vectors is a public test key that protects nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from test_format_spec import SPEC, _bech32_encode, _lp
from yaml.composer import Composer
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

HERE = Path(__file__).parent / "vectors" / "sealer"
NAMES = ["signature-aliases", "signature-secret", "signature-values"]
VECTORS = {p.stem: json.loads(p.read_text()) for p in sorted(HERE.glob("signature*.json"))}
SECTION = SPEC[SPEC.index("## 6. Signatures") : SPEC.index("## 7. Recipient kinds")]


# --- what § 6 says ----------------------------------------------------------------------------------


def test_section_6_says_what_is_built_here() -> None:
    """The lines of § 6 this verifier follows, as written there: if they change, so must it."""
    for line in (
        'message = "sealer.sig.v2" ‖ 0x00',
        "‖ lp(utf8(signer name)) ‖ lp(ascii(signer key id))",
        "‖ lp(ascii(version)) ‖ lp(utf8(env)) ‖ lp(utf8(scope))",
        "‖ lp(utf8(path))",
        "‖ node(the document's top-level mapping without its `sealer` entry)",
        'node(scalar)   = "s" ‖ style ‖ lp(utf8(tag)) ‖ lp(utf8(value))        style: one byte, p, q or t',
        'node(sequence) = "l" ‖ lp(utf8(tag)) ‖ u32(count) ‖ node(item) ‖ …   (in order)',
        'node(mapping)  = "m" ‖ lp(utf8(tag)) ‖ u32(count) ‖ entry ‖ …,  entry = node(key) ‖ node(value),',
        "entries sorted by their bytes (unsigned, lexicographic)",
        "The signature is\n`Ed25519-Sign(seed, message)`",
        "public key: Bech32, HRP `sealer-signer`, data = the 32-byte Ed25519 public key",
        "private key: Bech32, HRP `sealer-signer-secret-key-`, data = the 32-byte Ed25519 seed",
        "signer key id: `hex(SHA-256(ascii(public key)))[0:16]`",
    ):
        assert line in SECTION, line


# --- plain scalars' tags: the YAML 1.2 core schema plus timestamps (§ 6, "`tag` is") --------------

_RESOLVED = [
    ("null", r"null|Null|NULL|~|"),
    ("bool", r"true|True|TRUE|false|False|FALSE"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"),
    ("float", r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"),
    (
        "timestamp",
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
        r"([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?",
    ),
    ("merge", r"<<"),
    ("value", r"="),
]
YAML = "tag:yaml.org,2002:"


class _SpecResolver(BaseResolver):
    """Tags of untagged nodes as § 6 lists them; PyYAML's own resolver is YAML 1.1's (`off` → bool)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is SequenceNode:
            return YAML + "seq"
        if kind is MappingNode:
            return YAML + "map"
        if implicit[0]:  # plain, no tag property
            for tag, pattern in _RESOLVED:
                if re.fullmatch(pattern, value):
                    return YAML + tag
        return YAML + "str"


class _Composer(Composer):
    def compose_scalar_node(self, anchor: Any) -> Any:
        explicit = self.peek_event().tag  # the tag property as written (handles expanded), or None
        if explicit == "!":
            raise ValueError("§ 6: the non-specific tag ! alone is refused")
        node = super().compose_scalar_node(anchor)
        node.explicit_tag = explicit
        return node


class _Loader(Reader, Scanner, Parser, _Composer, _SpecResolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _SpecResolver.__init__(self)


def _compose(text: str) -> MappingNode:
    (root,) = list(yaml.compose_all(text, Loader=_Loader))  # composes nodes, constructs nothing
    assert isinstance(root, MappingNode)
    return root


# --- the neutral tree and its bytes (§ 6) ------------------------------------------------------------


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _style(node: ScalarNode) -> bytes:
    if node.explicit_tag is not None:
        return b"t"
    return b"p" if node.style is None else b"q"  # PyYAML: None for plain; ' " | > otherwise


def _node(node: Any, stack: frozenset[int] = frozenset()) -> bytes:
    """node(…) of § 6; an alias is PyYAML's same node object again, so it is expanded here."""
    tag = _lp(node.tag.encode())
    if isinstance(node, ScalarNode):
        return b"s" + _style(node) + tag + _lp(node.value.encode())
    assert id(node) not in stack, "a recursive alias cannot be signed"
    inner = stack | {id(node)}
    if isinstance(node, SequenceNode):
        return b"l" + tag + _u32(len(node.value)) + b"".join(_node(i, inner) for i in node.value)
    entries = sorted(_node(k, inner) + _node(v, inner) for k, v in node.value)
    return b"m" + tag + _u32(len(entries)) + b"".join(entries)


def _is_sealer_key(key: Any) -> bool:
    return isinstance(key, ScalarNode) and key.value == "sealer"


def _sealer_block(root: MappingNode) -> dict[str, Any]:
    (block,) = [v for k, v in root.value if _is_sealer_key(k)]
    out: dict[str, Any] = {k.value: v.value for k, v in block.value if isinstance(v, ScalarNode)}
    (sig,) = [v for k, v in block.value if k.value == "signature"]
    out["signature"] = {k.value: v.value for k, v in sig.value}
    return out


def _message(text: str, path: str) -> bytes:
    """message of § 6 for the (one) document of `text`, read from its own sealer: block."""
    root = _compose(text)
    block = _sealer_block(root)
    body = MappingNode(root.tag, [(k, v) for k, v in root.value if not _is_sealer_key(k)])
    return (
        b"sealer.sig.v2\x00"
        + _lp(block["signature"]["signer"].encode())
        + _lp(block["signature"]["key"].encode("ascii"))
        + _lp(block["version"].encode("ascii"))
        + _lp(block["env"].encode())
        + _lp(block["scope"].encode())
        + _lp(path.encode())
        + _node(body)
    )


def _verify_key(v: dict[str, Any]) -> VerifyKey:
    """The signer's public key, from its published seed (§ 6 "Keys"), checked against the vector."""
    s = v["signer"]
    label = re.fullmatch(r".* = SHA-256\('(.*)'\)", s["seed_is"])
    assert label and hashlib.sha256(label.group(1).encode()).hexdigest() == s["seed_hex"]
    seed = bytes.fromhex(s["seed_hex"])
    public = bytes(SigningKey(seed).verify_key)
    text = _bech32_encode("sealer-signer", public)
    assert s["public_key"] == text
    assert s["secret_key"] == _bech32_encode("sealer-signer-secret-key-", seed).upper()
    assert s["kid"] == hashlib.sha256(text.encode("ascii")).hexdigest()[:16]
    return VerifyKey(public)


def _signature(v: dict[str, Any]) -> bytes:
    sig = v["signature"]
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    assert len(sig) == 86 and len(raw) == 64
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == sig  # canonical
    return raw


def _unquoted(text: str) -> str:
    assert text.count('"off"') == 1
    return text.replace('"off"', "off")


def _elsewhere(path: str) -> list[str]:
    """Other files the same document could be in: another directory, and the bare file name."""
    directory, name = path.rsplit("/", 1)
    return [f"{directory}-copy/{name}", name]


# --- the tests ---------------------------------------------------------------------------------------


def test_vectors_are_there_and_say_they_are_public_test_keys() -> None:
    assert sorted(VECTORS) == NAMES
    readme = (HERE / "README.md").read_text()
    assert "public test key that protects nothing" in readme
    for name, v in VECTORS.items():
        assert v["name"] == name and f"`{name}.json`" in readme
        assert v["warning"].startswith("PUBLIC TEST KEYS") and "protects nothing" in v["warning"]
        assert "sealer.sig.v2 test vector" in v["document"]


@pytest.mark.parametrize("name", NAMES)
def test_document_holds_what_the_vector_names(name: str) -> None:
    """Each document has a sealed token, plain, quoted ("off") and tagged scalars, a list and a
    nested mapping, and its sealer: block names the vector's env, scope, signer, key and signature."""
    v = VECTORS[name]
    root = _compose(v["document"])
    block = _sealer_block(root)
    assert (block["version"], block["env"], block["scope"]) == (str(v["version"]), v["env"], v["scope"])
    assert block["signature"] == {"signer": v["signer"]["name"], "key": v["signer"]["kid"], "sig": v["signature"]}
    assert re.fullmatch(r"ENC\[sealer\.v1,[0-9a-f]{16},[A-Za-z0-9_-]+\]", v["token"])
    seen: dict[str, set[Any]] = {"styles": set(), "kinds": set(), "values": set()}

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, ScalarNode):
            seen["styles"].add(_style(node))
            seen["values"].add((node.value, _style(node)))
            return
        seen["kinds"].add((type(node).__name__, depth > 0))
        for item in node.value:
            for n in item if isinstance(item, tuple) else (item,):
                walk(n, depth + 1)

    walk(MappingNode(root.tag, [(k, x) for k, x in root.value if not _is_sealer_key(k)]), 0)
    assert seen["styles"] == {b"p", b"q", b"t"}
    assert {("SequenceNode", True), ("MappingNode", True)} <= seen["kinds"]
    assert ("off", b"q") in seen["values"]
    assert any(value == v["token"] for value, _style_ in seen["values"])


@pytest.mark.parametrize("name", NAMES)
def test_message_bytes_from_the_spec_alone(name: str) -> None:
    v = VECTORS[name]
    message = _message(v["document"], v["path"])
    assert message.hex() == v["message_hex"]
    _verify_key(v).verify(message, _signature(v))


@pytest.mark.parametrize("name", NAMES)
def test_spec_alone_refuses_it_elsewhere_or_unquoted(name: str) -> None:
    v = VECTORS[name]
    key, sig = _verify_key(v), _signature(v)
    for path in _elsewhere(v["path"]):
        with pytest.raises(BadSignatureError):
            key.verify(_message(v["document"], path), sig)
    # Unquoting "off" changes one byte, the style (q → p): to YAML 1.2's core schema both are the
    # string off, to a YAML 1.1 reader the plain one is false.
    original, unquoted = _message(v["document"], v["path"]), _message(_unquoted(v["document"]), v["path"])
    assert len(unquoted) == len(original)
    assert [(a, b) for a, b in zip(original, unquoted, strict=True) if a != b] == [(ord("q"), ord("p"))]
    with pytest.raises(BadSignatureError):
        key.verify(unquoted, sig)


def _policy(v: dict[str, Any], root: str | None = None) -> Any:
    from sealer._signing import SignaturePolicy

    s = v["signer"]
    return SignaturePolicy(v["env"], True, ((s["name"], s["kid"], s["public_key"]),), root)


@pytest.mark.parametrize("name", NAMES)
def test_sealer_accepts_every_vector_through_its_public_path(name: str, tmp_path: Path) -> None:
    from sealer._document import load

    v = VECTORS[name]
    assert _policy(v).problems(load(v["document"], v["path"]), path=v["path"]) == []
    # Without an explicit path, the path is the file's, relative to the repository root.
    where = tmp_path / v["path"]
    assert _policy(v, str(tmp_path)).problems(load(v["document"], str(where))) == []


@pytest.mark.parametrize("name", NAMES)
def test_sealer_refuses_it_at_another_path(name: str) -> None:
    from sealer._document import load

    v = VECTORS[name]
    for path in _elsewhere(v["path"]):
        problems = _policy(v).problems(load(v["document"], path), path=path)
        assert [p.code for p in problems] == ["bad-signature"], path


@pytest.mark.parametrize("name", NAMES)
def test_sealer_refuses_it_with_off_unquoted(name: str) -> None:
    from sealer._document import load

    v = VECTORS[name]
    problems = _policy(v).problems(load(_unquoted(v["document"]), v["path"]), path=v["path"])
    assert [p.code for p in problems] == ["bad-signature"]
