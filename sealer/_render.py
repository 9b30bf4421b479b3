"""Outputs for unsealed files: YAML as written, Kubernetes manifests, dotenv, JSON, process environment.

Everything here works on in-memory plaintext; writing it anywhere is the caller's explicit choice.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ._unseal import Unsealed, UnsealedDoc
from .errors import InputError

FORMATS = ("yaml", "k8s", "dotenv", "json")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render(files: Sequence[Unsealed], fmt: str) -> tuple[str, list[str]]:
    """The output text and notices for stderr (skipped documents or keys; never values)."""
    if fmt == "yaml":
        return _yaml(files), []
    if fmt == "k8s":
        return _k8s(files)
    if fmt == "json":
        items = [
            {"file": f.source, "document": d.index, "content": _jsonable(d.content)} for f in files for d in f.docs
        ]
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n", []
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
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # keep the author's key order
    yaml.width = 1 << 20  # never fold long values (certificates, tokens)
    yaml.representer.add_representer(str, _represent_str)
    out = io.StringIO()
    notes = []
    for f in files:
        for d in f.docs:
            if not d.is_manifest:
                notes.append(f"{f.source}: document {d.index} is not a Kubernetes manifest; skipped")
                continue
            out.write("---\n")
            yaml.dump(_jsonable(d.content), out)
    return out.getvalue(), notes


def _represent_str(representer: Any, data: str) -> Any:
    """Multi-line text as a literal block, the way people write certificates in manifests."""
    literal = "\n" in data and all(c == "\n" or c.isprintable() for c in data) and data == data.rstrip(" ")
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style="|" if literal else None)


def environment(files: Sequence[Unsealed]) -> tuple[dict[str, str], list[str]]:
    """Flat NAME=value pairs: a Secret's keys as they are, other documents' paths as UPPER_SNAKE."""
    env: dict[str, str] = {}
    origin: dict[str, str] = {}
    notes = []
    for f in files:
        for d in f.docs:
            for name, value, where in _pairs(d):
                if not _ENV_NAME.fullmatch(name):
                    notes.append(f"{f.source}: {where} is not a valid environment variable name; skipped")
                    continue
                if name in env:
                    raise InputError(
                        f"{where} and {origin[name]} both become ${name}",
                        file=f.source,
                        hint="unseal them separately",
                    )
                env[name] = value
                origin[name] = f"{f.source} {where}"
    return env, notes


def _pairs(d: UnsealedDoc) -> Iterator[tuple[str, str, str]]:
    content = d.content
    if not isinstance(content, dict):
        return
    if d.kind == "Secret":
        for key, b64 in (content.get("data") or {}).items():
            raw = base64.b64decode(str(b64))
            try:
                yield str(key), raw.decode("utf-8"), f"data.{key}"
            except UnicodeDecodeError:
                raise InputError(f"data.{key} is binary and cannot be an environment variable") from None
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
    if re.fullmatch(r"[A-Za-z0-9_./:@%+,=-]*", v):
        return v
    if "'" not in v and "\n" not in v:
        return f"'{v}'"
    escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "\\$")
    return f'"{escaped}"'


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
