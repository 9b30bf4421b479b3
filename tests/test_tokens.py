"""The fast token locator (`sealer._locator`) against the ruamel.yaml reader.

`locate` is what reseal, status and retire use to find every token and the context it must open in.
Its fast path is a line scanner (`_scan`); nothing may rest on the scanner being right, so:

- `locate` must always give exactly what the ruamel reader gives (`from_document(load(...))`);
- `_scan` may give up (None) on what it does not model, but must never return a *different* answer:
  the token hints only catch a wrong context with probability 1 - 2^-8 (namespace, name) or
  1 - 2^-16 (path), and a wrong context that slips through makes reseal fail on a good file;
- `_scan` must actually be used (not None) for the block layouts sealer itself writes: that is the
  reseal speed path.

Documents are generated (hypothesis) and written out by a small emitter of our own, checked against a
ruamel safe load of the data it was built from, then sealed with `sealer._seal.seal_text`. Expected
contexts come from the ruamel reader; hint collisions are computed from docs/format.md §5.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from sealer import _locator as tokens
from sealer._document import load
from sealer._keys import generate_identity
from sealer._seal import seal_text

ENV = "prod"
NOW = 1_764_028_800
SRC = "deploy/prod/app.yaml"
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

IDENT = generate_identity()
RECOVERY = generate_identity()


# --- helpers --------------------------------------------------------------------------------------


Row = tuple[int, int, Any]


def effective(ctx: Any) -> tuple[Any, ...]:
    """The context as it is sealed: a namespace or name the scope does not bind plays no part."""
    return (ctx.env, ctx.scope, ctx.bound(), ctx.path)


def rows(found: list[tokens.Located] | None) -> list[Row] | None:
    """(start, end, ctx) sorted by start, with ctx reduced to what the scope binds."""
    if found is None:
        return None
    return sorted(((t.start, t.end, effective(t.ctx)) for t in found), key=lambda r: r[0])


def by_ruamel(text: str) -> list[Row]:
    out = rows(tokens.from_document(load(text, SRC), SRC))
    assert out is not None
    return out


def seal(text: str, *, scope: str | None = None, two: bool = False) -> str:
    recipients = [IDENT.recipient, RECOVERY.recipient] if two else [IDENT.recipient]
    new, _ = seal_text(text, SRC, env=ENV, recipients=recipients, scope=scope, now=NOW)
    return new


def token_count(text: str) -> int:
    return len(re.findall(r"ENC\[sealer\.v1,[0-9a-f+]+,[A-Za-z0-9_-]+\]", text))


def describe(text: str, scanned: list[Row] | None, expected: list[Row]) -> str:
    diffs = []
    if scanned is not None:
        for a, b in zip(scanned, expected, strict=False):
            if a != b:
                diffs.append(f"scan {a[0]} {a[2]} != ruamel {b[0]} {b[2]}")
        if len(scanned) != len(expected):
            diffs.append(f"scan found {len(scanned)}, ruamel {len(expected)}")
    return "\n".join([*diffs[:5], "--- file ---", text])


# --- an emitter of our own: block and flow styles, comments, block scalars, quoting ----------------

_KEYWORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_PLAIN_TEXT = re.compile(r"[^\W\d_][\w .-]*[\w.-]|[^\W\d_]")


def plain_ok(s: str) -> bool:
    return bool(_PLAIN_TEXT.fullmatch(s)) and s.lower() not in _KEYWORDS and "  " not in s


def dq(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def sq(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Emitter:
    """Writes Python data as YAML text in styles chosen by `draw` (hypothesis data)."""

    def __init__(
        self,
        draw: Callable[[Any], Any],
        *,
        comments: bool = True,
        flow: bool = True,
        quoted_keys: bool = True,
        key_quote_styles: tuple[str, ...] = ("dq", "sq"),
    ) -> None:
        self.draw = draw
        self.comments = comments
        self.flow = flow
        self.quoted_keys = quoted_keys
        self.key_quote_styles = key_quote_styles

    def choice(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    def comment(self) -> str:
        return self.choice(["# a comment", "# ünïcode comment: with colon", "#", "# - dash: ENC-like [x]"])

    def key(self, k: str) -> str:
        if plain_ok(k) and not (self.quoted_keys and self.draw(st.integers(0, 4)) == 0):
            return k
        return sq(k) if self.choice(list(self.key_quote_styles)) == "sq" else dq(k)

    def scalar(self, v: Any) -> str:
        if v is None:
            return self.choice(["null", "~"])
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if "\n" in v:
            return dq(v)
        options = ["dq", "sq"] + (["plain"] if plain_ok(v) else [])
        style = self.choice(options)
        return v if style == "plain" else sq(v) if style == "sq" else dq(v)

    def trailing(self) -> str:
        if self.comments and self.draw(st.integers(0, 3)) == 0:
            return "  " + self.comment()
        return ""

    def flow_node(self, v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.key(k)}: {self.flow_node(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(self.flow_node(x) for x in v) + "]"
        return self.scalar(v)

    def block_scalar(self, v: str, indent: int) -> tuple[str, list[str]]:
        pad = " " * indent
        if "\n" not in v:  # a run of words, folded: >- joins its lines with single spaces
            return ">-" + self.trailing(), [pad + w for w in v.split(" ")]
        if v.endswith("\n"):
            return "|" + self.trailing(), [pad + x for x in v[:-1].split("\n")]
        return "|-", [pad + x for x in v.split("\n")]

    def value_lines(self, v: Any, indent: int, *, in_seq: bool = False) -> tuple[str, list[str]]:
        """What follows `key:` or `-` on its line, and the lines below it (`indent`: the key's column)."""
        if isinstance(v, str) and ("\n" in v or (FOLDABLE.fullmatch(v) and self.draw(st.booleans()))):
            head, rest = self.block_scalar(v, indent + 2)
            return " " + head, rest
        if isinstance(v, dict | list):
            if not v or (self.flow and self.draw(st.integers(0, 3)) == 0):
                return " " + self.flow_node(v) + self.trailing(), []
            if isinstance(v, dict):
                return self.trailing(), self.block_map(v, indent + 2)
            step = 2 if in_seq else self.choice([0, 2])
            return self.trailing(), self.block_list(v, indent + step)
        return " " + self.scalar(v) + self.trailing(), []

    def block_map(self, d: dict[str, Any], indent: int, *, lead_comment: bool = True) -> list[str]:
        pad = " " * indent
        out = []
        for i, (k, v) in enumerate(d.items()):
            if self.comments and (i or lead_comment) and self.draw(st.integers(0, 5)) == 0:
                out.append(pad + self.comment())
            head, rest = self.value_lines(v, indent)
            out.append(f"{pad}{self.key(k)}:{head}")
            out.extend(rest)
        return out

    def block_list(self, items: list[Any], indent: int) -> list[str]:
        pad = " " * indent
        out = []
        for v in items:
            if isinstance(v, dict | list) and v and self.draw(st.booleans()):
                # compact: the first entry on the dash line (`- key: v`, `- - item`)
                inner = (
                    self.block_map(v, indent + 2, lead_comment=False)
                    if isinstance(v, dict)
                    else (self.block_list(v, indent + 2))
                )
                out.append(pad + "- " + inner[0].lstrip(" "))
                out.extend(inner[1:])
                continue
            head, rest = self.value_lines(v, indent, in_seq=True)
            out.append(pad + "-" + head)
            out.extend(rest)
        return out


FOLDABLE = re.compile(r"[A-Za-z0-9,.!?-]+( [A-Za-z0-9,.!?-]+)+")


def check_emitted(text: str, docs: list[Any]) -> None:
    """The emitter must write what we meant; otherwise the test would prove nothing."""
    loaded = [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]
    assert loaded == docs, text


# --- strategies -----------------------------------------------------------------------------------

_SAFE_CHARS = st.characters(
    codec="utf-8", exclude_categories=["Cc", "Cs", "Co", "Cn", "Zl", "Zp"], exclude_characters="\ufeff"
)
any_text = st.text(_SAFE_CHARS, min_size=0, max_size=12)
fancy_keys = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True),
    st.sampled_from(
        [
            "tls.crt",
            ".dockerconfigjson",
            "my key",
            "a.b.c",
            "x-y_z",
            "kind",
            "metadata",
            "name",
            "0",
            "true",
            "null",
            "é",
            "ünï",
            "clé",
            "it's",
            'say "hi"',
            "a:b",
            "c#d",
            "$ref",
            "~x",
            "+1",
            "(x)",
            "<<",
            "=",
            "@at",
            "a # b",
            "key: value",
            "[0]",
            "{x}",
            "-dash",
            "?q",
            "!bang",
            "*star",
            "&amp",
            "%pct",
            "`tick",
            "| pipe",
            "> gt",
            "\\back",
            "tab\there",
            "spa ce ",
            " lead",
        ]
    ),
    st.text(_SAFE_CHARS, min_size=1, max_size=8),
)
# Keys the scanner's key pattern claims to model: plain keys starting with an ASCII letter, digit,
# '_', '.', '/' or '-' and free of ': # \' "', and quoted keys without escapes.
modelled_keys = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,8}", fullmatch=True),
    st.sampled_from(["tls.crt", "my key", "a.b.c", "x-y_z", "kind", "metadata", "name", "aé", "señor", "data"]),
)
# Lines of block scalars: some look like YAML (`key: value`, `- item`, `# x`), which must stay text.
_LINE = st.from_regex(r'[A-Za-z0-9{\["-][A-Za-z0-9 ,.!?:#"{}\[\]-]{0,10}[A-Za-z0-9.!"}\]]', fullmatch=True)
multiline = st.one_of(
    st.lists(_LINE, min_size=2, max_size=4).flatmap(
        lambda lines: st.sampled_from(["\n".join(lines) + "\n", "\n".join(lines)])
    ),
    st.lists(st.from_regex(r"[A-Za-z0-9,.!?-]{1,6}", fullmatch=True), min_size=2, max_size=4).map(" ".join),
)
scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.booleans(),
    any_text,
    multiline,
    st.none(),
)


def trees(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=4),
            st.dictionaries(keys, children, min_size=1, max_size=4),
        ),
        max_leaves=12,
    )


def top_maps(keys: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    reserved = {"sealer", "apiVersion", "kind"}
    return st.dictionaries(keys.filter(lambda k: k not in reserved), trees(keys), min_size=1, max_size=5)


secret_keys = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(lambda k: k not in (".", ".."))


@st.composite
def secrets(draw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret"}
    md: dict[str, Any] = {"name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))}
    if draw(st.booleans()):
        md["namespace"] = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))
    if draw(st.booleans()):
        md["labels"] = {"app": "web", "tier": "db"}
    if draw(st.booleans()):
        # as kubectl apply leaves it: a block scalar whose lines look like YAML and tokens
        md["annotations"] = {
            "last-applied": draw(
                st.sampled_from(
                    [
                        '{"kind": "Secret",\n "data": {"a": "ENC-like"}}\n',
                        "password: hunter2\n- item\n# not a comment\n",
                    ]
                )
            )
        }
    doc["metadata"] = md
    doc["type"] = "Opaque"
    if draw(st.booleans()):
        doc["stringData"] = draw(st.dictionaries(secret_keys, any_text | multiline, min_size=1, max_size=4))
    if draw(st.booleans()) or "stringData" not in doc:
        doc["data"] = draw(
            st.dictionaries(
                secret_keys,
                st.binary(min_size=0, max_size=24).map(lambda b: base64.b64encode(b).decode()),
                min_size=1,
                max_size=4,
            )
        )
    return doc


@st.composite
def documents(draw: Any, keys: st.SearchStrategy[str], **emit: Any) -> tuple[str, list[Any], str | None]:
    """A multi-document file: Secrets and other documents, in varied styles."""
    docs = draw(st.lists(st.one_of(secrets(), top_maps(keys)), min_size=1, max_size=3))
    em = Emitter(draw, **emit)
    parts = []
    for d in docs:
        if d.get("kind") == "Secret" and em.flow and draw(st.integers(0, 3)) == 0:
            # metadata written inline, as kubectl users sometimes do
            body = ["apiVersion: v1", "kind: Secret", f"metadata: {em.flow_node(d['metadata'])}"]
            rest = {k: v for k, v in d.items() if k not in ("apiVersion", "kind", "metadata")}
            body += em.block_map(rest, 0)
        else:
            body = em.block_map(d, 0)
        parts.append("\n".join(body) + "\n")
    text = ("---\n" if draw(st.booleans()) else "") + "---\n".join(parts)
    if draw(st.booleans()):
        text += "...\n"
    only_secrets = all(d.get("kind") == "Secret" for d in docs)
    scope = draw(st.sampled_from([None, "namespace", "env"] if only_secrets else [None, "env"]))
    check_emitted(text, docs)
    return text, docs, scope


@st.composite
def sealer_layouts(draw: Any) -> str:
    """What sealer itself writes: block-style Secrets (stringData/data) and Helm-values-style maps and
    lists with plain keys, comments kept, no flow collections."""
    kind = draw(st.sampled_from(["secret", "values", "both"]))
    em = Emitter(draw, flow=False, quoted_keys=False)
    parts = []
    if kind in ("secret", "both"):
        d = draw(secrets())
        d = {k: {kk: vv.replace("\n", " ") for kk, vv in v.items()} if k == "stringData" else v for k, v in d.items()}
        parts.append((d, em.block_map(d, 0)))
    if kind in ("values", "both"):
        helm_keys = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}", fullmatch=True)
        flat = st.one_of(
            st.integers(-1000, 10**9), st.booleans(), st.from_regex(r"[A-Za-z0-9:/._-]{1,16}", fullmatch=True)
        )
        tree = st.recursive(
            flat,
            lambda c: st.one_of(
                st.lists(c, min_size=1, max_size=3), st.dictionaries(helm_keys, c, min_size=1, max_size=3)
            ),
            max_leaves=10,
        )
        d = draw(st.dictionaries(helm_keys.filter(lambda k: k not in ("sealer", "kind")), tree, min_size=1, max_size=5))
        parts.append((d, em.block_map(d, 0)))
    text = "---\n".join("\n".join(lines) + "\n" for _d, lines in parts)
    check_emitted(text, [d for d, _ in parts])
    return text


# --- properties -------------------------------------------------------------------------------------

INLINE_METADATA = re.compile(r"""(?m)^["']?metadata["']?: \{""")


@SETTINGS
@given(case=documents(fancy_keys))
def test_locate_equals_ruamel_reader(case: tuple[str, list[Any], str | None]) -> None:
    """Whatever the shape, `locate` gives every token with the context the ruamel reader gives.

    Inline (flow) metadata is left to the fixed tests below: there the scanner is wrong and only a
    1-byte hint stands between that and a wrong answer (1 example in 256 would fail at random)."""
    text, _docs, scope = case
    sealed = seal(text, scope=scope)
    assume(INLINE_METADATA.search(sealed) is None)
    expected = by_ruamel(sealed)
    assert len(expected) == token_count(sealed)
    got = rows(tokens.locate(sealed, SRC))
    assert got == expected, describe(sealed, got, expected)


@SETTINGS
@given(case=documents(modelled_keys), two=st.booleans())
def test_scan_gives_up_or_agrees_on_the_shapes_it_models(case: tuple[str, list[Any], str | None], two: bool) -> None:
    """Keys the scanner's own key pattern covers, with comments, block scalars, flow collections, multi-
    document files: the scanner either gives up (None) or returns exactly the ruamel answer."""
    text, _docs, scope = case
    sealed = seal(text, scope=scope, two=two)
    expected = by_ruamel(sealed)
    assume(INLINE_METADATA.search(sealed) is None)  # known bug: test_scan_misreads_inline_metadata
    scanned = rows(tokens._scan(sealed))
    assert scanned is None or scanned == expected, describe(sealed, scanned, expected)


@SETTINGS
@given(text=sealer_layouts(), two=st.booleans())
def test_scan_is_the_path_taken_for_sealer_layouts(text: str, two: bool) -> None:
    """The speed path: for the block layouts sealer writes, the scanner answers (never gives up), and
    its answer is the ruamel answer."""
    sealed = seal(text, two=two)
    expected = by_ruamel(sealed)
    assert expected, sealed
    scanned = rows(tokens._scan(sealed))
    assert scanned is not None, sealed
    assert scanned == expected, describe(sealed, scanned, expected)
    assert rows(tokens.locate(sealed, SRC)) == expected


# --- fixed shapes ---------------------------------------------------------------------------------

K8S_SECRET = """\
# payments database
apiVersion: v1
kind: Secret
metadata:
  name: db            # the Secret's name is bound (strict scope)
  namespace: payments
  labels:
    app: api
type: Opaque
stringData:
  username: app
  password: "pw: with colon # and hash"
  'config.json': '{"a": 1}'
data:
  tls.crt: aGVsbG8=
  .dockerconfigjson: e30=
"""

HELM_VALUES = """\
replicaCount: 3
image:
  repository: nginx
  tag: "1.25"
env:
- name: DB_PASSWORD
  value: s3cret
- name: FEATURE
  value: true
servers:
  - host: a.example
    ports:
      - 80
      - 443
  - host: b.example
nested:
  - - one
    - two
  - - three
"""

MULTI = "---\n" + K8S_SECRET + "---\n" + HELM_VALUES + "...\n"


@pytest.mark.parametrize(
    "text",
    [K8S_SECRET, HELM_VALUES, MULTI, K8S_SECRET.replace("\n", "\r\n")],
    ids=["secret", "helm-values", "multi-document", "crlf"],
)
@pytest.mark.parametrize("two", [False, True], ids=["one-kid", "two-kids"])
def test_scan_answers_for_sealer_written_files(text: str, two: bool) -> None:
    sealed = seal(text, two=two)
    expected = by_ruamel(sealed)
    assert len(expected) == token_count(sealed) > 0
    assert rows(tokens._scan(sealed)) == expected
    assert rows(tokens.locate(sealed, SRC)) == expected


@pytest.mark.parametrize("scope", ["strict", "namespace", "env"])
def test_scan_binds_secret_scope_as_ruamel_does(scope: str) -> None:
    sealed = seal(K8S_SECRET, scope=scope)
    expected = by_ruamel(sealed)
    assert {r[2][1] for r in expected} == {scope}
    assert rows(tokens._scan(sealed)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2]\nb: {c: x}\n",  # flow collections holding tokens
        "a: |\n  line one\n  line two\nb: >-\n  folded\n  text\n",  # block scalars (become tokens)
        "a: !!str tagged\n",  # a tag on a token
        '"esc\\tkey": x\n',  # escaped quoted key on a token line
    ],
    ids=["flow", "block-scalars", "tag", "escaped-key"],
)
def test_scan_gives_up_where_it_says_it_does(text: str) -> None:
    sealed = seal(text)
    expected = by_ruamel(sealed)
    assert expected
    scanned = rows(tokens._scan(sealed))
    assert scanned is None or scanned == expected
    assert rows(tokens.locate(sealed, SRC)) == expected


def test_token_in_a_comment_is_not_a_value() -> None:
    sealed = seal("a: x\nb: y\n")
    tok = re.findall(r"ENC\[[^\]]+\]", sealed)[0]
    text = sealed + f"# old value was {tok}\n"
    expected = by_ruamel(text)
    assert len(expected) == 2
    assert rows(tokens.locate(text, SRC)) == expected
    assert tokens._scan(text) is None


def test_no_tokens_is_empty() -> None:
    assert tokens.locate("a: 1\nb: plain\n", SRC) == []


# --- known bugs: the scanner returns a wrong answer instead of giving up ----------------------------

# Mapping keys the scanner's key pattern does not match. A key line without a token is then taken for
# the continuation of a multi-line scalar and dropped, so every token below it gets a path without
# that key. (On a line that holds a token, the scanner gives up correctly.)
UNMODELLED_KEYS = ["é", "ünï", "it's", "'it''s'", '"say \\"hi\\""', "a:b", "c#d", "$ref", "~x", "+1", "(x)", "=x", "<x"]


@pytest.mark.parametrize("key", UNMODELLED_KEYS)
def test_scan_gives_up_or_agrees_on_unmodelled_nested_keys(key: str) -> None:
    sealed = seal(f"config:\n  {key}:\n    password: pw\n")
    expected = by_ruamel(sealed)
    scanned = rows(tokens._scan(sealed))
    assert scanned is None or scanned == expected, describe(sealed, scanned, expected)


@pytest.mark.parametrize("scope", ["strict", "namespace"])
def test_scan_gives_up_or_agrees_on_inline_metadata(scope: str) -> None:
    sealed = seal(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData:\n  password: pw\n",
        scope=scope,
    )
    expected = by_ruamel(sealed)
    scanned = rows(tokens._scan(sealed))
    assert scanned is None or scanned == expected, describe(sealed, scanned, expected)


# Were the scanner to guess a wrong context whose hint bytes collide (1 in 256 namespaces, 1 in
# 65,536 paths), the hints could not catch it: so the scanner must give up on these layouts.
# The colliding names are found here from the hint definition in docs/format.md §5.


def _hint(label: bytes, value: bytes) -> bytes:
    return hashlib.sha256(b"sealer.v1 hint " + label + b"\x00" + value).digest()


def _path_bytes(path: tuple[str | int, ...]) -> bytes:
    out = b""
    for seg in path:
        if isinstance(seg, int):
            out += b"i" + seg.to_bytes(4, "big")
        else:
            raw = seg.encode()
            out += b"k" + len(raw).to_bytes(4, "big") + raw
    return out


def colliding_namespace() -> str:
    empty = _hint(b"namespace", b"")[0]
    return next(f"team-{i}" for i in range(100_000) if _hint(b"namespace", f"team-{i}".encode())[0] == empty)


def colliding_key() -> str:
    want = _hint(b"path", _path_bytes(("config", "password")))[:2]
    return next(
        f"é{i}" for i in range(10_000_000) if _hint(b"path", _path_bytes(("config", f"é{i}", "password")))[:2] == want
    )


def inline_metadata_secret(namespace: str) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {namespace}}}\nstringData:\n  password: pw\n"
    )


def nested_unicode_key(key: str) -> str:
    return f"config:\n  {key}:\n    password: pw\n"


@pytest.mark.parametrize("case", ["namespace", "path"])
def test_locate_right_even_where_hints_would_collide(case: str) -> None:
    if case == "namespace":
        sealed = seal(inline_metadata_secret(colliding_namespace()), scope="namespace")
    else:
        sealed = seal(nested_unicode_key(colliding_key()))
    expected = by_ruamel(sealed)
    assert rows(tokens.locate(sealed, SRC)) == expected


def test_collision_helpers_agree_with_the_spec() -> None:
    """The hint arithmetic above is the one tokens carry (so the collision cases above are real)."""
    from sealer._format import parse_token

    ns = colliding_namespace()
    sealed = seal(inline_metadata_secret(ns), scope="namespace")
    tok = parse_token(re.findall(r"ENC\[[^\]]+\]", sealed)[0])
    assert tok.hints[2] == _hint(b"namespace", ns.encode())[0] == _hint(b"namespace", b"")[0]
    key = colliding_key()
    sealed = seal(nested_unicode_key(key))
    tok = parse_token(re.findall(r"ENC\[[^\]]+\]", sealed)[0])
    assert tok.hints[4:6] == _hint(b"path", _path_bytes(("config", key, "password")))[:2]
    assert tok.hints[4:6] == _hint(b"path", _path_bytes(("config", "password")))[:2]
