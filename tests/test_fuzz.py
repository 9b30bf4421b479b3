"""Fuzzing (DESIGN.md §10): generated and mutated YAML files and tokens never crash the library or the
CLI with anything but a `SealerError`, and no error message ever carries a plaintext.

Documents are written as *text* by a small emitter (nested maps and lists in block and flow style,
every YAML scalar type, unicode, odd keys, comments, block scalars, tags, anchors, several
documents, Kubernetes Secrets with data and stringData); every string value carries a canary. They
go through `seal_text` -> `load` -> `unseal_file`, `set_value`, `check_text`, `tokens.locate` and,
after a key rotation, `rotation.reseal` of a real repository. Sealed files are then mutated (flips,
insertions, deletions, truncations, line swaps) and tokens are truncated and mutated: each mutated
token must fail to open, and each failure must be a `SealerError` whose message has no canary.

The number of examples comes from the hypothesis profile (tests/conftest.py: `dev` 100 per test,
`ci` 200, `long` 5000 under `make fuzz`). Run with `-s` to see the count of examples executed.

The bugs this fuzzer found (surrogate and out-of-range escapes, tokens not written verbatim,
non-UTF-8 plaintext in a text-typed token) are fixed; their cases stay as regression tests at the end.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sealer import _envelope as envelope
from sealer import _format
from sealer import _locator as tokens
from sealer import _rotation as rotation
from sealer._check import check_text, env_rules
from sealer._config import load_config, write_config
from sealer._document import load
from sealer._format.valuepath import Path as ValuePath
from sealer._keys import generate_identity
from sealer._registry import generate_key, rotate_key
from sealer._seal import seal_text, set_value
from sealer._unseal import UNCHECKED, unseal_file
from sealer.errors import SealerError

SEALER = str(Path(sys.executable).parent / "sealer")
CANARY = "CANARY-fz4b1d"
ENV = "prod"
SRC = "deploy/prod/fuzz.yaml"
NOW = 1_764_028_800
KEY = generate_identity()
RECOVERY = generate_identity()
STRANGER = generate_identity()
IDS = {KEY.kid: KEY, RECOVERY.kid: RECOVERY}
RECIPIENTS = [KEY.recipient]
TWO = [KEY.recipient, RECOVERY.recipient]

COUNTS: Counter[str] = Counter()


def identity_for(kid: str) -> Any:
    return IDS.get(kid)


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    total = sum(COUNTS.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
    print(f"\nfuzz examples run: {total} ({detail})")


def clean(err: BaseException) -> None:
    """An expected failure: a SealerError with a one-line message and no plaintext in it."""
    assert isinstance(err, SealerError), f"{type(err).__name__}: {err}"
    text = str(err)
    assert CANARY not in text, text
    assert "\n" not in text, text


def attempt(fn: Callable[[], Any]) -> Any:
    """fn(), or None after a clean SealerError. Any other exception fails the test."""
    try:
        return fn()
    except SealerError as e:
        clean(e)
        return None


# --- an emitter: Python trees of YAML snippets, written as text ----------------------------------


class Block:
    """A block scalar (`|`, `>-` ...) with its content lines, indented where it is placed."""

    def __init__(self, head: str, lines: list[str]) -> None:
        self.head, self.lines = head, lines


_PLAIN = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,10}", fullmatch=True)
ODD_KEYS = st.one_of(
    _PLAIN,
    st.sampled_from(
        [
            "tls.crt",
            ".dockerconfigjson",
            "a b",
            "ключ",
            "🔑",
            "1",
            "0x1F",
            "true",
            "null",
            "~",
            "-x",
            "a:b",
            "#x",
            "[x]",
            "{y}",
            "'q'",
            '"d"',
            "k\\e",
            "",
            " ",
            "ENC[sealer.v1,x]",
            "a\tb",
            "line\nbreak",
        ]
    ),
    st.text(max_size=6),
)
TOP_KEYS = ODD_KEYS.filter(lambda k: k not in ("sealer", "apiVersion", "kind", "metadata"))


def dq(s: str, *, ascii_only: bool = False) -> str:
    """A YAML double-quoted scalar. Not json.dumps(ensure_ascii=True): YAML's `\\u` takes no surrogate
    pairs (a character beyond U+FFFF is `\\U` and 8 digits); surrogate escapes have their own test."""
    out = json.dumps(s, ensure_ascii=False)
    return "".join(_escape(c) if ascii_only or _NON_PRINTABLE.match(c) else c for c in out)


_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(c: str) -> str:
    o = ord(c)
    return c if 0x20 <= o < 0x7F else f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def key_text(draw: Any, k: str) -> str:
    if _is_plain(k) and draw(st.integers(0, 3)):
        return k
    return dq(k, ascii_only=draw(st.booleans()))


def _is_plain(s: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", s)) and s.lower() not in ("true", "false", "null", "yes", "no")


@st.composite
def canary_string(draw: Any) -> str:
    extra = draw(st.text(max_size=12))
    where = draw(st.integers(0, 2))
    return [CANARY + extra, extra + CANARY, f"{extra[:3]}{CANARY}{extra[3:]}"][where]


@st.composite
def string_scalar(draw: Any) -> str | Block:
    s = draw(canary_string())
    style = draw(st.sampled_from(["dq", "dq-ascii", "sq", "plain", "block", "folded"]))
    if style == "plain" and _is_plain(s.replace(" ", "")) and s == s.strip():
        return s
    if style == "sq" and "\n" not in s:
        return "'" + s.replace("'", "''") + "'"
    if style in ("block", "folded"):
        lines = [ln for ln in (s + "\nsecond " + CANARY).splitlines() if ln.strip()] or [CANARY]
        if all(ln == ln.strip() and ln.isprintable() for ln in lines):
            return Block(draw(st.sampled_from(["|", "|-", "|+", ">", ">-"])), lines)
    return dq(s, ascii_only=style == "dq-ascii")


GOOD_SCALARS = st.one_of(
    string_scalar(),
    string_scalar(),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0x1F", "0o17", "+12", "-0", "007"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from([".inf", "-.inf", ".nan", "1e3", "1.5e-7", "-.5"]),
    st.sampled_from(["true", "false", "True", "FALSE"]),
    st.sampled_from(["null", "~", ""]),
    st.sampled_from(["2001-12-14t21:59:43.10-05:00", "2002-12-14", "2001-12-14 21:59:43.10 -5"]),
    st.sampled_from(["!!binary aGVsbG8gQ0FOQVJZ", "!!str 12", "!!int 7", "!!float 1", "!!null ''"]),
)
# Refused or malformed on purpose: custom tags (never constructed), anchors and aliases, complex keys.
HOSTILE_SCALARS = st.sampled_from(
    [
        "!foo bar",
        "!!python/object:os.system ls",
        "!!python/object/apply:os.system [ls]",
        "!<tag:example.com,2000:x> y",
        "!!set {}",
        "&a anchored",
        "*a",
        "*undefined",
        "? complex",
    ]
)
SCALARS = st.integers(0, 24).flatmap(lambda i: HOSTILE_SCALARS if i == 13 else GOOD_SCALARS)

TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(ODD_KEYS, inner), max_size=4),
    ),
    max_leaves=12,
)


class Emitter:
    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def comment(self) -> str:
        if self.draw(st.integers(0, 5)) == 0:
            return "  " + self.draw(st.sampled_from(["# note", "# ünïcode: [x]", "#", "# ENC[sealer.v1,"]))
        return ""

    def flow(self, v: Any) -> str:
        if isinstance(v, Block):
            return dq("\n".join(v.lines))
        if isinstance(v, str):
            return v if v else '""'
        if v and isinstance(v[0], tuple):
            return "{" + ", ".join(f"{key_text(self.draw, k)}: {self.flow(x)}" for k, x in v) + "}"
        if not v and self.draw(st.booleans()):
            return "{}"
        return "[" + ", ".join(self.flow(x) for x in v) + "]"

    def block(self, v: Any, indent: int) -> list[str]:
        """Lines for a mapping (list of pairs) or a sequence, at `indent`."""
        pad = " " * indent
        out: list[str] = []
        is_map = bool(v) and isinstance(v[0], tuple)
        for item in v:
            if is_map:
                k, x = item
                lead = f"{pad}{key_text(self.draw, k)}:"
            else:
                x = item
                lead = f"{pad}-"
            if self.draw(st.integers(0, 7)) == 0:
                out.append(pad + "# between")
            if isinstance(x, Block):
                out.append(f"{lead} {x.head}{self.comment()}")
                out += [" " * (indent + 2) + ln for ln in x.lines]
            elif isinstance(x, str):
                out.append(f"{lead} {x}{self.comment()}".rstrip() if x else f"{lead}{self.comment()}")
            elif not x or self.draw(st.integers(0, 3)) == 0:
                out.append(f"{lead} {self.flow(x)}{self.comment()}")
            else:
                out.append(lead + self.comment())
                out += self.block(x, indent + 2)
        return out


@st.composite
def generic_doc(draw: Any) -> str:
    em = Emitter(draw)
    pairs = draw(st.lists(st.tuples(TOP_KEYS, TREES), min_size=1, max_size=5))
    if draw(st.integers(0, 29)) == 13:
        return em.flow(pairs) + "\n"  # a flow top level: refused, cleanly
    return "\n".join(em.block(pairs, 0)) + "\n"


@st.composite
def secret_doc(draw: Any) -> str:
    em = Emitter(draw)
    name = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))
    ns = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))
    lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {name}", f"  namespace: {ns}", "type: Opaque"]
    string_data = draw(st.lists(st.tuples(ODD_KEYS, string_scalar()), max_size=4, unique_by=lambda t: t[0]))
    data = draw(st.lists(st.tuples(ODD_KEYS, st.binary(max_size=24)), max_size=3, unique_by=lambda t: t[0]))
    if string_data or draw(st.booleans()):
        if draw(st.integers(0, 4)) == 0:
            lines.append("stringData: " + em.flow(string_data))
        else:
            lines += ["stringData:", *em.block(string_data, 2)] if string_data else ["stringData: {}"]
    if data:
        pairs = [(k, base64.b64encode(CANARY.encode() + v).decode() or '""') for k, v in data]
        lines += ["data:", *em.block(pairs, 2)]
    if draw(st.integers(0, 6)) == 0:
        lines.insert(0, "# a Secret")
    return "\n".join(lines) + "\n"


@st.composite
def yaml_files(draw: Any) -> str:
    docs = draw(st.lists(st.one_of(secret_doc(), generic_doc()), min_size=1, max_size=3))
    sep = draw(st.sampled_from(["---\n", "--- # next\n", "...\n---\n"]))
    text = sep.join(docs)
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(["---\n", "%YAML 1.2\n---\n", "# head\n"])) + text
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("\n", "\r\n")
    return text


# --- mutations ---------------------------------------------------------------------------------------

_NOISE = st.one_of(
    st.sampled_from(
        ["]", "[", ",", "+", ":", "\n", " ", "#", "'", '"', "&a ", "*a", "!x ", "ENC[sealer.v1,", "-", "A", "_"]
    ),
    st.text(min_size=1, max_size=4),
)


@st.composite
def mutated(draw: Any, text: str) -> str:
    for _ in range(draw(st.integers(1, 3))):
        n = len(text)
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "swap-lines", "dup-line", "token-flip"]))
        i = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            text = text[:i] + draw(_NOISE)[0] + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + draw(_NOISE) + text[i:]
        elif op == "delete" and n:
            j = draw(st.integers(i, min(n, i + 8)))
            text = text[:i] + text[j:]
        elif op == "truncate":
            text = text[:i]
        elif op in ("swap-lines", "dup-line"):
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            if op == "swap-lines":
                lines[a], lines[b] = lines[b], lines[a]
            else:
                lines.insert(b, lines[a])
            text = "\n".join(lines)
        elif op == "token-flip":
            starts = [k for k in range(n) if text.startswith("ENC[", k)]
            if starts:
                s = draw(st.sampled_from(starts))
                j = draw(st.integers(s, min(n - 1, s + 160)))
                c = draw(st.sampled_from("AZaz09-_+,]g"))
                text = text[:j] + c + text[j + 1 :]
    return text


# --- what every generated file goes through -----------------------------------------------------------


def _norm(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, dict):
        return {_norm(k): _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def plaintext_docs(text: str) -> list[Any] | None:
    """The data of the plaintext file (None when it has duplicate keys: ruamel refuses those)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError

    try:
        return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]
    except DuplicateKeyError:
        COUNTS["duplicate keys"] += 1
        return None
    except ConstructorError:  # a collection under a custom tag: sealer never constructs it, ruamel refuses
        return None


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")


def exercise_sealed(text: str, cfg: Any = None) -> None:
    """A sealed (maybe mutated) file through every reader; only clean SealerErrors allowed."""
    sf = attempt(lambda: load(text, SRC))
    if sf is not None:
        attempt(lambda: unseal_file(sf, identity_for, env=ENV, rules=UNCHECKED))
        attempt(lambda: unseal_file(sf, identity_for, env=ENV, structured=False, rules=UNCHECKED))
    attempt(lambda: tokens.locate(text, SRC))
    attempt(lambda: tokens.locate(text, SRC, fast=False))
    attempt(lambda: seal_text(text, SRC, env=ENV, recipients=RECIPIENTS, now=NOW))
    if cfg is not None:
        for problem in check_text(cfg, ENV, SRC, text, rules=env_rules(cfg, ENV), identity_for=identity_for)[0]:
            assert CANARY not in problem.render()


@given(text=yaml_files(), two=st.booleans())
def test_seal_unseal_generated_files(text: str, two: bool, repo: Any) -> None:
    COUNTS["seal/unseal/check"] += 1
    result = attempt(lambda: seal_text(text, SRC, env=ENV, recipients=TWO if two else RECIPIENTS, now=NOW))
    if result is None:
        return
    sealed, _report = result
    assert CANARY not in sealed, "a plaintext value was left in the sealed file"
    # A file that seals must unseal (all or nothing), to the same data.
    u = unseal_file(load(sealed, SRC), identity_for, env=ENV, rules=UNCHECKED)
    want = plaintext_docs(text)
    got = [d.content for d in u.docs]
    if "!!set" in text:  # a collection tag is not constructed: the set reads back as a mapping
        want = None
    for doc, w, g in zip(u.docs, want or [], got, strict=want is not None):
        if doc.kind == "Secret":
            for section in ("stringData", "data"):
                if isinstance(w.get(section), dict):
                    assert {k: str(v) for k, v in w[section].items()} == {k: str(v) for k, v in g[section].items()}
        else:
            assert _norm(w) == _norm(g)
    exercise_sealed(sealed, repo["cfg"])
    problems = check_text(repo["cfg"], ENV, SRC, sealed, rules=env_rules(repo["cfg"], ENV), identity_for=identity_for)
    assert not [p for p in problems[0] if p.code in ("malformed", "token", "moved", "unseal", "plaintext")], problems


@given(text=yaml_files(), data=st.data())
def test_mutated_sealed_files_fail_cleanly(text: str, data: st.DataObject, repo: Any) -> None:
    result = attempt(lambda: seal_text(text, SRC, env=ENV, recipients=TWO, now=NOW))
    assume(result is not None)
    COUNTS["mutated files"] += 1
    sealed = result[0]
    bad = data.draw(mutated(sealed))
    exercise_sealed(bad, repo["cfg"])


@st.composite
def value_paths(draw: Any) -> ValuePath:
    first = draw(st.one_of(st.sampled_from(["stringData", "data"]), ODD_KEYS))
    rest = draw(st.lists(st.one_of(ODD_KEYS, st.integers(0, 3)), max_size=3))
    return (first, *rest)


@given(
    text=yaml_files(), path=value_paths(), value=st.binary(max_size=16), vtype=st.sampled_from([None, "s", "i", "b"])
)
def test_set_value_on_generated_files(text: str, path: ValuePath, value: bytes, vtype: str | None) -> None:
    COUNTS["set"] += 1
    value = CANARY.encode() + value
    base = attempt(lambda: seal_text(text, SRC, env=ENV, recipients=RECIPIENTS, now=NOW))
    start = base[0] if base is not None else text
    new = attempt(lambda: set_value(start, SRC, path, value, env=ENV, recipients=RECIPIENTS, vtype=vtype, now=NOW))
    if new is None:
        return
    if base is not None:
        assert CANARY not in new
        # The value lands, sealed, and the whole file opens.
        u = unseal_file(load(new, SRC), identity_for, env=ENV, rules=UNCHECKED)
        assert any(_holds(d.content, value) for d in u.docs)


def _holds(node: Any, value: bytes) -> bool:
    if isinstance(node, dict):
        return any(_holds(v, value) for v in node.values())
    if isinstance(node, list):
        return any(_holds(v, value) for v in node)
    if isinstance(node, bytes):
        return node == value
    if isinstance(node, str):
        if node.encode("utf-8", "surrogateescape") == value:
            return True
        try:
            return base64.b64decode(node, validate=True) == value
        except ValueError:
            return False
    return False


# --- tokens ---------------------------------------------------------------------------------------------

CTX = _format.Context(env=ENV, scope="strict", namespace="shop", name="db", path=("stringData", "password"))


_TYPED = {
    "i": ["0", "-17", "0x1F", "0o17", "123456789012345678901234567890"],
    "f": [".inf", "-.inf", ".nan", "1e3", "3.14", "1"],
    "t": ["true", "False"],
    "d": ["2002-12-14", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z"],
}


@st.composite
def sealed_tokens(draw: Any) -> tuple[str, bytes]:
    recipients = draw(st.sampled_from([RECIPIENTS, TWO, [RECOVERY.recipient, KEY.recipient]]))
    vtype = draw(st.sampled_from(list(_format.TYPES)))
    if vtype == "b":
        value = CANARY.encode() + draw(st.binary(max_size=40))
    elif vtype == "s":
        value = (CANARY + draw(st.text(max_size=20))).encode("utf-8", "surrogatepass")
        assume(_format.value_problem("s", value) is None)
    else:  # typed plaintexts must be canonical (docs/format.md § 5); the canary rides in a string elsewhere
        value = draw(st.sampled_from(_TYPED[vtype])).encode()
    return envelope.seal(vtype, value, CTX, recipients, sealed_at=draw(st.integers(0, 2**40 - 1))), value


@st.composite
def bad_tokens(draw: Any) -> str:
    token, _ = draw(sealed_tokens())
    bad = draw(_mutate_token(token))
    assume(bad != token)
    return bad


@st.composite
def _mutate_token(draw: Any, token: str) -> str:
    how = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "garbage", "kids"]))
    if how == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    if how == "garbage":
        return "ENC[sealer." + draw(st.text(max_size=40))
    if how == "kids":
        kids = draw(st.sampled_from([STRANGER.kid, KEY.kid + "+" + KEY.kid, "", "x" * 16, KEY.kid.upper()]))
        blob = token.rsplit(",", 1)[1]
        return f"ENC[sealer.v1,{kids},{blob}"
    i = draw(st.integers(0, len(token) - 1))
    c = draw(st.sampled_from("AQgw-_09+,][EN. é"))
    if how == "flip":
        return token[:i] + c + token[i + 1 :]
    if how == "insert":
        return token[:i] + c + token[i:]
    return token[:i] + token[i + 1 :]


@given(pair=sealed_tokens())
def test_valid_tokens_open_to_their_value(pair: tuple[str, bytes]) -> None:
    COUNTS["tokens valid"] += 1
    token, value = pair
    assert envelope.unseal(_format.parse_token(token), CTX, identity_for, where=SRC) == value
    moved = _format.Context(ENV, "strict", "shop", "db2", CTX.path)
    with pytest.raises(SealerError) as e:
        envelope.unseal(_format.parse_token(token), moved, identity_for, where=SRC)
    clean(e.value)


@given(token=bad_tokens())
def test_mutated_tokens_never_open(token: str) -> None:
    COUNTS["tokens mutated"] += 1
    try:
        parsed = _format.parse_token(token)
        opened = envelope.unseal(parsed, CTX, identity_for, where=SRC)
    except SealerError as e:
        clean(e)
    else:  # only a change that leaves the token's meaning intact may open
        raise AssertionError(f"a mutated token opened: {token!r} -> {opened!r}")
    doc = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\nstringData:\n"
        f"  password: {token}\nsealer:\n  version: 1\n  env: prod\n  scope: strict\n"
    )
    exercise_sealed(doc)


@given(text=st.text(max_size=200).map(lambda s: "ENC[sealer." + s))
def test_locate_and_parse_arbitrary_text(text: str) -> None:
    COUNTS["tokens text"] += 1
    attempt(lambda: _format.parse_token(text))
    attempt(lambda: tokens.locate("a: " + text + "\n", SRC))
    attempt(lambda: tokens.locate("stringData:\n  - " + text + "\nsealer: {version: 1}\n", SRC))


# --- reseal after a rotation, in a real repository --------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fuzzrepo")
    root = tmp / "repo"
    root.mkdir()
    write_config(root, [ENV])
    _rec, old_key = generate_key(root, ENV, out=tmp / "old.txt")
    _rec, _prev, new_key = rotate_key(root, ENV, out=tmp / "new.txt")
    from sealer._identities import read_identity_file

    old, new = read_identity_file(old_key)[0], read_identity_file(new_key)[0]
    (root / "deploy" / ENV).mkdir(parents=True)
    cfg = load_config(root)
    IDS[old.kid] = old
    IDS[new.kid] = new
    return {"root": root, "cfg": cfg, "old": old, "new": new}


@given(text=yaml_files(), data=st.data(), mutate=st.booleans())
def test_reseal_after_rotation(text: str, data: st.DataObject, mutate: bool, repo: dict[str, Any]) -> None:
    cfg, old, new = repo["cfg"], repo["old"], repo["new"]
    result = attempt(lambda: seal_text(text, SRC, env=ENV, recipients=[old.recipient], now=NOW))
    assume(result is not None and "ENC[" in result[0])
    COUNTS["reseal"] += 1
    sealed = data.draw(mutated(result[0])) if mutate else result[0]
    path = repo["root"] / SRC
    path.write_text(sealed, encoding="utf-8", newline="")
    plan = attempt(lambda: rotation.make_plan(cfg, [path]))
    if plan is None:
        return
    only = {old.kid: old}
    summary = attempt(lambda: rotation.reseal(cfg, plan, only.get, workers=1))
    if summary is None:
        return
    for r in summary.results:
        assert r.error is None or CANARY not in r.error, r.error
    if mutate:
        return
    assert not summary.failed, [r.error for r in summary.failed]
    after = path.read_bytes().decode("utf-8")
    assert old.kid not in after
    opened = unseal_file(load(after, SRC), {new.kid: new}.get, env=ENV, rules=UNCHECKED)
    before = unseal_file(load(sealed, SRC), {old.kid: old}.get, env=ENV, rules=UNCHECKED)
    assert opened.text == before.text


# --- the CLI on fuzzed files ------------------------------------------------------------------------------


@settings(max_examples=max(8, min(40, settings.default.max_examples // 10)))
@given(text=yaml_files(), data=st.data(), kind=st.sampled_from(["plain", "sealed", "mutated", "bytes"]))
def test_cli_on_fuzzed_files(text: str, data: st.DataObject, kind: str, cli_repo: dict[str, Any]) -> None:
    COUNTS["cli"] += 1
    root, key = cli_repo["root"], cli_repo["key"]
    raw = text.encode()
    if kind != "plain":
        result = attempt(lambda: seal_text(text, SRC, env=ENV, recipients=[cli_repo["recipient"]], now=NOW))
        if result is not None:
            raw = result[0].encode()
            if kind == "mutated":
                raw = data.draw(mutated(result[0])).encode()
            elif kind == "bytes":
                i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
                raw = raw[:i] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"])) + raw[i + 1 :]
    path = root / SRC
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    env["SEALER_CONFIG_DIR"] = str(cli_repo["home"])
    for args in (["unseal", SRC, "--format", "json", "-i", str(key)], ["check", SRC], ["seal", SRC]):
        path.write_bytes(raw)
        r = subprocess.run([SEALER, *args], cwd=root, capture_output=True, text=True, env=env, timeout=60)
        assert "Traceback" not in r.stderr, r.stderr
        assert "internal error" not in r.stderr, r.stderr
        if r.returncode == 0:
            if args[0] != "unseal":
                assert CANARY not in r.stdout + r.stderr
            continue
        assert r.returncode in (1, 2), (args, r.returncode, r.stderr)
        assert CANARY not in r.stderr
        if args[0] != "check":  # check prints one line per problem on stdout
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.fixture(scope="module")
def cli_repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fuzzcli")
    root = tmp / "repo"
    root.mkdir()
    write_config(root, [ENV])
    _rec, key = generate_key(root, ENV, out=tmp / "key.txt")
    from sealer._identities import read_identity_file

    ident = read_identity_file(key)[0]
    (root / "deploy" / ENV).mkdir(parents=True)
    return {"root": root, "key": key, "home": tmp / "home", "recipient": ident.recipient}


# --- found by the fuzzer ------------------------------------------------------------------------------------

SURROGATES = [
    # JSON writers (json.dumps with ensure_ascii) spell U+1F600 as a surrogate pair; YAML's \u reads
    # each half as a lone surrogate, which is not encodable as UTF-8.
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  namespace: b\n"
    'stringData:\n  x: "CANARY-fz4b1d\\ud83d\\ude00"\n',
    'app:\n  token: "CANARY-fz4b1d\\ud800"\n',
    'app:\n  "k\\udfff": CANARY-fz4b1d\n',
]


@pytest.mark.parametrize("text", SURROGATES)
def test_surrogate_escapes_fail_cleanly(text: str) -> None:
    result = attempt(lambda: seal_text(text, SRC, env=ENV, recipients=RECIPIENTS, now=NOW))
    if result is not None:  # combining a surrogate pair into one character is also right
        u = unseal_file(load(result[0], SRC), identity_for, env=ENV, rules=UNCHECKED)
        assert "\U0001f600" in u.text


OUT_OF_RANGE = [
    'app:\n  token: "\\U00110000"\n',  # chr() raises ValueError
    'app:\n  token: "\\UE00d1c02"\n',  # chr() raises OverflowError
]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_out_of_range_escapes_fail_cleanly(text: str) -> None:
    for run in (lambda: load(text, SRC), lambda: tokens.locate(text + "x: ENC[sealer.v1,\n", SRC)):
        attempt(run)


DUPLICATE = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\n"
    "stringData:\n  password: first-CANARY-fz4b1d\n  password: second-CANARY-fz4b1d\n"
)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(SealerError) as e:
        seal_text(DUPLICATE, SRC, env=ENV, recipients=RECIPIENTS, now=NOW)
    clean(e.value)
    assert "password" in str(e.value)


NOT_VERBATIM = [
    'app:\n  token: "ENC[sealer.v1,0123456789abcdef,\\x41AAAAAAAAAAAAAAAAAAAAAAAA]"\n'
    "sealer:\n  version: 1\n  env: prod\n  scope: env\n",
    'app: {token: "ENC[sealer.v1,0123456789abcdef,AAAAAAAAAAAA\r\n  AAAAAAAAAAAAAA]"}\n'
    "sealer:\n  version: 1\n  env: prod\n  scope: env\n",
]


@pytest.mark.parametrize("text", NOT_VERBATIM)
def test_locate_of_a_token_not_written_verbatim(text: str) -> None:
    attempt(lambda: tokens.locate(text, SRC, fast=False))
    attempt(lambda: tokens.locate(text, SRC))
