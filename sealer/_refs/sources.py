"""The documents an environment deploys, for resolving references: its files, or what
`kubectl kustomize` makes of them where a kustomization is.

Files come from the repository's one file rule (`Repository.files`). A directory of the
environment holding a `kustomization.yaml` (or `.yml`) is rendered once with `kubectl kustomize`
(no plugins, no Helm, no exec; git and HTTP pointed nowhere, so a remote base fails instead of
fetching) and references resolve within that output, where `namespace:`, name prefixes and
generators have been applied. A kustomization another one of the environment lists under
`resources`, `bases` or `components` is a base: it is rendered as part of its overlay, never on
its own. Files under a rendered kustomization's directories are seen only through the render
(what the kustomization does not list is not deployed); every other file is read as it is. A
rendered object is attributed to the source file holding an object of the same kind, namespace
and name (or kind and name, when only one matches), else to the overlay's kustomization file.

Without kubectl every file is read as it is, and a note says so; a render that fails is a
problem (deploying it would fail too) and its files are read as they are. The sealed Secrets in a
render are the same strings as in their files: nothing is opened.
"""

from __future__ import annotations

import importlib
import os
import posixpath
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._document import Document, SealedFile, load
from .._fsio import read_text
from .._repository import Repository
from ..errors import InputError, SealerError

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml")
KUBECTL_TIMEOUT = 120  # seconds one render may take
_NOWHERE = "http://127.0.0.1:9"  # the discard port: a remote base fails at once instead of fetching


@dataclass(frozen=True)
class Failure:
    """Something that kept an environment's references from being resolved as deployed."""

    file: str
    code: str
    message: str


@dataclass
class Sourced:
    """A document, the repository file it is attributed to, and whether its lines are that file's."""

    file: str
    doc: Document
    lines: bool


@dataclass
class EnvSources:
    docs: list[Sourced] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # files that do not parse (check reports them)
    rendered: list[str] = field(default_factory=list)  # the kustomization files rendered


def env_sources(
    repo: Repository,
    env: str,
    loaded: Mapping[str, SealedFile] | None = None,
    *,
    use_kubectl: bool = True,
) -> EnvSources:
    """Every document environment `env` deploys. `loaded`: files already parsed (by check)."""
    out = EnvSources()
    try:
        files = [f.rel for f in repo.files([env])]
    except SealerError as e:  # a link or an oversized file under its paths: check reports the file
        out.notes.append(f"{env}: references not resolved: {e}")
        return out
    cache: dict[str, SealedFile | None] = {}

    def parsed(rel: str) -> SealedFile | None:
        if rel not in cache:
            sf = (loaded or {}).get(rel)
            if sf is None:
                try:
                    sf = load(read_text(repo.root / rel), rel, repo.config.selector(rel))
                except SealerError as e:
                    out.unread.append(f"{rel}: not read ({e.message}); its references are not resolved")
            cache[rel] = sf
        return cache[rel]

    kust = {posixpath.dirname(rel): rel for rel in files if posixpath.basename(rel) in KUSTOMIZATION_NAMES}
    kust_files = set(kust.values())
    covered: set[str] = set()
    if kust:
        tool = shutil.which("kubectl") if use_kubectl else None
        if tool is None:
            why = "kubectl is not on PATH" if use_kubectl else "rendering is off"
            out.notes.append(
                f"{env}: {why}, so {len(kust)} kustomization(s) were not rendered; references are resolved"
                " within the files as written (no namespace:, name prefixes or generators applied)"
            )
        else:
            lists = {d: _listed(d, parsed(rel)) for d, rel in kust.items()}
            bases = {b for d, listed in lists.items() for b in listed if b in kust and b != d}
            for root in sorted(d for d in kust if d not in bases):
                closure = _closure(root, lists, kust)
                docs = _render(repo, tool, root, kust[root], out)
                if docs is None:
                    continue
                sources = [f for f in files if f not in kust_files and any(_under(f, d) for d in closure)]
                origins = _Origins(sources, parsed)
                out.rendered.append(kust[root])
                covered |= closure
                out.docs += [Sourced(origins.of(doc) or kust[root], doc, False) for doc in docs]
    for rel in files:
        if rel in kust_files or any(_under(rel, d) for d in covered):
            continue
        sf = parsed(rel)
        if sf is not None:
            out.docs += [Sourced(rel, d, True) for d in sf.docs]
    return out


def _under(rel: str, d: str) -> bool:
    return d == "" or rel.startswith(d + "/")


def _listed(d: str, sf: SealedFile | None) -> set[str]:
    """The directories a kustomization lists (resources, bases, components), repository-relative."""
    out: set[str] = set()
    if sf is None or not sf.docs:
        return out
    for k, v in sf.docs[0].root.value:
        if k.value not in ("resources", "bases", "components") or v.id != "sequence":
            continue
        for item in v.value:
            if item.id == "scalar" and "://" not in str(item.value):
                target = posixpath.normpath(posixpath.join(d, str(item.value)))
                out.add("" if target == "." else target)
    return out


def _closure(root: str, lists: Mapping[str, set[str]], kust: Mapping[str, str]) -> set[str]:
    """A kustomization's directory and every kustomization of the environment it pulls in."""
    seen, todo = {root}, [root]
    while todo:
        for b in lists.get(todo.pop(), ()):
            if b in kust and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def _render(repo: Repository, kubectl: str, root: str, kfile: str, out: EnvSources) -> list[Document] | None:
    """`kubectl kustomize ROOT`, parsed; None (and a Failure) when it does not render."""
    where = root or "."
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[name] = _NOWHERE
    env.update(NO_PROXY="", no_proxy="", GIT_ALLOW_PROTOCOL="file", GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.run(
            [kubectl, "kustomize", where],
            cwd=repo.root,
            env=env,
            capture_output=True,
            timeout=KUBECTL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        why = f"did not finish within {KUBECTL_TIMEOUT} s"
    except OSError as e:
        why = f"could not run ({e.strerror})"
    else:
        if proc.returncode == 0:
            try:
                return rendered_documents(proc.stdout.decode("utf-8"), kfile)
            except (SealerError, UnicodeDecodeError, RecursionError, ValueError):
                why = "printed output sealer cannot read"
        else:
            why = f"failed (exit {proc.returncode})"
    # kustomize's own message is not repeated: it may quote a document's content.
    out.failures.append(
        Failure(
            kfile,
            "kustomize",
            f"kubectl kustomize {where} {why}, so deploying it would fail too; run it to see why"
            " (its references are resolved within its files as written)",
        )
    )
    return None


def rendered_documents(text: str, source: str) -> list[Document]:
    """The documents of kustomize's output, for their names and references only.

    kustomize prints plain block YAML, thousands of documents for a large overlay; libyaml's
    composer (PyYAML's CSafeLoader, installed with detect-secrets) reads it about four times
    faster than ruamel's pure-Python one, and gives the same node tree (`id`, `tag`, `value`,
    marks). Without it, `sealer._document.load` reads it. Nothing here is sealed or opened: the
    documents carry no sealer: block and no leaves."""
    try:
        yaml: Any = importlib.import_module("yaml")  # untyped; only compose_all and its nodes are used
        loader = yaml.CSafeLoader
    except (ImportError, AttributeError):
        return load(text, source).docs
    try:
        roots = list(yaml.compose_all(text, Loader=loader))
    except yaml.YAMLError:
        raise InputError("malformed YAML", file=source) from None
    out = []
    for i, root in enumerate(roots):
        if root is None or root.id != "mapping":
            continue
        md = _field(root, "metadata")
        names = [_field(md, k) if md is not None and md.id == "mapping" else None for k in ("namespace", "name")]
        kind = _field(root, "kind")
        text_of = [str(n.value) if n is not None and n.id == "scalar" else "" for n in (kind, *names)]
        out.append(Document(i, root, text_of[0] or None, text_of[1], text_of[2], None, None))
    return out


def _field(node: Any, key: str) -> Any:
    return next((v for k, v in node.value if k.id == "scalar" and k.value == key), None)


class _Origins:
    """Which source file a rendered object comes from: the one file holding an object of the same
    kind, namespace and name, else of the same kind and name. Built on first use."""

    def __init__(self, files: list[str], parsed: Callable[[str], SealedFile | None]) -> None:
        self.files, self.parsed = files, parsed
        self.table: dict[tuple[str, ...], set[str]] | None = None

    def of(self, doc: Document) -> str | None:
        if self.table is None:
            self.table = {}
            for rel in self.files:
                sf = self.parsed(rel)
                for d in sf.docs if sf is not None else ():
                    self.table.setdefault((d.kind or "", d.namespace, d.name), set()).add(rel)
                    self.table.setdefault((d.kind or "", d.name), set()).add(rel)
        for key in ((doc.kind or "", doc.namespace, doc.name), (doc.kind or "", doc.name)):
            hits = self.table.get(key, set())
            if len(hits) == 1:
                return next(iter(hits))
        return None
