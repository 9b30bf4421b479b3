"""Resolving references: which Secret key each workload consumes, which keys nobody consumes,
and which references name a Secret or key the environment does not provide.

A reference resolves within its environment and namespace (an object without
`metadata.namespace` is in `default`, as kubectl puts it). A Secret is provided by a Secret
document among the environment's deployed documents (`sources`), or by an `external:` entry of
`.sealer.yaml`, whose keys are not known, so any key of it resolves. A reference to the whole
Secret (envFrom, imagePullSecrets, a secret volume without `items`) needs the Secret and consumes
every key of it; one to a key (env, `items`) needs that key. `optional: true` makes a missing
Secret or key no problem, but the map still lists it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._document import SealedFile
from .._repository import Repository
from .._show import iso
from ..errors import SealerError, UsageError
from .extract import KeyInfo, Provided, Ref, provided, references
from .sources import EnvSources, Failure, env_sources

KEYS_NAMED = 8  # keys a "has no key" message lists


@dataclass(frozen=True)
class Missing:
    """A reference to a Secret (`what` "secret") or a key of one ("key") the environment lacks."""

    ref: Ref
    what: str
    known: tuple[str, ...] = ()  # the keys the Secret does have (for "key")

    @property
    def code(self) -> str:
        return f"missing-{self.what}"

    def message(self, env: str) -> str:
        r = self.ref
        if self.what == "secret":
            body = (
                f"no Secret {r.secret_ref} in {env} (seal one under {env}'s paths, or list it"
                " under external: in .sealer.yaml)"
            )
        else:
            names = ", ".join(self.known[:KEYS_NAMED]) + (", …" if len(self.known) > KEYS_NAMED else "")
            body = f"Secret {r.secret_ref} in {env} has no key {r.key!r} (its keys: {names or 'none'})"
        return f"{r.who}: {r.how}: {body}{' (optional)' if r.optional else ''}"

    def to_dict(self, env: str) -> dict[str, Any]:
        return {**self.ref.to_dict(), "code": self.code, "message": self.message(env)}


@dataclass
class KeyUse:
    info: KeyInfo
    consumers: list[Ref] = field(default_factory=list)

    @property
    def unused(self) -> bool:
        return not self.consumers

    def to_dict(self, now: float) -> dict[str, Any]:
        i = self.info
        return {
            "key": i.key,
            "sealed": i.sealed,
            "kids": list(i.kids),
            "sealed_at": iso(i.sealed_at) if i.sealed_at is not None else None,
            "age_seconds": max(0, int(now - i.sealed_at)) if i.sealed_at is not None else None,
            "unused": self.unused,
            "consumers": [c.to_dict() for c in self.consumers],
        }


@dataclass
class SecretUse:
    secret: Provided
    keys: list[KeyUse] = field(default_factory=list)
    whole: list[Ref] = field(default_factory=list)  # references to the Secret as a whole

    def to_dict(self, now: float) -> dict[str, Any]:
        s = self.secret
        return {
            "namespace": s.namespace,
            "name": s.name,
            "file": s.file,
            "line": s.line,
            "external": s.external,
            "consumers": [c.to_dict() for c in self.whole],
            "keys": [k.to_dict(now) for k in self.keys],
        }


@dataclass
class EnvRefs:
    """One environment's dependency map."""

    env: str
    secrets: list[SecretUse] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    workloads: int = 0
    notes: list[str] = field(default_factory=list)  # what was not seen: kustomizations left unrendered
    unread: list[str] = field(default_factory=list)  # files that do not parse (check reports them itself)
    failures: list[Failure] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)

    @property
    def unused(self) -> list[tuple[Provided, KeyUse]]:
        return [(s.secret, k) for s in self.secrets for k in s.keys if k.unused]

    @property
    def problems(self) -> list[Missing]:
        """The missing references that are not optional: what `check` fails on."""
        return [m for m in self.missing if not m.ref.optional]

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        t = time.time() if now is None else now
        return {
            "env": self.env,
            "workloads": self.workloads,
            "rendered": self.rendered,
            "secrets": [s.to_dict(t) for s in self.secrets],
            "missing": [m.to_dict(self.env) for m in self.missing],
            "unused": [
                {"namespace": p.namespace, "name": p.name, "file": p.file, "key": k.info.key} for p, k in self.unused
            ],
            "failures": [{"file": f.file, "code": f.code, "message": f.message} for f in self.failures],
            "notes": self.notes + self.unread,
        }


def resolve(env: str, providers: Sequence[Provided], refs: Sequence[Ref]) -> EnvRefs:
    """The map of `refs` against `providers` (the first Secret of a namespace/name wins)."""
    out = EnvRefs(env)
    by_ref: dict[str, SecretUse] = {}
    for p in providers:
        use = by_ref.get(p.ref)
        if use is None:
            use = by_ref[p.ref] = SecretUse(p, [KeyUse(k) for k in p.keys])
            out.secrets.append(use)
        elif not use.secret.external:  # the same Secret in two files: its keys are the union
            have = {k.info.key for k in use.keys}
            use.keys += [KeyUse(k) for k in p.keys if k.key not in have]
    for r in refs:
        use = by_ref.get(r.secret_ref)
        if use is None:
            out.missing.append(Missing(r, "secret"))
            continue
        if r.key is None:
            use.whole.append(r)
            for k in use.keys:
                k.consumers.append(r)
            continue
        hit = next((k for k in use.keys if k.info.key == r.key), None)
        if hit is not None:
            hit.consumers.append(r)
        elif use.secret.external:
            use.whole.append(r)  # an external Secret's keys are not known: any key resolves
        else:
            out.missing.append(Missing(r, "key", tuple(sorted(k.info.key for k in use.keys))))
    out.secrets.sort(key=lambda s: (s.secret.external, s.secret.namespace, s.secret.name))
    return out


def from_sources(env: str, sources: EnvSources, external: Sequence[tuple[str, str]] = ()) -> EnvRefs:
    providers: list[Provided] = []
    refs: list[Ref] = []
    failures = list(sources.failures)
    for s in sources.docs:
        p = provided(s.doc, s.file, lines=s.lines)
        if p is not None:
            providers.append(p)
        try:
            found = references(s.doc, s.file, lines=s.lines)
        except SealerError as e:
            failures.append(Failure(s.file, "refs-limit", e.message))
            continue
        refs += found
    providers += [Provided(ns, name, None, None, external=True) for ns, name in external]
    out = resolve(env, providers, refs)
    out.workloads = len({(r.file, r.kind, r.namespace, r.workload) for r in refs})
    out.notes, out.unread = sources.notes, sources.unread
    out.failures = failures
    out.rendered = sources.rendered
    return out


def env_refs(
    repo: Repository, env: str, loaded: Mapping[str, SealedFile] | None = None, *, kubectl: bool = True
) -> EnvRefs:
    """The dependency map of environment `env`: its deployed documents, resolved."""
    sources = env_sources(repo, env, loaded, use_kubectl=kubectl)
    return from_sources(env, sources, repo.config.environments[env].external)


def refs(repo: Repository, env: str | None = None, *, kubectl: bool = True) -> list[EnvRefs]:
    """`sealer refs`: the map of one environment, or of every one."""
    known = repo.config.environments
    if env is not None and env not in known:
        raise UsageError(f"unknown environment {env!r}", hint=f"known: {', '.join(known) or 'none'}")
    names = [env] if env is not None else list(known)
    return [env_refs(repo, e, kubectl=kubectl) for e in names]
