"""The dependency map for people (text) and for pull requests and wikis (a mermaid graph).

Every name in the map comes from the repository, which anyone holding the public key can write,
so nothing of it reaches the mermaid text unescaped: node ids are generated (`s1`, `k1`, `w1`),
and each label is quoted with every character outside a small safe set written as a mermaid
entity code (`#34;`), so a name cannot close its label, start a new statement or bring in markup.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from .._show import age, iso
from .extract import Ref
from .resolve import EnvRefs, KeyUse

_SAFE = re.compile(r"[A-Za-z0-9 ._/:=,()+-]")


def text_lines(maps: Sequence[EnvRefs], now: float | None = None) -> list[str]:
    t = time.time() if now is None else now
    out: list[str] = []
    for m in maps:
        unused = len(m.unused)
        out.append(
            f"{m.env}: {len(m.secrets)} Secret(s), {m.workloads} workload(s), {unused} unused key(s),"
            f" {len(m.problems)} missing reference(s)"
        )
        for s in m.secrets:
            p = s.secret
            where = "external (listed in .sealer.yaml)" if p.external else p.file
            out.append(f"  Secret {p.ref}  {where}")
            for c in s.whole if p.external else ():
                out.append(f"    <- {_consumer(c)}")
            for k in s.keys:
                out.append(f"    {k.info.key}  {_sealing(k, t)}")
                out += [f"      <- {_consumer(c)}" for c in k.consumers] or ["      unused: no workload consumes it"]
        for miss in m.missing:
            label = "optional, missing" if miss.ref.optional else "MISSING"
            out.append(f"  {label}: {miss.ref.file}: {miss.message(m.env)}")
        out += [f"  failed: {f.file}: {f.message}" for f in m.failures]
        out += [f"  note: {n}" for n in m.notes + m.unread]
    return out


def _sealing(k: KeyUse, now: float) -> str:
    i = k.info
    if not i.sealed or i.sealed_at is None:
        return "not sealed"
    return f"key {'+'.join(i.kids)}  sealed {iso(i.sealed_at)} ({age(now - i.sealed_at)})"


def _consumer(r: Ref) -> str:
    where = f"{r.file}:{r.line}" if r.line is not None else r.file
    return f"{r.who}: {r.how}  ({where})"


def mermaid(maps: Sequence[EnvRefs]) -> str:
    """`graph LR`: a node per Secret key and per workload container (or pod, for what the pod as a
    whole uses), an edge per consumption labelled with how; unused keys and missing references are
    marked by class."""
    lines = [
        "graph LR",
        "  classDef unused stroke-dasharray: 5 5,color:#888",
        "  classDef missing fill:#fdd,stroke:#c00",
        "  classDef optional fill:#ffe,stroke:#cc0,stroke-dasharray: 3 3",
    ]
    ids: dict[tuple[str, ...], str] = {}
    counts: dict[str, int] = {}

    def node(kind: str, key: tuple[str, ...], label: str, cls: str | None = None) -> str:
        if key not in ids:
            counts[kind] = counts.get(kind, 0) + 1
            ids[key] = f"{kind}{counts[kind]}"
            lines.append(f'  {ids[key]}["{quote(label)}"]')
            if cls:
                lines.append(f"  class {ids[key]} {cls}")
        return ids[key]

    def edges(src: str, env: str, r: Ref, how: str) -> None:
        who = f"{env}: {r.kind} {r.namespace}/{r.workload}"
        base = ("w", env, r.kind, r.namespace, r.workload)
        targets = [node("w", (*base, c), f"{who} / {c}") for c in r.containers] or [node("w", base, f"{who} (pod)")]
        lines.extend(f'  {src} -->|"{quote(how)}"| {t}' for t in targets)

    for m in maps:
        for s in m.secrets:
            p = s.secret
            if p.external:
                sid = node("k", ("k", m.env, p.ref), f"{m.env}: {p.ref} (external)")
                for c in s.whole:
                    edges(sid, m.env, c, c.how + (f" {c.key}" if c.key else ""))
            for k in s.keys:
                cls = "unused" if k.unused else None
                kid = node("k", ("k", m.env, p.ref, k.info.key), f"{m.env}: {p.ref} {k.info.key}", cls)
                for c in k.consumers:
                    edges(kid, m.env, c, c.how)
        for miss in m.missing:
            r = miss.ref
            what = f"{r.secret_ref} {r.key}" if miss.what == "key" and r.key else r.secret_ref
            cls = "optional" if r.optional else "missing"
            mid = node("m", ("m", m.env, r.secret_ref, r.key or ""), f"{m.env}: {what} (missing)", cls)
            edges(mid, m.env, r, r.how)
    return "\n".join(lines) + "\n"


def quote(text: str) -> str:
    """A label's text with everything outside `_SAFE` as a mermaid entity code (`"` is `#34;`)."""
    return "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text)
