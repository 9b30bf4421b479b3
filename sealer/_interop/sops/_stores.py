"""sops's stores: which one a file name picks, how each holds its tree and its metadata (YAML and
JSON as trees, dotenv and INI with the metadata flattened into `sops_…` keys, binary as JSON with one
`data` value), and the JSON writer (Go's encoding/json with json.Indent and a tab)."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..._yamlout import core_scalar
from ._errors import SopsFormatError, SopsUnsupportedError
from ._goyaml import emit_yaml
from ._tree import INT64, Branch, Comment, GoTime, check_utf8, go_float, has_items
from ._yamlload import load_yaml

FORMATS: Final = ("yaml", "json", "dotenv", "ini", "binary")
WRITABLE: Final = ("yaml", "json")


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The store sops picks for a file name: .yaml/.yml, .json, .env, .ini, else binary."""
    name = os.fspath(path)
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".env"):
        return "dotenv"
    if name.endswith(".ini"):
        return "ini"
    return "binary"


def load_encrypted(text: str, fmt: str, source: str) -> tuple[list[Branch], Any]:
    """Load a store's tree and pull out its metadata, as stores.ExtractMetadata does."""
    if fmt == "yaml":  # the first document's metadata counts (an empty one is none); other copies are dropped
        parts = [_split_off(branch) for branch in load_yaml(text, source)]
        found = [entry for entry in parts[0][1] if entry[1] is not None] if parts else []
        return [rest for rest, _ in parts], _only(found, "sops metadata", _CUT_SHORT)
    if fmt in ("json", "binary"):
        rest, found = _split_off(_load_json(text))
        return [rest], _only(found, "sops metadata", _CUT_SHORT)
    if fmt == "dotenv":
        rest, found = _split_off(_load_dotenv(text), lambda k: isinstance(k, str) and k.startswith("sops_"))
        if not found:
            raise _not_sops("sops_ metadata lines")
        return [rest], _unflatten([(k[5:], v) for k, v in found])
    rest, found = _split_off(_load_ini(text))
    if not found:
        raise _not_sops("[sops] section")
    flat = [(k, v.replace("\\n", "\n")) for k, v in found[0][1] if isinstance(k, str) and isinstance(v, str)]
    return [rest], _unflatten(flat)


_CUT_SHORT: Final = "is it encrypted, or cut short?"


def _not_sops(what: str, hint: str = "is it encrypted?") -> SopsFormatError:
    return SopsFormatError(f"not a SOPS file: no {what}", hint=hint)


def _split_off(
    branch: Branch, is_metadata: Callable[[Any], bool] = lambda key: key == "sops"
) -> tuple[Branch, list[tuple[Any, Any]]]:
    """(the branch without its metadata entries, those entries)."""
    rest, found = Branch(), list[tuple[Any, Any]]()
    for entry in branch:
        (found if is_metadata(entry[0]) else rest).append(entry)
    return rest, found


def _only(found: list[tuple[Any, Any]], what: str, hint: str) -> Any:
    if not found:
        raise _not_sops(what, hint)
    if len(found) > 1:
        raise SopsFormatError("the file has two sops entries")
    return found[0][1]


def after_decrypt(fmt: str, branches: list[Branch]) -> tuple[list[Branch], bytes | None]:
    """What a store makes of its decrypted tree: the binary store's payload (its `data` value); the
    INI store without the DEFAULT section go-ini always has, when it is empty, and with each key's
    comment above the key again; whole numbers as integers, in every store."""
    raw = None
    branches = [_whole_numbers(b) for b in branches]
    if fmt == "binary":
        value = dict((k, v) for k, v in branches[0] if isinstance(k, str)).get("data") if branches else None
        if not isinstance(value, (str, bytes)):
            raise SopsFormatError("a binary-store SOPS file needs one string value named data")
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    if fmt == "ini":
        branches = [
            Branch((k, _ini_comments_above(v)) for k, v in b if not (k == "DEFAULT" and not has_items(v)))
            for b in branches
        ]
    return branches, raw


def _ini_comments_above(section: Any) -> Any:
    """go-ini holds the comment lines before a key after it (and sops writes them back above it):
    put them above the key, `# text` as YAML comments read."""
    if not isinstance(section, Branch):
        return section
    out, key_at = Branch(), None
    for k, v in section:
        if not isinstance(k, Comment):
            key_at = len(out)
            out.append((k, v))
            continue
        note = (Comment(k.text if k.text.startswith(" ") else " " + k.text), None)
        if key_at is None:
            out.append(note)
        else:
            out.insert(key_at, note)
            key_at += 1
    return out


def _whole_numbers(value: Any) -> Any:
    """A float with no fraction as an int, as `sops decrypt` prints it (`7`, never `7.0`). sops before
    3.13 reads every JSON number as a Go float64: a JSON file's `{"n": 7}`, and every number given
    to `sops set`, is stored as `type:float` with the text `7`, which a YAML `7.0` is too; the file
    cannot tell them apart, and sops prints both as `7`. Outside int64 (and -0) it stays a float.
    Done after the MAC check, which it does not affect: both have the same text, `7`."""
    if isinstance(value, Branch):
        return Branch((k, _whole_numbers(v)) for k, v in value)
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    whole = isinstance(value, float) and value.is_integer() and INT64[0] <= value <= INT64[1]
    if whole and (value != 0 or math.copysign(1.0, value) > 0):
        return int(value)
    return value


def dump(fmt: str, branches: Sequence[Branch]) -> bytes:
    """The file's bytes in a writable store (YAML: every document; JSON: the one document)."""
    if fmt == "json":
        return (_emit_json(branches[0]) + "\n").encode("utf-8")
    return emit_yaml(branches).encode("utf-8", "surrogateescape")


def _load_json(text: str) -> Branch:
    def integer(token: str) -> int | float:
        value = int(token)
        return value if INT64[0] <= value <= INT64[1] else float(token)

    def constant(token: str) -> Any:
        raise SopsFormatError(f"JSON does not allow {token}")

    try:
        value = json.loads(text, object_pairs_hook=Branch, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as err:
        raise SopsFormatError(f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise SopsFormatError("JSON nested too deeply") from None
    if not isinstance(value, Branch):
        raise SopsFormatError("the JSON top level is not an object")
    return value


def _load_dotenv(text: str) -> Branch:
    branch = Branch()
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        if line.startswith("#"):
            branch.append((Comment(line[1:]), None))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise SopsFormatError(f"line {number} of the dotenv file is not KEY=VALUE")
        branch.append((key, value.replace("\\n", "\n")))
    return branch


def _ini_comment(text: str) -> str:
    """sops's stripCommentChar."""
    if text.startswith(";"):
        return text.lstrip("; ")
    if text.startswith("#"):
        return text.lstrip("# ")
    return text


def _load_ini(text: str) -> Branch:
    """INI as go-ini reads it for sops: sections (a DEFAULT one first), `key = value` or `key: value`,
    `#`/`;` comments (a section's preceding comment is its comment, a key's is appended after it),
    an inline `#`/`;` ending an unquoted value."""
    sections: list[tuple[str, Branch]] = [("DEFAULT", Branch())]
    pending: list[str] = []
    current = sections[0][1]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line[0] in "#;":
            pending.append(line)
            continue
        if line.startswith("["):
            close = line.rfind("]")
            if close < 0:
                raise SopsFormatError(f"line {number} of the INI file: unclosed section header")
            current = Branch()
            if pending:
                current.append((Comment(_ini_comment("\n".join(pending))), None))
                pending = []
            sections.append((line[1:close].strip(), current))
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut < 0:
            raise SopsFormatError(f"line {number} of the INI file is not key = value")
        key, value = line[:cut].strip(), line[cut + 1 :].strip()
        inline = ""
        if len(value) >= 2 and value[0] in "\"'`" and value[-1] == value[0]:
            value = value[1:-1]
        else:
            hashes = [i for i in (value.find("#"), value.find(";")) if i >= 0]
            if hashes:
                inline, value = value[min(hashes) :], value[: min(hashes)].strip()
        current.append((key, value))
        note = "\n".join([*pending, inline] if inline else pending)
        pending = []
        if note:
            current.append((Comment(_ini_comment(note)), None))
    return Branch(sections)


def _unflatten(items: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """sops's flattened metadata (`age__list_0__map_enc`) back into a tree (stores/flatten.go)."""
    root: dict[str, Any] = {}

    def tokens(key: str) -> list[str | int]:
        out: list[str | int] = []
        parts = re.split(r"(__map_|__list_)", key)
        out.append(parts[0])
        for sep, text in zip(parts[1::2], parts[2::2], strict=True):
            if sep == "__map_":
                out.append(text)
            elif text.isdigit():
                out.append(int(text))
            else:
                raise SopsFormatError(f"sops metadata: malformed flattened key {key}")
        return out

    for key, value in items:
        node: Any = root
        toks = tokens(key)
        for i, tok in enumerate(toks):
            last = i == len(toks) - 1
            container_key = ("m", tok) if isinstance(tok, str) else ("l", tok)
            if not isinstance(node, dict):
                raise SopsFormatError(f"sops metadata: conflicting flattened keys at {key}")
            if last:
                if container_key in node:
                    raise SopsFormatError(f"sops metadata: duplicate flattened key {key}")
                node[container_key] = value
            else:
                node = node.setdefault(container_key, {})

    def convert(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        kinds = {k[0] for k in node}
        if kinds == {"l"}:
            indices = sorted(k[1] for k in node)
            if indices != list(range(len(indices))):
                raise SopsFormatError("sops metadata: a flattened list has gaps")
            return [convert(node[("l", i)]) for i in indices]
        if kinds == {"m"}:
            return {k[1]: convert(v) for k, v in sorted(node.items())}
        if not node:
            return {}
        raise SopsFormatError("sops metadata: a flattened key is both a list and a mapping")

    result = convert(root)
    assert isinstance(result, dict)
    return result


# --- JSON: writing ---------------------------------------------------------------------------------


def _json_str(text: str) -> str:
    check_utf8(text)
    out = json.dumps(text, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        out = out.replace(ch, esc)
    return out


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise SopsUnsupportedError("JSON cannot hold NaN or infinity")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exponent = repr(value).partition("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return go_float(value)


def _emit_json(value: Any, level: int = 0) -> str:
    pad = "\t" * (level + 1)
    if isinstance(value, list):
        is_map = isinstance(value, Branch)
        brackets = "{}" if is_map else "[]"
        entries = [e for e in value if not isinstance(e[0] if is_map else e, Comment)]
        if not entries:
            return brackets
        body = ",\n".join(
            pad + (f"{_json_str(e[0])}: {_emit_json(e[1], level + 1)}" if is_map else _emit_json(e, level + 1))
            for e in entries
        )
        return brackets[0] + "\n" + body + "\n" + "\t" * level + brackets[1]
    core = core_scalar(value, _json_float)
    if core is not None:
        return core
    if isinstance(value, GoTime):
        return _json_str(value.text)
    if isinstance(value, bytes):
        return _json_str(value.decode("utf-8", "replace"))
    if isinstance(value, str):
        return _json_str(value)
    raise SopsUnsupportedError(f"cannot write a value of type {type(value).__name__} as JSON")
