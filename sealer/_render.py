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
MANAGED_BY = "app.kubernetes.io/managed-by"  # label: which tool manages the object
SOURCE = "sealer.dev/source"  # annotation: the repository path the Secret was unsealed from
COMMIT = "sealer.dev/commit"  # annotation: the commit it was unsealed from (the controller)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTENV_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]*")  # nothing a shell expands, splits or globs


# Names a sealed value may not set in a process environment (exec, dotenv): each changes how the
# deploy host loads or runs programs, so a value anyone with the public key can seal would run
# code there. Allowed one by one with `allow` (--allow-env NAME); sealer's own identity variables never.
_LOADER_NAMES = frozenset(
    {
        "PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "CDPATH",
        "GLOBIGNORE", "HOME", "EDITOR", "VISUAL", "PAGER", "SSH_ASKPASS", "SUDO_ASKPASS", "GCONV_PATH",
        "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF", "NODE_OPTIONS", "NODE_PATH",
        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "RUBYOPT", "RUBYLIB", "PERLLIB",
        "OPENSSL_CONF", "OPENSSL_ENGINES", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_ASKPASS",
    }
)  # fmt: skip
_LOADER_PREFIXES = ("LD_", "DYLD_", "PYTHON", "PERL5", "MALLOC_", "GLIBC_", "BASH_FUNC_", "SEALER_")


def forbidden_name(name: str, allow: frozenset[str] = frozenset()) -> bool:
    """May a sealed value set this environment variable? (the one rule, for exec and dotenv)"""
    if name.startswith("SEALER_IDENTITY"):
        return True
    if name in allow:
        return False
    return name in _LOADER_NAMES or name.startswith(_LOADER_PREFIXES)


def render(
    files: Sequence[Unsealed], fmt: str, *, allow_env: frozenset[str] = frozenset(), commit: str | None = None
) -> tuple[str, list[str]]:
    """The output text and notices for stderr (skipped documents or keys; never values).
    `commit`: the commit the files were read from, stamped on k8s Secrets (see `stamp`)."""
    if fmt == "yaml":
        return _yaml(files), []
    if fmt == "k8s":
        return _k8s(files, commit)
    if fmt == "json":
        return _json(files), []
    if fmt == "dotenv":
        env, notes = environment(files, allow=allow_env)
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


def _k8s(files: Sequence[Unsealed], commit: str | None) -> tuple[str, list[str]]:
    out = []
    notes = []
    for f in files:
        for d in f.docs:
            if not d.is_manifest:
                notes.append(f"{f.source}: document {d.index} is not a Kubernetes manifest; skipped")
                continue
            out.append("---\n")
            out.append(manifest(d.content, source=f.path if f.path is not None else f.source, commit=commit))
    return "".join(out), notes


def manifest(content: Any, *, source: str, commit: str | None = None) -> str:
    """One unsealed manifest as a YAML document (no `---`): the k8s encoding, Secrets stamped."""
    return _yamlout.dumps(stamp(_jsonable(content), source=source, commit=commit))


def stamp(content: Any, *, source: str, commit: str | None = None) -> Any:
    """A Secret as the cluster should see it: labelled `app.kubernetes.io/managed-by: sealer` (unless
    the document names its own manager), annotated with the repository path it was unsealed from
    (`sealer.dev/source`) and, when given, the commit (`sealer.dev/commit`), so `kubectl get` says
    where a Secret comes from. Other kinds, and metadata that is not a mapping, stay as they are."""
    if not isinstance(content, dict) or content.get("kind") != "Secret":
        return content
    md = content.get("metadata")
    md = {} if md is None else md
    labels = md.get("labels") or {} if isinstance(md, dict) else None
    annotations = md.get("annotations") or {} if isinstance(md, dict) else None
    if not isinstance(md, dict) or not isinstance(labels, dict) or not isinstance(annotations, dict):
        return content
    labels = {**labels}
    labels.setdefault(MANAGED_BY, "sealer")
    annotations = {**annotations, SOURCE: source}
    annotations.pop(COMMIT, None)  # only the controller knows the commit; a document cannot claim one
    if commit is not None:
        annotations[COMMIT] = commit
    return {**content, "metadata": {**md, "labels": labels, "annotations": annotations}}


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


def environment(files: Sequence[Unsealed], *, allow: frozenset[str] = frozenset()) -> tuple[dict[str, str], list[str]]:
    """Flat NAME=value pairs: a Secret's keys as they are, other documents' paths as UPPER_SNAKE.

    Names that change how programs are loaded or run (`forbidden_name`) are refused, not skipped:
    a deploy that silently lost a variable would fail later and further from the cause."""
    env: dict[str, str] = {}
    origin: dict[str, str] = {}
    notes = []
    for f in files:
        for d in f.docs:
            for name, value, where in _pairs(d, f.source):
                if not _ENV_NAME.fullmatch(name):
                    notes.append(f"{f.source}: {where} is not a valid environment variable name; skipped")
                    continue
                if forbidden_name(name, allow):
                    from .errors import Refused

                    raise Refused(
                        f"{where} would set ${name}, which changes how programs are loaded or run on this"
                        " host; anyone holding the public key could seal it",
                        file=f.source,
                        hint=f"rename the key, or pass --allow-env {name} if this value really is meant to set it"
                        if not name.startswith("SEALER_IDENTITY")
                        else "sealer's own identity variables are never taken from sealed values",
                    )
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
        out: dict[str, Any] = {}
        for k, x in v.items():
            name = _key_text(k)
            if name in out:
                # `0x1:` and `"1":` (or `true:` and `True:`) are two keys in YAML but one here: last
                # would win silently, so a value could replace another.
                raise InputError(
                    f"two keys of one mapping both become {name!r} in this output", hint="use --format yaml"
                )
            out[name] = _jsonable(x)
        return out
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _key_text(k: Any) -> str:
    """A mapping key as the text JSON and manifests carry (YAML's spelling of bool and null)."""
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    return str(k)
