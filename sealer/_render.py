"""Outputs for unsealed files: YAML as written, Kubernetes manifests, dotenv, JSON, process environment.

Everything here works on in-memory plaintext; writing it anywhere is the caller's explicit choice.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from . import _yamlout
from ._format.valuepath import Path, format_path
from ._unseal import Unsealed, UnsealedDoc
from .errors import InputError

FORMATS = ("yaml", "k8s", "dotenv", "json")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTENV_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]*")  # nothing a shell expands, splits or globs


def render(files: Sequence[Unsealed], fmt: str) -> tuple[str, list[str]]:
    """The output text and notices for stderr (skipped documents or keys; never values)."""
    if fmt == "yaml":
        return _yaml(files), []
    if fmt == "k8s":
        return _k8s(files)
    if fmt == "json":
        return _json(files), []
    if fmt == "dotenv":
        env, notes = environment(files)
        return "".join(f"{k}={_dotenv_quote(v)}\n" for k, v in env.items()), notes
    raise ValueError(fmt)


def _yaml(files: Sequence[Unsealed]) -> str:
    parts = []
    for f in files:
        text = f.text if f.text.endswith("\n") or not f.text else f.text + "\n"
        parts.append(text)
    if len(parts) <= 1:
        return "".join(parts)
    return "".join(p if p.lstrip().startswith("---") else "---\n" + p for p in parts)


def _k8s(files: Sequence[Unsealed]) -> tuple[str, list[str]]:
    out = []
    notes = []
    for f in files:
        for d in f.docs:
            if not d.is_manifest:
                notes.append(f"{f.source}: document {d.index} is not a Kubernetes manifest; skipped")
                continue
            out.append("---\n")
            out.append(_yamlout.dumps(_jsonable(d.content)))
    return "".join(out), notes


def _json(files: Sequence[Unsealed]) -> str:
    items = [{"file": f.source, "document": d.index, "content": _jsonable(d.content)} for f in files for d in f.docs]
    try:
        return json.dumps(items, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:
        for f, item in zip([u for u in files for _ in u.docs], items, strict=True):
            bad = _non_finite(item["content"], ())
            if bad is not None:
                where = format_path(bad) or "the document"
                if len(f.docs) > 1:
                    where = f"document {item['document']}: {where}"
                raise InputError(
                    f"{where} is NaN/infinite, which JSON cannot represent; use --format yaml", file=f.source
                ) from None
        raise


def _non_finite(v: Any, path: Path) -> Path | None:
    """The path of the first NaN or infinite float in `v`, if any."""
    if isinstance(v, float):
        return None if math.isfinite(v) else path
    if isinstance(v, dict):
        items: Iterable[tuple[str | int, Any]] = v.items()
    elif isinstance(v, list):
        items = enumerate(v)
    else:
        return None
    for k, x in items:
        found = _non_finite(x, (*path, k))
        if found is not None:
            return found
    return None


def environment(files: Sequence[Unsealed]) -> tuple[dict[str, str], list[str]]:
    """Flat NAME=value pairs: a Secret's keys as they are, other documents' paths as UPPER_SNAKE."""
    env: dict[str, str] = {}
    origin: dict[str, str] = {}
    notes = []
    for f in files:
        for d in f.docs:
            for name, value, where in _pairs(d, f.source):
                if not _ENV_NAME.fullmatch(name):
                    notes.append(f"{f.source}: {where} is not a valid environment variable name; skipped")
                    continue
                if "\0" in value:
                    raise InputError(
                        f"{where} contains a NUL character, which no environment variable can hold",
                        file=f.source,
                        hint="use --format yaml or json",
                    )
                if name in env:
                    raise InputError(
                        f"{where} and {origin[name]} both become ${name}",
                        file=f.source,
                        hint="unseal them separately",
                    )
                env[name] = value
                origin[name] = f"{f.source} {where}"
    return env, notes


def _pairs(d: UnsealedDoc, source: str) -> Iterator[tuple[str, str, str]]:
    content = d.content
    if not isinstance(content, dict):
        return
    if d.kind == "Secret":
        for key, b64 in (content.get("data") or {}).items():
            raw = base64.b64decode(str(b64))
            try:
                yield str(key), raw.decode("utf-8"), f"data.{key}"
            except UnicodeDecodeError:
                raise InputError(f"data.{key} is binary and cannot be an environment variable", file=source) from None
        for key, v in (content.get("stringData") or {}).items():
            yield str(key), _text(v), f"stringData.{key}"
        return
    skip = {"apiVersion", "kind", "metadata"} if d.is_manifest else set()
    for key, v in content.items():
        if key in skip:
            continue
        yield from _flatten(v, [str(key)])


def _flatten(v: Any, path: list[str]) -> Iterator[tuple[str, str, str]]:
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _flatten(x, [*path, str(k)])
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _flatten(x, [*path, str(i)])
    elif v is not None:
        name = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(path)).upper()
        yield name, _text(v), ".".join(path)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return str(v)


def _dotenv_quote(v: str) -> str:
    """A value that a POSIX shell sourcing the file (`set -a; . ./out.env`) takes literally: bare when
    no character could mean anything to it, else single-quoted (`'` as `'\\''`; newlines stay)."""
    if _DOTENV_BARE.fullmatch(v):
        return v
    return "'" + v.replace("'", "'\\''") + "'"


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v
