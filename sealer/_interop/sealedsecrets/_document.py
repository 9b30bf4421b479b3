"""SealedSecret and Secret objects as data: reading their fields with one error per bad shape, where
a SealedSecret will be opened (`place_of`), Kubernetes' base64, and YAML or JSON in and out.

Why a module of its own: sealing, unsealing and key loading all read Kubernetes objects that came
from a user's file, and each needs the same checks (a mapping where a mapping belongs, strings in
labels and annotations, one namespace) and the same error wording. Output goes through sealer's
own YAML encoder, which quotes every string a YAML 1.1 reader such as kubectl would take for a bool
or a number.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..._format.valuepath import format_path
from ..._yamlout import dump_documents
from ...errors import InputError
from ._errors import MalformedSealedSecret
from ._scopes import Place, scope_of

API_VERSION = "bitnami.com/v1alpha1"
KIND = "SealedSecret"


# --- fields ----------------------------------------------------------------------------------------


def mapping(value: Any, where: str, source: str | None, err: type[InputError]) -> Mapping[str, Any]:
    """A mapping field; absent (None) reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise err(f"{where} must be a mapping", file=source)
    return value


def str_map(value: Any, where: str, source: str | None, err: type[InputError]) -> dict[str, str]:
    """A mapping of strings to strings (labels, annotations)."""
    out: dict[str, str] = {}
    for k, v in mapping(value, where, source, err).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise err(
                f"{format_path((*where.split('.'), str(k)))} must be a string",
                file=source,
                hint='quote it, e.g. "true"',
            )
        out[k] = v
    return out


def opt_str(md: Mapping[str, Any], key: str, where: str, source: str | None, err: type[InputError]) -> str:
    """An optional string field; absent reads as ""."""
    v = md.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise err(f"{where}.{key} must be a string", file=source)
    return v


def namespace_of(given: str, override: str | None, source: str | None, err: type[InputError]) -> str:
    """The object's namespace, or `override` (`kubectl apply -n`) when it has none; both must agree."""
    if override is None or override == given:
        return given
    if given:
        raise err(
            f"metadata.namespace is {given!r}, but namespace {override!r} was asked for",
            file=source,
            hint="drop the namespace option, or fix metadata.namespace",
        )
    return override


def b64decode(text: str) -> bytes | None:
    """Go's StdEncoding as encoding/json uses it: padded, standard alphabet, CR and LF ignored."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def place_of(sealed: Mapping[str, Any], *, namespace: str | None = None, source: str | None = None) -> Place:
    """Where the controller will open `sealed`: its own metadata, never its template."""
    err = MalformedSealedSecret
    md = mapping(sealed.get("metadata"), "metadata", source, err)
    name = opt_str(md, "name", "metadata", source, err)
    if not name:
        raise MalformedSealedSecret("the SealedSecret has no metadata.name", file=source)
    ns = namespace_of(opt_str(md, "namespace", "metadata", source, err), namespace, source, err)
    scope = scope_of(str_map(md.get("annotations"), "metadata.annotations", source, err))
    return Place(ns, name, scope)


# --- YAML in and out -------------------------------------------------------------------------------


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The mapping documents of a YAML or JSON file (kubeseal writes JSON by default), with the items
    of a `kind: List` taken out of it. Nothing is constructed from custom tags."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        raw = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MalformedSealedSecret(f"malformed YAML or JSON{at}", file=source) from None
    except (RecursionError, ValueError, TypeError):
        raise MalformedSealedSecret("malformed YAML or JSON", file=source) from None
    docs: list[dict[str, Any]] = []
    for i, doc in enumerate(raw):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise MalformedSealedSecret(f"document {i} is not a mapping", file=source)
        if doc.get("kind") == "List" or (isinstance(doc.get("kind"), str) and doc["kind"].endswith("List")):
            items = doc.get("items") or []
            if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
                raise MalformedSealedSecret(f"document {i}: items must be a list of mappings", file=source)
            docs.extend(items)
        else:
            docs.append(doc)
    return docs


def to_yaml(obj: Mapping[str, Any]) -> str:
    """One object as kubeseal -o yaml lays it out: `---` first, keys in the order given (they are
    built sorted), block style, long values never folded, an unset time as `null`. A key or value
    that a YAML 1.1 or 1.2 reader would take for another type (`on`, `yes`, `0777`) is quoted, so
    kubectl reads back the strings that were sealed."""
    return dump_documents([_plain(obj)])


def _plain(v: Any) -> Any:
    """Plain dicts and lists (the encoder writes only those), whatever mapping or sequence came in."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v
