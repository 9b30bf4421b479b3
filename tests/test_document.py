"""Sealed YAML files: which values get sealed, byte-for-byte layout, round trips, set, bad input.

Expected values never come from the code under test: unsealed data is compared with a ruamel.yaml safe
load of the original plaintext, and the expected sealed layout is built from an independent compose of
the original text and the rules in docs/format.md §2.
"""

from __future__ import annotations

import base64
import datetime
import difflib
import io
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from sealer._document import load
from sealer._keys import Identity, generate_identity
from sealer._seal import seal_text, set_value
from sealer._unseal import UNCHECKED, Unsealed, unseal_file
from sealer.errors import EnvironmentMismatch, InputError, PathError, SealerError, UsageError

ENV = "prod"
NOW = 1_764_028_800
SRC = "deploy/prod/app.yaml"
NULL = "tag:yaml.org,2002:null"
TOKEN = r"ENC\[sealer\.v1,[0-9a-f]{16}(?:\+[0-9a-f]{16})*,[A-Za-z0-9_-]+\]"
TOKEN_RE = re.compile(TOKEN)
SEALER_BLOCK_RE = re.compile(
    r"^(?P<i>[ ]*)sealer:\r?\n(?P=i)  version: 1\r?\n(?P=i)  env: (?P<env>\S+)\r?\n"
    r"(?P=i)  scope: (?P<scope>\S+)(?:\r?\n|\Z)",
    re.MULTILINE,
)


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ident() -> Identity:
    return generate_identity()


def safe_load_all(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(text))


def norm(x: Any) -> Any:
    """Comparable data: NaN equals NaN, bytearray is bytes."""
    if isinstance(x, float) and math.isnan(x):
        return "<nan>"
    if isinstance(x, dict):
        return {norm(k): norm(v) for k, v in x.items()}
    if isinstance(x, list):
        return [norm(v) for v in x]
    if isinstance(x, bytearray):
        return bytes(x)
    return x


def seal(text: str, ident: Identity, **kw: Any) -> str:
    new, _ = seal_text(text, SRC, env=ENV, recipients=[ident.recipient], now=NOW, **kw)
    return new


def unseal(text: str, *ids: Identity) -> Unsealed:
    return unseal_file(load(text, SRC), {i.kid: i for i in ids}.get, rules=UNCHECKED)


def assert_round_trip(original: str, ident: Identity, **kw: Any) -> str:
    """Seal, unseal, and compare every document with a safe load of the original plaintext."""
    sealed = seal(original, ident, **kw)
    out = unseal(sealed, ident)
    expected = safe_load_all(original)
    got = {d.index: d.content for d in out.docs}
    for i, doc in enumerate(expected):
        if doc is None:
            continue
        assert i in got, f"document {i} missing from the unsealed output"
        assert norm(got[i]) == norm(doc), f"document {i} differs"
    # the unsealed text says the same thing, too
    assert norm([d for d in safe_load_all(out.text) if d is not None]) == norm([d for d in expected if d is not None])
    return sealed


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


Path = tuple[str | int, ...]


def _fmt(path: Path) -> str:
    """docs/format.md §4, written out here independently."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", seg):
            out += f".{seg}" if out else seg
        else:
            import json

            out += f"[{json.dumps(seg, ensure_ascii=False)}]"
    return out


def selected_values(text: str, select: Callable[[str], bool] | None = None) -> Iterator[tuple[int, Any, bool, Path]]:
    """(document index, node, inside a flow collection, path) for every value §2 says is sealed,
    from an independent compose of the text."""

    def walk(node: Any, path: Path, in_flow: bool) -> Iterator[tuple[Any, bool, Path]]:
        if node.id == "mapping":
            for k, v in node.value:
                yield from walk(v, (*path, str(k.value)), in_flow or bool(node.flow_style))
        elif node.id == "sequence":
            for i, v in enumerate(node.value):
                yield from walk(v, (*path, i), in_flow or bool(node.flow_style))
        elif node.tag != NULL and (select is None or select(_fmt(path))):
            yield node, in_flow, path

    for index, root in enumerate(YAML(typ="rt").compose_all(text)):
        if root is None or root.id != "mapping":
            continue
        top = {k.value: v for k, v in root.value if k.id == "scalar"}
        kind = top.get("kind")
        if kind is not None and kind.id == "scalar" and kind.value == "Secret":
            for section in ("data", "stringData"):
                node = top.get(section)
                if node is not None and node.id == "mapping":
                    for k, v in node.value:
                        if v.tag != NULL:
                            yield index, v, bool(node.flow_style), (section, str(k.value))
            continue
        manifest = "apiVersion" in top and kind is not None
        if manifest and select is None:
            continue  # §2: a manifest other than a Secret seals nothing unless a rule selects values
        skip = {"sealer"} | ({"apiVersion", "kind", "metadata"} if manifest else set())
        for k, v in root.value:
            if k.value not in skip:
                for node, in_flow, path in walk(v, (str(k.value),), bool(root.flow_style)):
                    yield index, node, in_flow, path


def expected_layout(text: str, select: Callable[[str], bool] | None = None) -> tuple[str, int]:
    """The original with every selected value's own text replaced by <T> (in the quotes §2 promises),
    and the number of values."""
    edits = []
    for _, node, in_flow, _ in selected_values(text, select):
        start, end = node.start_mark.index, node.end_mark.index
        if node.style in ("|", ">"):
            end = start + len(text[start:end].rstrip(" \t\r\n"))  # blank lines after it are not the value
        if node.style == "'":
            new = "'<T>'"
        elif node.style == '"' or in_flow:
            new = '"<T>"'
        else:
            new = "<T>"
        edits.append((start, end, new))
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out), len(edits)


def strip_sealer_blocks(sealed: str) -> tuple[str, list[tuple[str, str]]]:
    blocks = [(m.group("env"), m.group("scope")) for m in SEALER_BLOCK_RE.finditer(sealed)]
    return SEALER_BLOCK_RE.sub("", sealed), blocks


def assert_layout(original: str, sealed: str, select: Callable[[str], bool] | None = None) -> None:
    """Only the selected values' text changed; the only other change is one sealer: block per document."""
    expected, count = expected_layout(original, select)
    assert len(tokens(sealed)) == count
    rest, blocks = strip_sealer_blocks(TOKEN_RE.sub("<T>", sealed))
    if not original.endswith("\n") and rest == expected + "\n":
        rest = expected  # the appended block needs a line break before it
    if rest != expected:
        diff = "\n".join(
            difflib.unified_diff(expected.splitlines(), rest.splitlines(), "expected", "sealed", lineterm="")
        )
        pytest.fail(f"sealed layout differs from the original beyond the values:\n{diff}")
    # one block per document that has values, in that document
    docs = safe_load_all(sealed)
    with_values = {i for i, _, _, _ in selected_values(original, select)}
    assert len(blocks) == len(with_values)
    assert {env for env, _ in blocks} == ({ENV} if blocks else set())
    for i in with_values:
        assert docs[i]["sealer"]["version"] == 1
        assert docs[i]["sealer"]["env"] == ENV


def changed_lines(a: str, b: str) -> tuple[list[str], list[str]]:
    """Lines removed from a and lines added in b."""
    removed, added = [], []
    for line in difflib.ndiff(a.splitlines(keepends=True), b.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


B64_ALL = base64.b64encode(bytes(range(256))).decode()
B64_NOT_UTF8 = base64.b64encode(b"\xff\xfe\x00\x80\xc3\x28 binary").decode()
B64_DOCKER = base64.b64encode(b'{"auths":{"r.example":{"auth":"dTpw"}}}').decode()


# --- round trips, every type ----------------------------------------------------------------------

STR_SCALARS = [
    '""',
    "''",
    "plain",
    '"ünïcödé ✓"',
    "ünïcödé",
    '"😀 emoji"',
    "😀",
    '"say \\"hi\\""',
    "'it''s'",
    '"back\\\\slash"',
    "'back\\slash'",
    '"new\\nline"',
    '"crlf\\r\\n"',
    '"  lead and trail  "',
    "'  single lead/trail  '",
    '"tab\\there"',
    '"0123"',
    "'true'",
    '"null"',
    '"1e3"',
    '"~"',
    '"0x1F"',
    '".inf"',
    '"2001-12-14"',
    "yes",
    "no",
    "on",
    '"\\u2028 line separator"',
    '"\\x00 nul"',
    '"\\x85 nel"',
    '"\\ufeff bom"',
    '"\\x7f del"',
    '"\\U0010ffff"',
    "'# not a comment'",
    '"{not: flow}"',
    "'ENC[ not a token'",
    "a-b_c.d/e@f",
]
INT_SCALARS = [
    "0",
    "42",
    "-17",
    "+12",
    "0x1F",
    "0o17",
    "123456789012345678901234567890",
    "-98765432109876543210",
]
FLOAT_SCALARS = [
    ".inf",
    "-.inf",
    "+.inf",
    ".nan",
    ".NaN",
    "1e-9",
    "1e3",
    "1E3",
    "-0.0",
    "3.14159",
    "6.02e+23",
    "1.0e-300",
    "0.1",
    ".5",
]
BOOL_SCALARS = ["true", "false", "True", "FALSE"]
TIMESTAMP_SCALARS = [
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2002-12-14",
    "2001-12-15T02:59:43.1Z",
]


@pytest.mark.parametrize(
    "scalar",
    [
        *STR_SCALARS,
        *INT_SCALARS,
        *FLOAT_SCALARS,
        *BOOL_SCALARS,
        *TIMESTAMP_SCALARS,
        "!!binary aGVsbG8gd29ybGQ=",
        "!!str 42",
        "!!float 1",
        "!!int '12'",
    ],
)
def test_round_trip_scalar_everywhere(scalar: str, ident: Identity) -> None:
    """The same scalar in a block mapping, a block sequence, a flow sequence and a flow mapping."""
    original = f"# comment\nv: {scalar}\nlist:\n  - {scalar}\n  - [{scalar}, x]\nmap: {{k: {scalar}}}\n"
    sealed = assert_round_trip(original, ident)
    assert len(tokens(sealed)) == 5


def test_round_trip_types_keep_their_python_type(ident: Identity) -> None:
    original = "i: 0x1F\nbig: 123456789012345678901234567890\nf: 1e-9\ninf: -.inf\nb: false\ns: '0123'\n"
    sealed = seal(original, ident)
    content = unseal(sealed, ident).docs[0].content
    assert content == {
        "i": 31,
        "big": 123456789012345678901234567890,
        "f": 1e-9,
        "inf": -math.inf,
        "b": False,
        "s": "0123",
    }
    assert [type(v) for v in content.values()] == [int, int, float, float, bool, str]


def test_round_trip_timestamps_are_datetimes(ident: Identity) -> None:
    content = unseal(seal("t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\n", ident), ident).docs[0].content
    tz = datetime.timezone(datetime.timedelta(hours=-5))
    assert content["t"] == datetime.datetime(2001, 12, 14, 21, 59, 43, 100000, tzinfo=tz)
    assert content["d"] == datetime.date(2002, 12, 14)


def test_round_trip_block_scalars(ident: Identity) -> None:
    original = (
        "literal: |\n  line one\n\n  line three\n\n\n"
        "keep: |+\n  kept\n\n"
        "strip: |-\n  stripped\n"
        "indent: |2\n   leading space\n  x\n"
        "plain_multi: this plain\n  scalar spans lines\n"
        'dq_multi: "double\n  quoted"\n'
        "after: end\n"
    )
    assert_round_trip(original, ident)


@pytest.mark.parametrize("indicator", [">", ">-", ">+"])
def test_round_trip_folded_scalar(indicator: str, ident: Identity) -> None:
    original = f"folded: {indicator}\n  folded one\n  folded two\n\n  para two\nafter: end\n"
    assert_round_trip(original, ident)


def test_nulls_stay_null_and_are_not_sealed(ident: Identity) -> None:
    original = "a: ~\nb: null\nc:\nd: Null\ne: [~, null, 1]\nf: {g: ~, h: 2}\ni:\n  - ~\n  -\nj: 3\n"
    sealed = assert_round_trip(original, ident)
    assert len(tokens(sealed)) == 3  # e[2], f.h, j
    for line in ("a: ~\n", "b: null\n", "c:\n", "d: Null\n", "i:\n  - ~\n  -\n"):
        assert line in sealed
    assert_layout(original, sealed)


SECRET = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: payments
type: Opaque
stringData:
  password: "p@ss: wörd 😀"
  user: admin
  empty: ""
  number-like: "0123"
  bool-like: 'true'
  cert: |
    -----BEGIN CERTIFICATE-----
    MIIB
    -----END CERTIFICATE-----
data:
  tls.crt: {B64_ALL}
  tls.key: {B64_NOT_UTF8}
  .dockerconfigjson: {B64_DOCKER}
  "quoted.key": "{base64.b64encode(b"x").decode()}"
"""


def test_round_trip_secret_both_sections(ident: Identity) -> None:
    sealed = assert_round_trip(SECRET, ident)
    assert len(tokens(sealed)) == 10
    content = unseal(sealed, ident).docs[0].content
    assert base64.b64decode(content["data"]["tls.crt"]) == bytes(range(256))
    assert base64.b64decode(content["data"]["tls.key"]) == b"\xff\xfe\x00\x80\xc3\x28 binary"
    # nothing of the plaintext is left in the sealed text
    for secret in ("p@ss", "admin", B64_ALL, B64_NOT_UTF8, B64_DOCKER, "MIIB"):
        assert secret not in sealed
    # apiVersion, kind, metadata and type stay as they were
    assert sealed.startswith(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: payments\ntype: Opaque\n"
    )


def test_secret_data_is_sealed_as_the_decoded_bytes(ident: Identity) -> None:
    """§2: a data value's plaintext is its bytes: the token's type byte is 'b' and the sealed payload
    is 48 bytes longer than the decoded bytes (one recipient)."""
    sealed = seal(SECRET, ident)
    line = next(ln for ln in sealed.splitlines() if ln.strip().startswith("tls.crt:"))
    blob = line.split(",")[-1].rstrip("]")
    raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    assert raw[:1] == b"b"
    assert len(raw) == 12 + 48 + 256


def test_secret_empty_data_value_round_trips(ident: Identity) -> None:
    original = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  empty: ""\n  x: eA==\n'
    assert_round_trip(original, ident)


@pytest.mark.parametrize("value", ["12", "true", "!!binary aGVsbG8="])
def test_secret_stringdata_non_string_is_refused_or_round_trips(value: str, ident: Identity) -> None:
    original = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  k: {value}\n"
    try:
        sealed = seal(original, ident)
    except InputError:
        return  # refusing it up front is fine
    unseal(sealed, ident)  # what is not refused must open again


def test_multi_document_round_trip(ident: Identity) -> None:
    original = (
        "# file comment\n---\n# empty document\n---\n"
        + SECRET
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n  n: 5\n"
        + "---\nplain: doc\nlist: [1, two]\n"
    )
    sealed = assert_round_trip(original, ident)
    out = unseal(sealed, ident)
    assert [d.index for d in out.docs] == [1, 2, 3]
    assert [d.kind for d in out.docs] == ["Secret", "ConfigMap", None]
    assert "sealer:" not in out.text


# --- byte identity --------------------------------------------------------------------------------

LAYOUT_FILES = {
    "comments-indentation-flow-blocks": """\
# Top comment
# second line

server:
    host: db.internal   # trailing comment
    port: 5432
    "quoted key": 'single quoted'
    'other key': "double quoted"
    "key with: colon": v
    list:
      - one
      - two   # c
    unindented:
    - a
    - b
# between
flow_map: {a: 1, b: "two", c: [x, 'y'], d: {e: f}}
flow_seq: [1, 2.5, true, ~]
empty_val:
nulls: ~
block: |
  line one

  line three


folded: >
  folded one
  folded two

keep: |+
  kept

strip: |-
  stripped
plain_multi: this plain
  scalar spans lines
dq_multi: "double
  quoted"
tagged: !!binary aGVsbG8=
after: end   # last
""",
    "multi-doc-k8s": f"""\
# leading comment for the file
---
# the Secret
apiVersion: v1
kind: Secret
metadata:
  name: db      # name comment
  namespace: payments
  labels:
    app: db
type: Opaque
stringData:
    password: "p@ss: word"   # quoted
    user: admin
data:
  tls.crt: {B64_ALL}
  ".dockerconfigjson": {B64_DOCKER}
---
# a ConfigMap
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  annotations:
    note: "stays"
data:
  key: value
  nested: 'x'
...
%YAML 1.2
--- # a comment on the marker
plain: doc
items:
- name: a
  token: t1
- name: b
  token: t2
# trailing comment of the last document
""",
    "no-trailing-newline": "a: 1\nb: two  # c\nc: [x, y]",
    "indented-top-level": "  a: 1\n  b: two\n",
    "document-end-marker": "a: 1\n...\n",
    "deep-nesting": "a:\n  b:\n    c:\n      - d:\n          e: deep\n        f: [g, {h: i}]\n",
}


@pytest.mark.parametrize("name", list(LAYOUT_FILES))
def test_only_value_text_changes(name: str, ident: Identity) -> None:
    original = LAYOUT_FILES[name]
    sealed = seal(original, ident)
    assert_layout(original, sealed)


def test_layout_check_is_not_vacuous(ident: Identity) -> None:
    """The checker above does catch a changed comment, a re-indented line and a dropped blank line."""
    original = LAYOUT_FILES["comments-indentation-flow-blocks"]
    sealed = seal(original, ident)
    for broken in (
        sealed.replace("# between", "# betwixt"),
        sealed.replace("    port: ", "  port: "),
        sealed.replace("\n\n\nfolded:", "\n\nfolded:", 1),
        sealed.replace("'other key'", '"other key"'),
    ):
        assert broken != sealed
        with pytest.raises(pytest.fail.Exception):
            assert_layout(original, broken)


@pytest.mark.parametrize("name", list(LAYOUT_FILES))
def test_every_line_without_a_value_is_kept_in_order(name: str, ident: Identity) -> None:
    """The brief's line view of the same property: lines that held no selected value survive verbatim
    and in order; changed lines are value lines; added lines are the sealer: block."""
    original = LAYOUT_FILES[name]
    sealed = seal(original, ident)
    value_lines: set[int] = set()
    for _, node, _, _ in selected_values(original):
        first = node.start_mark.line
        text = original[node.start_mark.index : node.end_mark.index].rstrip(" \t\r\n")
        value_lines.update(range(first, first + text.count("\n") + 1))
    kept = [ln for i, ln in enumerate(original.splitlines()) if i not in value_lines]
    it = iter(sealed.splitlines())
    for line in kept:
        assert any(line == s for s in it), f"line {line!r} lost or moved"
    removed, added = changed_lines(original, sealed)
    orig_lines = original.splitlines(keepends=True)
    for line in removed:
        idx = [i for i, ln in enumerate(orig_lines) if ln == line]
        assert any(i in value_lines for i in idx), f"a line without a value changed: {line!r}"
    for line in added:
        block_line = re.fullmatch(r"\s*(sealer:|version: 1|env: prod|scope: \w+)\s*", line)
        assert TOKEN_RE.search(line) or block_line, f"unexpected added line {line!r}"


def test_flow_values_are_double_quoted_and_reparse(ident: Identity) -> None:
    original = "m: {a: 1, b: 'two', c: [x, \"y\"]}\n"
    sealed = seal(original, ident)
    assert re.fullmatch(rf'm: \{{a: "{TOKEN}", b: \'{TOKEN}\', c: \["{TOKEN}", "{TOKEN}"\]\}}\n(?s:.*)', sealed), sealed
    assert_round_trip(original, ident)


@pytest.mark.parametrize("original", ["l: [\n  one,\n  two\n]\n", "m: {\n  a: 1,\n  b: x\n}\n", "m: {a: [\n  x]}\n"])
def test_multi_line_flow_collections(original: str, ident: Identity) -> None:
    sealed = seal(original, ident)
    assert_layout(original, sealed)
    assert_round_trip(original, ident)


def test_comment_on_block_scalar_header_survives(ident: Identity) -> None:
    original = "k: | # keep this note\n  text\n  more\nz: 1\n"
    sealed = seal(original, ident)
    assert "# keep this note" in sealed


def test_crlf_values_round_trip_and_lines_survive(ident: Identity) -> None:
    original = "# c\r\na: 1\r\nb: two # t\r\nc:\r\n  - x\r\n"
    sealed = assert_round_trip(original, ident)
    lines = sealed.split("\n")
    assert lines[0] == "# c\r"
    assert re.fullmatch(rf"a: {TOKEN}\r", lines[1])
    assert re.fullmatch(rf"b: {TOKEN} # t\r", lines[2])
    assert lines[3] == "c:\r"
    assert re.fullmatch(rf"  - {TOKEN}\r", lines[4])


def test_crlf_file_stays_crlf(ident: Identity) -> None:
    original = "a: 1\r\nb: two\r\n"
    sealed = seal(original, ident)
    assert "\n" not in sealed.replace("\r\n", "")
    added = set_value(sealed, SRC, ("c",), b"x", env=ENV, recipients=[ident.recipient], now=NOW)
    assert "\n" not in added.replace("\r\n", "")


# --- reseal ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["comments-indentation-flow-blocks", "multi-doc-k8s"])
def test_sealing_again_changes_nothing(name: str, ident: Identity) -> None:
    once = seal(LAYOUT_FILES[name], ident)
    twice, report = seal_text(once, SRC, env=ENV, recipients=[ident.recipient], now=NOW + 999)
    assert twice == once
    assert report.changed is False
    assert report.sealed == 0
    assert report.kept == len(tokens(once))
    assert report.stale == []


def test_other_recipients_leave_tokens_and_report_them_stale(ident: Identity) -> None:
    other = generate_identity()
    original = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  pw: a\ndata:\n  tls.crt: eA==\n"
    once = seal(original, ident)
    again, report = seal_text(once, SRC, env=ENV, recipients=[other.recipient], now=NOW)
    assert again == once
    assert report.changed is False
    assert report.sealed == 0
    assert sorted(report.stale) == sorted([("stringData.pw", (ident.kid,)), ('data["tls.crt"]', (ident.kid,))])
    # a value added since is sealed to the new set, the old tokens stay byte-identical
    grown = once.replace("  pw: ", "  new: plain\n  pw: ")
    resealed, report = seal_text(grown, SRC, env=ENV, recipients=[other.recipient, ident.recipient], now=NOW)
    assert report.sealed == 1
    assert len(report.stale) == 2
    for tok in tokens(once):
        assert tok in resealed
    new_line = next(ln for ln in resealed.splitlines() if ln.startswith("  new: "))
    assert f",{other.kid}+{ident.kid}," in new_line
    assert unseal(resealed, other, ident).docs[0].content["stringData"]["new"] == "plain"
    with pytest.raises(SealerError):  # the old tokens are still on the old key only
        unseal(resealed, other)


def test_unseal_refuses_a_file_for_another_env(ident: Identity) -> None:
    sealed = seal("a: 1\n", ident)
    with pytest.raises(EnvironmentMismatch, match=SRC):
        unseal_file(load(sealed, SRC), {ident.kid: ident}.get, env="staging", rules=UNCHECKED)


# --- set ------------------------------------------------------------------------------------------

SEALED_SECRET_SRC = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: payments
stringData:
    password: old   # keep me
    user: admin
data:
    ca.crt: eA==
"""


@pytest.fixture()
def sealed_secret(ident: Identity) -> str:
    return seal(SEALED_SECRET_SRC, ident)


def _set(text: str, path: Path, value: bytes, ident: Identity, **kw: Any) -> str:
    return set_value(text, SRC, path, value, env=ENV, recipients=[ident.recipient], now=NOW, **kw)


def test_set_replaces_exactly_one_line(sealed_secret: str, ident: Identity) -> None:
    new = _set(sealed_secret, ("stringData", "password"), b"n3w p@ss", ident)
    removed, added = changed_lines(sealed_secret, new)
    assert len(removed) == len(added) == 1
    assert removed[0].startswith("    password: ENC[")
    assert re.fullmatch(rf"    password: {TOKEN}   # keep me\n", added[0])
    old_lines, new_lines = sealed_secret.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    assert [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b] == [6]
    content = unseal(new, ident).docs[0].content
    assert content["stringData"] == {"password": "n3w p@ss", "user": "admin"}


def test_set_adds_one_line_at_the_siblings_indentation(sealed_secret: str, ident: Identity) -> None:
    new = _set(sealed_secret, ("stringData", "api-key"), b"k3y", ident)
    removed, added = changed_lines(sealed_secret, new)
    assert removed == []
    assert len(added) == 1
    assert re.fullmatch(rf"    api-key: {TOKEN}\n", added[0])
    lines = new.splitlines()
    user = next(i for i, ln in enumerate(lines) if ln.startswith("    user: "))
    assert lines[user + 1] == added[0].rstrip("\n")  # right after the last stringData entry
    content = unseal(new, ident).docs[0].content
    assert content["stringData"] == {"password": "old", "user": "admin", "api-key": "k3y"}


def test_set_data_key_with_dots_stores_bytes(sealed_secret: str, ident: Identity) -> None:
    raw = b"\x00\xff\xfe\x80 not utf-8 \xc3\x28"
    new = _set(sealed_secret, ("data", "tls.crt"), raw, ident)
    removed, added = changed_lines(sealed_secret, new)
    assert removed == [] and len(added) == 1
    assert re.fullmatch(rf'    (tls\.crt|"tls\.crt"): {TOKEN}\n', added[0])
    content = unseal(new, ident).docs[0].content
    assert content["data"]["tls.crt"] == base64.b64encode(raw).decode()
    assert content["data"]["ca.crt"] == "eA=="
    new2 = _set(new, ("data", ".dockerconfigjson"), b'{"auths":{}}', ident)
    assert (
        unseal(new2, ident).docs[0].content["data"][".dockerconfigjson"] == base64.b64encode(b'{"auths":{}}').decode()
    )


def test_set_into_secret_without_stringdata_creates_it(ident: Identity) -> None:
    original = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n"
    new = _set(original, ("stringData", "pw"), b"s3cret", ident)
    assert new.startswith(original)
    content = unseal(new, ident).docs[0].content
    assert content == {**safe_load_all(original)[0], "stringData": {"pw": "s3cret"}}


def test_set_needs_only_public_keys(ident: Identity) -> None:
    """`set` on a file sealed to a key nobody here holds: only recipients are passed, nothing opens."""
    custodian = generate_identity()
    recipient = custodian.recipient
    sealed, _ = seal_text(SEALED_SECRET_SRC, SRC, env=ENV, recipients=[recipient], now=NOW)
    new = set_value(sealed, SRC, ("stringData", "password"), b"rotated", env=ENV, recipients=[recipient])
    new = set_value(new, SRC, ("stringData", "extra"), b"added", env=ENV, recipients=[recipient])
    content = unseal(new, custodian).docs[0].content  # only the custodian can check
    assert content["stringData"] == {"password": "rotated", "user": "admin", "extra": "added"}


def test_set_keeps_the_existing_type(ident: Identity) -> None:
    original = "port: 5432\nratio: 0.5\non: true\nname: x\n"
    new = original
    for path, value in ((("port",), b"6543"), (("ratio",), b"0.25"), (("on",), b"false"), (("name",), b"42")):
        new = _set(new, path, value, ident)
    assert unseal(new, ident).docs[0].content == {"port": 6543, "ratio": 0.25, "on": False, "name": "42"}


def test_set_with_explicit_type(ident: Identity) -> None:
    new = _set("a: x\n", ("n",), b"-12", ident, vtype="i")
    assert unseal(new, ident).docs[0].content == {"a": "x", "n": -12}
    with pytest.raises(InputError, match=SRC):
        _set("a: x\n", ("n",), b"twelve", ident, vtype="i")


def test_set_in_multi_document_file(ident: Identity) -> None:
    original = "a: 1\nshared: x\n---\nb: 2\nshared: y\n"
    new = _set(original, ("b",), b"20", ident)
    assert unseal(new, ident).docs[1].content == {"b": 20, "shared": "y"}
    assert new.startswith("a: 1\nshared: x\n---\n")
    with pytest.raises(UsageError):  # in both documents: which one?
        _set(original, ("shared",), b"z", ident)
    new = _set(original, ("shared",), b"z", ident, document=1)
    docs = {d.index: d.content for d in unseal(new, ident).docs}
    assert docs[0] == {"a": 1, "shared": "x"}
    assert docs[1] == {"b": 2, "shared": "z"}
    new = _set(original, ("c",), b"new", ident, document=0)
    docs = {d.index: d.content for d in unseal(new, ident).docs}
    assert docs[0] == {"a": 1, "shared": "x", "c": "new"}


@pytest.mark.parametrize(
    ("original", "path"),
    [
        ("a: 1\n", ("missing", "x")),  # no parent
        ("a: 1\n", ("a", "x")),  # into a scalar
        ("l: [1]\n", ("l", 5)),  # list append
        ("m:\n  k: v\n", ("m",)),  # a mapping, not a value
        ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n", ("stringData", "a", "b")),
        ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n", ("type",)),
        ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n", ("data", 0)),
    ],
)
def test_set_bad_paths_raise_path_error(original: str, path: Path, ident: Identity) -> None:
    with pytest.raises(PathError):
        _set(original, path, b"v", ident)


@pytest.mark.parametrize(
    "path", [("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "labels"), ("sealer", "env")]
)
def test_set_refuses_manifest_keys_and_the_sealer_block(path: Path, ident: Identity) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: v\n"
    sealed = seal(cm, ident)
    with pytest.raises(PathError):
        _set(sealed, path, b"x", ident)


# --- selection ------------------------------------------------------------------------------------

SELECT_DOC = """\
db:
  host: db.internal
  password: hunter2
servers:
  - name: a
    token: t-a
  - name: b
    token: t-b
"odd.key": v
"""


def test_selector_seals_only_matching_leaves(ident: Identity) -> None:
    seen: list[str] = []

    def select(path: str) -> bool:
        seen.append(path)
        return path.endswith((".password", ".token"))

    sealed = seal(SELECT_DOC, ident, selector=select)
    assert sorted(seen) == sorted(
        [
            "db.host",
            "db.password",
            "servers[0].name",
            "servers[0].token",
            "servers[1].name",
            "servers[1].token",
            '["odd.key"]',
        ]
    )
    assert len(tokens(sealed)) == 3
    for kept in ("  host: db.internal\n", "  - name: a\n", "  - name: b\n", '"odd.key": v\n'):
        assert kept in sealed
    assert_layout(SELECT_DOC, sealed, lambda p: p.endswith((".password", ".token")))
    assert_round_trip(SELECT_DOC, ident, selector=select)
    # resealing with the selector keeps everything; tokens count as selected even if the rule changed
    again, report = seal_text(sealed, SRC, env=ENV, recipients=[ident.recipient], selector=lambda p: False)
    assert again == sealed and report.kept == 3


def test_manifest_header_is_never_sealed(ident: Identity) -> None:
    original = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\n"
        "spec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - env:\n"
        "            - name: TOKEN\n              value: abc\n"
    )
    seen: list[str] = []
    sealed = seal(original, ident, selector=lambda p: seen.append(p) or True)  # a rule selecting everything
    assert sealed.startswith("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\n")
    assert len(tokens(sealed)) == 3  # replicas, env[0].name, env[0].value: nothing above spec
    assert_round_trip(original, ident, selector=lambda p: True)
    assert not [p for p in seen if p.split(".")[0].split("[")[0] in ("apiVersion", "kind", "metadata")]
    # Without a rule, a manifest other than a Secret seals nothing (tests/test_manifests.py, the doors).
    assert seal(original, ident) == original


def test_not_a_manifest_without_apiversion(ident: Identity) -> None:
    """§2: a manifest has both apiVersion and kind; without apiVersion every leaf is a value."""
    original = "kind: Thing\nmetadata:\n  name: x\n"
    sealed = seal(original, ident)
    assert len(tokens(sealed)) == 2
    assert_layout(original, sealed)


def test_secret_ignores_the_selector_and_seals_its_sections(ident: Identity) -> None:
    original = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  a: x\ntype: Opaque\n"
    sealed = seal(original, ident, selector=lambda p: False)
    assert len(tokens(sealed)) == 1
    assert "type: Opaque\n" in sealed


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", "line 3"),
        ("a: 1\nb: c: d\n", "line 2"),
        ("a: 'unterminated\n", "line"),
        ("\ta: 1\n", "line 1"),
    ],
)
def test_malformed_yaml(text: str, needle: str, ident: Identity) -> None:
    with pytest.raises(InputError) as info:
        seal(text, ident)
    assert SRC in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "- 1\n- 2\n",  # top-level list
        "a: 1\n---\n- x\n",  # second document is a list
        "just a scalar\n",
        "a: &x 1\nb: *x\n",
        "a: &x secret\n",
        "l:\n  - &x {b: 1}\n  - *x\n",
        "a: !foo 1\n",
        "m:\n  x: !secret v\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  k: &a v\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  k: !vault v\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  k: not base64!\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  k: eA=\n",  # bad padding
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata: [a]\n",
        "a: 1\nsealer:\n  version: 2\n  env: prod\n  scope: env\n",
        "a: 1\nsealer:\n  version: 99\n  env: prod\n  scope: env\n",
        "a: 1\nsealer: yes\n",
        "{a: 1}\n",  # flow top level
    ],
)
def test_bad_input_is_input_error_naming_the_source(text: str, ident: Identity) -> None:
    with pytest.raises(InputError) as info:
        seal(text, ident)
    assert SRC in str(info.value)


def test_unknown_sealer_version_says_so(ident: Identity) -> None:
    with pytest.raises(InputError, match=r"version 2\b"):
        seal("a: 1\nsealer:\n  version: 2\n  env: prod\n  scope: env\n", ident)
    with pytest.raises(InputError, match=r"version 2\b"):
        unseal("a: 1\nsealer:\n  version: 2\n  env: prod\n  scope: env\n", ident)


def test_file_sealed_for_another_env(ident: Identity) -> None:
    sealed, _ = seal_text("a: 1\n", SRC, env="staging", recipients=[ident.recipient], now=NOW)
    with pytest.raises(EnvironmentMismatch) as info:
        seal(sealed, ident)
    assert SRC in str(info.value)
    assert "staging" in str(info.value)
    with pytest.raises(EnvironmentMismatch):
        _set(sealed, ("b",), b"x", ident)


def test_aliased_secret_section_is_refused(ident: Identity) -> None:
    original = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: n\n  labels: &l\n    k: v\nstringData: *l\n"
    with pytest.raises(InputError):
        seal(original, ident)


def test_custom_tag_outside_sealed_values_seals_and_unseals(ident: Identity) -> None:
    original = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: !foo x\ndata:\n  k: v\n"
    try:
        sealed = seal(original, ident)
    except InputError:
        return  # refusing it up front would be consistent too
    assert unseal(sealed, ident).docs[0].content["data"] == {"k": "v"}


@pytest.mark.parametrize("scalar", ["0777", "1:20", "190:20:30.15"])
def test_yaml_1_1_numbers(scalar: str, ident: Identity) -> None:
    original = f"%YAML 1.1\n---\nv: {scalar}\n"
    try:
        sealed = seal(original, ident)
    except InputError:
        return  # refusing YAML 1.1 would be acceptable
    assert norm(unseal(sealed, ident).docs[0].content) == norm(safe_load_all(original)[0])


def test_error_messages_do_not_echo_values(ident: Identity) -> None:
    canary = "CANARY-51e7-plaintext"
    cases = [
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  k: {canary}!\n",
        f"a: !foo {canary}\n",
        f"a: &x {canary}\n",
    ]
    for text in cases:
        with pytest.raises(SealerError) as info:
            seal(text, ident)
        assert canary not in str(info.value)
    with pytest.raises(SealerError) as info:
        _set("a: 1\n", ("a",), canary.encode(), ident)  # not an integer
    assert canary not in str(info.value)


# --- property -------------------------------------------------------------------------------------

_KEYS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=12).filter(
    lambda k: k not in ("sealer", "kind", "<<")
)
_VALUES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=8))
def test_property_seal_unseal_gives_back_the_data(data: dict[str, Any], ident: Identity) -> None:
    buf = io.StringIO()
    YAML().dump(data, buf)
    original = buf.getvalue()
    assume(safe_load_all(original) == [data])  # the dump itself is faithful
    sealed = seal(original, ident)
    assert len(tokens(sealed)) == len(data)
    assert unseal(sealed, ident).docs[0].content == data
