"""The writing side: seal a file's plaintext values and set single values. Public keys only."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path as Path_
from typing import TYPE_CHECKING, Any, ParamSpec

from . import _envelope as envelope
from . import _format
from ._config import Config
from ._document import (
    MANIFEST_KEYS,
    SCOPES_SECRET,
    SECRET_SECTIONS,
    TYPE_OF_TAG,
    Document,
    Edit,
    Meta,
    SealedFile,
    Selector,
    apply_edits,
    line_end,
    load,
    meta_edit,
    newline_of,
    plaintext_of,
    replace_scalar,
    scalar_end,
    yaml_string,
)
from ._format.valuepath import Path, format_path
from ._fsio import atomic_write, locked, read_text
from ._keys import Recipient
from ._repository import EnvRules, Repository, when
from ._signing import Signing as Signing  # moved to _signing; re-exported for callers of _seal
from ._signing import resign as resign
from ._signing import signing_for as signing_for
from .errors import EnvironmentMismatch, InputError, PathError, Refused, UnsealError, UsageError

if TYPE_CHECKING:
    from ._signing import SignerKey

_P = ParamSpec("_P")


@dataclass
class SealReport:
    source: str
    env: str
    sealed: int = 0
    kept: int = 0
    stale: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (path, kids) on other keys
    changed: bool = False
    signed: int = 0  # documents signed (with --sign-with)
    dropped: list[int] = field(default_factory=list)  # documents whose signature was dropped
    expires_at: int | None = None  # the expiry of the values this run sealed (None: none, or none sealed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "env": self.env,
            "sealed": self.sealed,
            "unchanged": self.kept,
            "stale": [{"path": p, "kids": list(k)} for p, k in self.stale],
            "changed": self.changed,
            "signed": self.signed,
            "dropped_signatures": self.dropped,
            "expires_at": when(self.expires_at) if self.expires_at is not None else None,
        }


def check_env(sf: SealedFile, env: str) -> None:
    existing = sf.env
    if existing is not None and existing != env:
        raise EnvironmentMismatch(
            f"is already sealed for environment {existing!r}, not {env!r}",
            file=sf.source,
            hint=f"use --env {existing}, or start from the plaintext file",
        )


def seal_text(
    text: str,
    source: str,
    *,
    env: str,
    recipients: Sequence[Recipient],
    selector: Selector | None = None,
    scope: str | None = None,
    now: int | None = None,
    signing: Signing | None = None,
    expires_at: int | None = None,
) -> tuple[str, SealReport]:
    """Seal every selected plaintext value; leave current tokens byte-identical. The values sealed
    get `expires_at` (Unix seconds, after `now`); `seal_file` takes it from the environment's
    policy and `--expires` (`EnvRules.expiry_for`)."""
    sf = load(text, source, selector)
    check_env(sf, env)
    now = int(time.time()) if now is None else now
    _check_expiry(expires_at, now, source)
    current = tuple(r.kid for r in recipients)
    report = SealReport(source, env)
    edits: list[Edit] = []
    for doc in sf.docs:
        if not doc.leaves and doc.meta is None:
            continue
        doc_scope = _scope_for(doc, scope, source)
        for leaf in doc.leaves:
            ctx = doc.context(env, doc_scope, leaf.path)
            if leaf.sealed:
                tok = leaf.token(source)
                moved = _format.mismatches(tok, ctx)
                if moved:
                    raise UnsealError(
                        f"value at {format_path(leaf.path)} was sealed for a different {' and '.join(moved)}",
                        file=source,
                        hint=f"set it again: sealer set {source} '{format_path(leaf.path)}'",
                    )
                if tok.kids == current:
                    report.kept += 1
                else:
                    report.stale.append((format_path(leaf.path), tok.kids))
                continue
            vtype, data = plaintext_of(leaf, source)
            _check_value(vtype, data, leaf.path, source)
            token = envelope.seal(vtype, data, ctx, recipients, sealed_at=now, expires_at=expires_at)
            edits.append(replace_scalar(text, leaf.node, token, in_flow=leaf.in_flow))
            report.sealed += 1
        m = meta_edit(text, doc, Meta(1, env, doc_scope, doc.meta.signature if doc.meta else None))
        if m is not None:
            edits.append(m)
    report.expires_at = expires_at if report.sealed else None
    new = apply_edits(text, edits) if edits else text
    new, report.signed, report.dropped = resign(text, new, source, env=env, signing=signing)
    report.changed = new != text
    return new, report


def _scope_for(doc: Document, requested: str | None, source: str) -> str:
    existing = doc.meta.scope if doc.meta else None
    scope = requested or existing or doc.default_scope()
    if existing is not None and scope != existing and any(leaf.sealed for leaf in doc.leaves):
        raise Refused(
            f"document {doc.index} is sealed with scope {existing!r}; changing it to {scope!r} "
            "needs every value re-sealed",
            file=source,
            hint="start from the plaintext, or keep the scope",
        )
    if doc.is_secret:
        if scope not in SCOPES_SECRET:
            raise UsageError(f"scope {scope!r} is not one of {', '.join(SCOPES_SECRET)} for a Secret", file=source)
        if scope == "strict" and not doc.name:
            raise InputError(
                f"document {doc.index}: a Secret sealed with strict scope needs metadata.name",
                file=source,
                hint="add metadata.name, or use --scope namespace",
            )
    return scope


def set_value_report(
    text: str,
    source: str,
    path: Path,
    value: bytes,
    *,
    env: str,
    recipients: Sequence[Recipient],
    vtype: str | None = None,
    selector: Selector | None = None,
    document: int | None = None,
    now: int | None = None,
    signing: Signing | None = None,
    expires_at: int | None = None,
) -> tuple[str, list[int]]:
    """Seal one new value at `path`; returns the new text and the documents whose signature was dropped.

    Only that value's line changes (plus the sealer: block when the document is sealed the first time,
    and its signature when signing or dropping one). The new value gets `expires_at` (None: none),
    whatever the value it replaces had.
    """
    sf = load(text, source, selector)
    check_env(sf, env)
    doc = _pick_document(sf, path, document)
    now = int(time.time()) if now is None else now
    _check_expiry(expires_at, now, source)
    scope = _scope_for(doc, None, source)
    ctx = doc.context(env, scope, path)
    _check_settable(doc, path, source)
    if doc.is_secret:
        if vtype is not None:
            raise UsageError(
                f"{format_path(path)}: a type (--type) does not apply in a Secret: {path[0]} holds"
                f" {'bytes' if path[0] == 'data' else 'text'}, always",
                file=source,
                hint="drop --type; it is for values outside Secrets, such as Helm values or app config",
            )
        vtype = "b" if path[0] == "data" else "s"
    nodes = _path_nodes(doc.root, path)
    existing = nodes[-1] if len(nodes) == len(path) + 1 else None
    if vtype is None:
        vtype = _existing_type(existing) or "s"
    _check_value(vtype, value, path, source)
    token = envelope.seal(vtype, value, ctx, recipients, sealed_at=now, expires_at=expires_at)
    edits = [_insert_or_replace(text, doc, path, nodes, token, source)]
    m = meta_edit(text, doc, Meta(1, env, scope, doc.meta.signature if doc.meta else None))
    if m is not None:
        edits.append(m)
    new, _signed, dropped = resign(text, apply_edits(text, edits), source, env=env, signing=signing)
    return new, dropped


def _text_only(report: Callable[_P, tuple[str, list[int]]]) -> Callable[_P, str]:
    """`set_value` from `set_value_report`: the same parameters (stated once, there), the text alone."""

    def set_value(*args: _P.args, **kwargs: _P.kwargs) -> str:
        """Seal one new value at `path` and return the new text: `set_value_report` (same parameters,
        same rules) without the documents whose signature was dropped."""
        return report(*args, **kwargs)[0]

    set_value.__qualname__ = "set_value"
    set_value.__signature__ = inspect.signature(report).replace(return_annotation="str")  # type: ignore[attr-defined]
    return set_value


set_value = _text_only(set_value_report)


def _check_expiry(expires_at: int | None, now: int, source: str) -> None:
    if expires_at is not None and expires_at <= now:
        raise UsageError(
            f"the expiry {when(expires_at)} is not after the seal time, {when(now)}",
            file=source,
            hint="give a later expiry",
        )


def _check_value(vtype: str, value: bytes, path: Path, source: str) -> None:
    """The one rule for typed plaintexts (`_format.values`), said for the person sealing."""
    bad = _format.value_problem(vtype, value)
    if bad is None:
        return
    names = {"s": "text", "i": "an integer", "f": "a float", "t": "true or false", "d": "a YAML timestamp"}
    raise InputError(
        f"the value for {format_path(path)} {bad}: it must be {names.get(vtype, vtype)} on one line",
        file=source,
        hint="binary values belong under a Secret's data section" if vtype == "s" else "pass --type str to store text",
    )


def _check_settable(doc: Document, path: Path, source: str) -> None:
    """Refuse paths that are not values: the sealer: block, a manifest's identity, a Secret's non-data."""
    where = format_path(path)
    if path[0] == "sealer":
        raise PathError(f"{where}: the sealer: block is sealer's own and is not a value", file=source)
    if doc.is_secret:
        if len(path) != 2 or path[0] not in SECRET_SECTIONS or not isinstance(path[1], str):
            raise PathError(
                f"{where}: a Secret's values live under data or stringData",
                file=source,
                hint='e.g. stringData.password or data["tls.crt"]',
            )
    elif doc.is_manifest and path[0] in MANIFEST_KEYS:
        raise PathError(f"{where}: apiVersion, kind and metadata of a manifest are never sealed", file=source)


def _existing_type(node: Any) -> str | None:
    if node is None or node.id != "scalar":
        return None
    if _format.is_token(node.value):
        return _format.parse_token(str(node.value)).vtype
    return TYPE_OF_TAG.get(str(node.tag))


def _pick_document(sf: SealedFile, path: Path, document: int | None) -> Document:
    if document is not None:
        for d in sf.docs:
            if d.index == document:
                return d
        raise UsageError(f"there is no document {document}", file=sf.source)
    if not sf.docs:
        raise InputError("has no YAML document to set a value in", file=sf.source)
    if len(sf.docs) == 1:
        return sf.docs[0]
    having = [d for d in sf.docs if len(_path_nodes(d.root, path)) == len(path) + 1]
    if len(having) == 1:
        return having[0]
    which = "several documents" if having else "no document"
    raise UsageError(
        f"{format_path(path)} exists in {which} of this file",
        file=sf.source,
        hint="pass --document N (0 is the first document)",
    )


def _path_nodes(root: Any, path: Path) -> list[Any]:
    """The nodes from the root along `path`, as far as it exists (the root first)."""
    nodes = [root]
    for seg in path:
        node = nodes[-1]
        if isinstance(seg, int):
            if node.id != "sequence" or seg >= len(node.value):
                break
            nodes.append(node.value[seg])
        else:
            child = None
            if node.id == "mapping":
                child = next((v for k, v in node.value if k.id == "scalar" and str(k.value) == seg), None)
            if child is None:
                break
            nodes.append(child)
    return nodes


def _insert_or_replace(text: str, doc: Document, path: Path, nodes: list[Any], token: str, source: str) -> Edit:
    where = format_path(path)
    nl = newline_of(text)
    if any(getattr(n, "anchor", None) for n in nodes[1:]):
        raise PathError(f"{where} is under an anchor or alias; sealer does not set shared values", file=source)
    if len(nodes) == len(path) + 1:
        existing, parent = nodes[-1], nodes[-2]
        if existing.id != "scalar":
            raise PathError(f"{where} is a {existing.id}, not a single value", file=source)
        if existing.tag == "tag:yaml.org,2002:null" and existing.start_mark.index == existing.end_mark.index:
            # `key:` with nothing after it: put the token after the colon.
            return Edit(existing.start_mark.index, existing.end_mark.index, " " + token)
        return replace_scalar(text, existing, token, in_flow=bool(parent.flow_style))
    key = path[-1]
    if isinstance(key, int):
        raise PathError(f"{where} does not exist; sealer set does not append list items", file=source)
    key_text = yaml_string(key)
    if len(nodes) < len(path):
        if len(path) == 2 and doc.is_secret:
            indent = " " * doc.root.start_mark.column
            at = line_end(text, doc.root.end_mark.index)
            prefix = "" if at == 0 or text[at - 1] == "\n" else nl
            return Edit(at, at, f"{prefix}{indent}{path[0]}:{nl}{indent}  {key_text}: {token}{nl}")
        raise PathError(
            f"{format_path(path[:-1])} does not exist", file=source, hint="create the enclosing mapping first"
        )
    parent = nodes[-1]
    if parent.id != "mapping":
        raise PathError(f"{format_path(path[:-1])} is not a mapping", file=source)
    if parent.flow_style or not parent.value:
        raise PathError(
            f"{format_path(path[:-1])} is an inline or empty mapping; sealer set adds keys only to block mappings",
            file=source,
            hint="write the mapping in block style",
        )
    last_key, last_val = parent.value[-1]
    indent = " " * last_key.start_mark.column
    at = line_end(text, scalar_end(text, last_val))
    prefix = "" if at == 0 or text[at - 1] == "\n" else nl
    return Edit(at, at, f"{prefix}{indent}{key_text}: {token}{nl}")


@dataclass
class Target:
    """What sealing one file needs: its environment, that environment's recipients, the value
    rule, and the environment's rules (for the expiry of new values)."""

    env: str
    recipients: list[Recipient]
    selector: Selector | None
    rules: EnvRules

    def seal_text(
        self,
        text: str,
        source: str,
        *,
        scope: str | None = None,
        signing: Signing | None = None,
        expires: str | None = None,
        now: int | None = None,
    ) -> tuple[str, SealReport]:
        """`seal_text` for this environment: its recipients, value rule and expiry policy (the new
        values expire as `expires` and `max_lifetime` say, `EnvRules.expiry_for`)."""
        now = int(time.time()) if now is None else now
        return seal_text(
            text,
            source,
            env=self.env,
            recipients=self.recipients,
            selector=self.selector,
            scope=scope,
            now=now,
            signing=signing,
            expires_at=self.rules.expiry_for(expires, now, source=source),
        )


def target(cfg: Config, rel: str | None, env: str | None) -> Target:
    """Where a file's values go: its environment (path rule and --env agree) and that
    environment's current recipients, by the repository's rules."""
    repo = Repository(cfg)
    name = cfg.resolve_env(rel, env)
    rules = repo.rules(name)
    recipients = rules.recipients()
    if not recipients:
        raise Refused(
            f"environment {name!r} has no active key",
            file=str(rules.registry.path),
            hint=f"a custodian runs: sealer keys generate {name}",
        )
    for kid, other in repo.shared_keys(name):
        if kid in {k.kid for k in rules.registry.current()}:
            raise EnvironmentMismatch(
                f"refusing to seal for {name}: its key {kid} is also a key of environment {other!r}"
                f" (keys/{other}.yaml), so {other}'s key holders could read these values",
                file=rel or f"keys/{name}.yaml",
                hint="remove the key from one registry (a custodian rotates the affected environment)",
            )
    rule = cfg.rule_for(rel)
    return Target(name, recipients, rule.selects if rule else None, rules)


def out_target(cfg: Config, rel: str | None, env: str | None, out: Path_) -> tuple[Target, str | None]:
    """Where sealing a file (repository path `rel`, or stdin: None) into `out` goes, and out's
    repository path (None outside the repository): the input's environment, by its path rule and
    --env, which out's path rule must name too, and out's value rule. A prod-sealed file written
    into staging's paths would be refused by every door there, or worse, mistaken for staging's."""
    name = cfg.resolve_env(rel, env)
    dest = cfg.relpath(out, env=name)  # a path leading out of the repository through a link is refused
    owner = Repository(cfg).owner_of(dest) if dest is not None else None
    if owner is not None and owner != name:
        raise EnvironmentMismatch(
            f"is in environment {owner!r} by its path rule; refusing to write values sealed for {name!r} there (-o)",
            file=dest,
            hint=f"write it under {name}'s paths, or seal a plaintext copy under {owner}'s paths",
        )
    return target(cfg, dest if dest is not None else rel, name), dest


def _refuse_directory(path: Path_) -> None:
    """A directory is refused by what it is, before any path rule is asked: the same mistake gets
    the same message whether or not a path rule happens to cover the directory's own name."""
    if Path_(path).is_dir():
        raise InputError(
            "is a directory; sealer seals files",
            file=str(path),
            hint=f"name the files in it, e.g. sealer seal {str(path).rstrip('/')}/*.yaml",
        )


def seal_file(
    cfg: Config,
    path: Path_,
    *,
    env: str | None = None,
    scope: str | None = None,
    out: Path_ | None = None,
    write: bool = True,
    sign_with: SignerKey | None = None,
    drop_signature: bool = False,
    expires: str | None = None,
    now: int | None = None,
) -> tuple[str, SealReport]:
    """Seal a file in place (or into `out`), atomically; an unchanged file is not rewritten.
    Into `out`, the file is sealed as it will be there: for an environment its path rule agrees
    with (`out_target`), by its value rule, signed for its path. The values sealed expire as
    `expires` (a duration or an RFC 3339 time) and the policy's `max_lifetime` say
    (`EnvRules.expiry_for`); `now` is their seal time (default: the clock)."""
    _refuse_directory(path)
    rel = cfg.relpath(path, env=env)
    if out is not None:
        t, dest = out_target(cfg, rel, env, out)
        rel = dest or rel
    else:
        t = target(cfg, rel, env)
    signing = signing_for(cfg, t.env, sign_with, drop=drop_signature, path=rel or Path_(path).name)
    with locked(path):  # a concurrent set/reseal on the same file waits, so no update is lost
        new, report = t.seal_text(read_text(path), str(path), scope=scope, signing=signing, expires=expires, now=now)
        if write and out is not None:
            atomic_write(out, new.encode())
        elif write and report.changed:
            atomic_write(path, new.encode())
    return new, report


def set_in_file(
    cfg: Config,
    path: Path_,
    value_path: Path,
    value: bytes,
    *,
    env: str | None = None,
    vtype: str | None = None,
    document: int | None = None,
    sign_with: SignerKey | None = None,
    drop_signature: bool = False,
    expires: str | None = None,
    now: int | None = None,
) -> list[int]:
    """Set one value in a file; returns the documents whose signature was dropped (see `Signing`).
    The value expires as `expires` and the policy's `max_lifetime` say (`EnvRules.expiry_for`)."""
    _refuse_directory(path)
    rel = cfg.relpath(path, env=env)
    t = target(cfg, rel, env)
    signing = signing_for(cfg, t.env, sign_with, drop=drop_signature, path=rel or Path_(path).name)
    now = int(time.time()) if now is None else now
    expires_at = t.rules.expiry_for(expires, now, source=str(path))
    with locked(path):
        new, dropped = set_value_report(
            read_text(path),
            str(path),
            value_path,
            value,
            env=t.env,
            recipients=t.recipients,
            vtype=vtype,
            selector=t.selector,
            document=document,
            now=now,
            signing=signing,
            expires_at=expires_at,
        )
        atomic_write(path, new.encode())
    return dropped
