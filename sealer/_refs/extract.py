"""What one Kubernetes document provides or consumes: a Secret's namespace, name and keys, and the
references a workload's pod spec makes to Secrets.

Read from the composed YAML nodes `sealer._document.load` gives, so nothing is constructed and no
value is opened: a sealed Secret's keys, and each token's key ids and seal time, are public. Only
the fields Kubernetes reads are followed (a fixed path per workload kind), and the walk has a
budget, so aliases that repeat a container list cannot make it expensive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import _format
from .._document import MAX_NODES, Document
from ..errors import InputError, TokenError

DEFAULT_NAMESPACE = "default"  # where an object without metadata.namespace goes (kubectl's default)

# Where each workload kind keeps its pod spec.
POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class KeyInfo:
    """One key of a Secret, as its file shows it without a key: sealed or not, key ids, seal time."""

    key: str
    sealed: bool = False
    kids: tuple[str, ...] = ()
    sealed_at: int | None = None


@dataclass(frozen=True)
class Provided:
    """A Secret an environment provides: sealed in its files, or listed as `external:`."""

    namespace: str
    name: str
    file: str | None  # None: an external Secret (its keys are not known)
    line: int | None
    keys: tuple[KeyInfo, ...] = ()
    external: bool = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def has(self, key: str) -> bool:
        return self.external or any(k.key == key for k in self.keys)


@dataclass(frozen=True)
class Ref:
    """One reference of a workload to a Secret, or to one key of it (`key` None: the whole Secret)."""

    file: str
    line: int | None
    kind: str
    workload: str
    namespace: str
    containers: tuple[str, ...]  # empty: the pod as a whole (imagePullSecrets, a volume nobody mounts)
    how: str  # env NAME, envFrom, volume NAME, projected volume NAME, imagePullSecrets
    secret: str
    key: str | None
    optional: bool = False

    @property
    def secret_ref(self) -> str:
        return f"{self.namespace}/{self.secret}"

    @property
    def who(self) -> str:
        """`Deployment shop/web, container web`, as a problem line names the consumer."""
        where = f"{self.kind} {self.namespace}/{self.workload}"
        if not self.containers:
            return f"{where}, pod"
        label = "container" if len(self.containers) == 1 else "containers"
        return f"{where}, {label} {', '.join(self.containers)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "workload": self.workload,
            "namespace": self.namespace,
            "containers": list(self.containers),
            "how": self.how,
            "secret": self.secret,
            "key": self.key,
            "optional": self.optional,
        }


def namespace_of(doc: Document) -> str:
    return doc.namespace or DEFAULT_NAMESPACE


def provided(doc: Document, file: str, *, lines: bool = True) -> Provided | None:
    """The Secret a document is, with the union of its `data` and `stringData` keys."""
    if not doc.is_secret or not doc.name:
        return None
    entries = []
    for section in ("data", "stringData"):
        node = _get(doc.root, section)
        if node is not None and node.id == "mapping":
            entries += [(k.start_mark.index, str(k.value), v) for k, v in node.value if k.id == "scalar"]
    infos: dict[str, KeyInfo] = {}
    for _at, name, value in sorted(entries, key=lambda e: e[0]):  # in file order, whichever section first
        info = infos.get(name) or KeyInfo(name)
        text = _text(value)
        if text is not None and value.tag == _STR and _format.is_token(text):
            try:
                tok = _format.parse_token(text)
            except TokenError:
                pass  # check reports the token; the key is still provided
            else:
                info = KeyInfo(name, True, tok.kids, tok.sealed_at)
        infos[name] = info
    line = doc.root.start_mark.line + 1 if lines else None
    return Provided(namespace_of(doc), doc.name, file, line, tuple(infos.values()))


def references(doc: Document, file: str, *, lines: bool = True) -> list[Ref]:
    """Every Secret reference of a workload's pod spec: env, envFrom, volumes (secret and projected)
    and imagePullSecrets, of init, regular and ephemeral containers. Raises `InputError` when the
    pod spec, with its aliases expanded, has more than `MAX_NODES` nodes."""
    steps = POD_SPEC.get(doc.kind or "")
    if steps is None:
        return []
    spec = doc.root
    for step in steps:
        spec = _get(spec, step)
    if spec is None or spec.id != "mapping":
        return []
    walk = _Walk(file, doc, lines)
    out: list[Ref] = []
    mounts: dict[str, list[str]] = {}
    for lst in CONTAINER_LISTS:
        for i, c in walk.items(_get(spec, lst)):
            cname = _text(_get(c, "name")) or f"{lst}[{i}]"
            for _j, e in walk.items(_get(c, "env")):
                ref = _get(_get(e, "valueFrom"), "secretKeyRef")
                name, key = _text(_get(ref, "name")), _text(_get(ref, "key"))
                if name and key:
                    how = f"env {_text(_get(e, 'name')) or '?'}"
                    out.append(walk.ref(ref, (cname,), how, name, key, _optional(ref)))
            for _j, e in walk.items(_get(c, "envFrom")):
                ref = _get(e, "secretRef")
                name = _text(_get(ref, "name"))
                if name:
                    out.append(walk.ref(ref, (cname,), "envFrom", name, None, _optional(ref)))
            for _j, m in walk.items(_get(c, "volumeMounts")):
                vname = _text(_get(m, "name"))
                if vname and cname not in mounts.setdefault(vname, []):
                    mounts[vname].append(cname)
    for _i, v in walk.items(_get(spec, "volumes")):
        vname = _text(_get(v, "name")) or "?"
        users = tuple(mounts.get(vname, ()))
        sec = _get(v, "secret")
        name = _text(_get(sec, "secretName"))
        if name:
            out += walk.items_refs(sec, users, f"volume {vname}", name, _optional(sec))
        for _j, src in walk.items(_get(_get(v, "projected"), "sources")):
            sec = _get(src, "secret")
            name = _text(_get(sec, "name"))
            if name:
                out += walk.items_refs(sec, users, f"projected volume {vname}", name, _optional(sec))
    for _i, p in walk.items(_get(spec, "imagePullSecrets")):
        name = _text(_get(p, "name"))
        if name:
            out.append(walk.ref(p, (), "imagePullSecrets", name, None, False))
    return out


class _Walk:
    """The walk over one pod spec: its budget, and the Ref it makes of each reference node."""

    def __init__(self, file: str, doc: Document, lines: bool) -> None:
        self.file, self.doc, self.lines = file, doc, lines
        self.budget = MAX_NODES

    def items(self, node: Any) -> Iterator[tuple[int, Any]]:
        if node is None or node.id != "sequence":
            return
        for i, item in enumerate(node.value):
            self.budget -= 1
            if self.budget < 0:
                raise InputError(
                    f"document {self.doc.index}: its pod spec has more than {MAX_NODES} list items once aliases"
                    " are expanded; its Secret references are not resolved",
                    file=self.file,
                )
            if item.id == "mapping":
                yield i, item

    def ref(
        self, node: Any, containers: tuple[str, ...], how: str, secret: str, key: str | None, optional: bool
    ) -> Ref:
        line = node.start_mark.line + 1 if self.lines else None
        d = self.doc
        return Ref(self.file, line, d.kind or "", d.name, namespace_of(d), containers, how, secret, key, optional)

    def items_refs(self, sec: Any, users: tuple[str, ...], how: str, name: str, optional: bool) -> list[Ref]:
        """A secret volume (or projected source): the Secret as a whole, or each of its `items`' keys."""
        keys = [k for _i, it in self.items(_get(sec, "items")) if (k := _text(_get(it, "key")))]
        if not keys:
            return [self.ref(sec, users, how, name, None, optional)]
        return [self.ref(sec, users, how, name, k, optional) for k in keys]


def _get(node: Any, key: str) -> Any:
    if node is None or node.id != "mapping":
        return None
    for k, v in node.value:
        if k.id == "scalar" and k.value == key:
            return v
    return None


def _text(node: Any) -> str | None:
    if node is None or node.id != "scalar" or node.tag == _NULL:
        return None
    return str(node.value)


def _optional(node: Any) -> bool:
    flag = _get(node, "optional")
    return flag is not None and flag.id == "scalar" and flag.tag == _BOOL and str(flag.value).lower() == "true"
