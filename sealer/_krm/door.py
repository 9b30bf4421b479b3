"""The door every item goes through: `unseal_file` under the environment's `EnvRules`, as `unseal`.

An item on stdin has no file of its own, so this module settles, for each one, the two things a
file's path gives `sealer unseal`, and refuses where it cannot:

- **Whose rules.** The environment is the one the item's `sealer:` block names. It must agree with
  the path rule of the item's file when that is known, else with the path rule of the directory
  sealer runs in (kustomize runs plugins in the kustomization's directory: a kustomization under
  `deploy/prod/` renders prod and nothing else), and with `--env` when given. That environment's
  rules (accepted keys, `not_before`, signatures) then apply in full, from `Repository.rules`.
  Outside a sealer repository nothing is opened: there are no rules to apply.
- **Which path a signature covers.** A signature covers the file's repository-relative path. Only
  kpt names an item's file trustworthily (it overwrites any path annotation a file carries), so
  the path annotations count only under `package` (`sealer krm --package DIR`, kpt's package
  directory). An item without a known path that is signed, or whose environment requires a
  signature, is refused: its signature cannot be checked. The generator reads files itself, so
  it has their paths and applies every rule exactly as `unseal` does.

A strict- or namespace-scoped value is bound to its Secret's namespace and name, so an item
kustomize renamed before sealer saw it does not open; kustomize says so in its `previousNames`
annotations, and the error says what happened and what to do.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EnvironmentMismatch, InputError, UnsealError, UsageError
from . import items as _items

if TYPE_CHECKING:
    from .._document import SealedFile
    from .._keys import Identity
    from .._repository import EnvRules, Repository
    from .._unseal import Unsealed

NEEDS_HASH = "kustomize.config.k8s.io/needs-hash"
_HASHED_KINDS = ("Secret", "ConfigMap")  # the kinds kustomize adds a content hash to
_GENERATOR_HINT = "generate it with a SealerGenerator, which reads the file (docs/krm.md)"


class Door:
    """One run of `sealer krm`: the repository it runs in and every item it opened (`opened`,
    for the audit log, which the caller writes before any output leaves)."""

    def __init__(
        self,
        identity_for: Callable[[str], Identity | None],
        *,
        cwd: Path,
        env: str | None = None,
        package: Path | None = None,
    ) -> None:
        self.identity_for = identity_for
        self.env = env
        self.package = package
        self.base = package if package is not None else cwd  # where files are named from
        self.opened: list[Unsealed] = []
        self._repo: Repository | None = None
        self._where: tuple[str, str | None] | None = None

    # --- where we are --------------------------------------------------------------------------

    def repository(self, label: str) -> Repository:
        if self._repo is None:
            from .._config import Config, find_root
            from .._repository import Repository

            root = find_root(self.base)
            if root is None:
                raise InputError(
                    "holds sealed values, but sealer runs outside any sealer repository, so its environment's"
                    " rules (retired keys, not_before, signatures) cannot be applied",
                    file=label,
                    hint="run kustomize (or kpt, helm) from the repository's checkout",
                )
            self._repo = Repository(Config.load(root))
        return self._repo

    def location(self, label: str) -> tuple[str, str | None]:
        """(the directory sealer runs in (kpt's package directory under `package`),
        repository-relative; the environment whose path rule covers a file there, if any)."""
        if self._where is None:
            repo = self.repository(label)
            rel = repo.config.relpath(self.base)
            assert rel is not None
            probe = "kustomization.yaml" if rel == "." else posixpath.join(rel, "kustomization.yaml")
            self._where = (rel, repo.owner_of(probe))
        return self._where

    def item_path(self, aside: _items.Aside, label: str) -> str | None:
        """The repository-relative path of an item's file: from kpt's path annotation, relative to
        the package directory, and only under `package`; else unknown (None)."""
        if self.package is None:
            return None
        given = next((aside.get(a) for a in _items.PATH_ANNOTATIONS if aside.get(a) is not None), None)
        if given is None:
            return None
        norm = posixpath.normpath(given)
        if not given or posixpath.isabs(norm) or norm == ".." or norm.startswith("../"):
            raise InputError(f"its path annotation {given!r} leads outside the package", file=label)
        rel = self.repository(label).config.relpath(self.package / norm)
        if rel is None:
            raise InputError("its file is outside the sealer repository", file=label)
        return rel

    # --- one item on stdin ---------------------------------------------------------------------

    def open_item(self, text: str, label: str, *, paths: bool = False) -> str | None:
        """The unsealed manifest text of an item that carries sealed values; None for any other
        item (it goes on untouched). `paths`: the item came in a ResourceList, where kpt names
        its file (see `item_path`)."""
        if not _items.may_be_sealed(text):
            return None
        from .._document import load
        from .._unseal import unseal_file

        sf = load(text, label)
        if not sf.docs:
            return None
        doc = sf.docs[0]
        if doc.meta is None and not any(leaf.sealed for leaf in doc.leaves):
            return None  # a token in a comment or under metadata is not a sealed value
        what = " ".join(x for x in (doc.kind, "/".join(x for x in (doc.namespace, doc.name) if x)) if x)
        label = f"{label} ({what})" if what else label
        stripped, aside = _items.set_aside(text, doc, label)
        renamed = aside
        rel = self.item_path(aside, label) if paths else None
        if rel is not None:
            label = f"{rel} ({what})" if what else rel
        if rel is not None and aside.values:
            # A signature can be checked (the file is known): against the document as its signer
            # wrote it, without the orchestrator's annotations; they go back on the output.
            sf = load(stripped, label)
            doc = sf.docs[0]
        else:
            aside = _items.Aside({}, [])  # nothing was lifted out: nothing to put back
        sf.source = label
        rules = self.rules(sf, label, rel)
        _renamed(doc, renamed, label)
        unsealed = unseal_file(sf, self.identity_for, rules=rules, structured=True, path=rel)
        (opened,) = unsealed.docs
        if not opened.is_manifest:
            raise InputError("has sealed values but is not a Kubernetes manifest (no apiVersion and kind)", file=label)
        self.opened.append(unsealed)
        from .._render import manifest

        source = rel if rel is not None else self.location(label)[0]
        return manifest(_items.restore(opened.content, aside), source=source)

    def rules(self, sf: SealedFile, label: str, rel: str | None) -> EnvRules:
        """The rules the item opens under: its `sealer:` block's environment, which must agree
        with its file's path rule (or else the directory's) and `--env`."""
        repo = self.repository(label)
        claim = sf.env
        if claim is None:
            raise InputError(
                "has sealed values but no sealer: block", file=label, hint="restore the file from git, or seal it again"
            )
        owner = repo.owner_of(rel) if rel is not None else None
        if owner is not None and owner != claim:
            raise EnvironmentMismatch(
                f"is sealed for environment {claim!r}, but its file {rel} belongs to {owner!r} by its path rule",
                file=label,
            )
        where, here = self.location(label)
        if owner is None and here is not None and here != claim:
            raise EnvironmentMismatch(
                f"is sealed for environment {claim!r}, but sealer runs in {where}, which belongs to {here!r}",
                file=label,
                hint="render each environment from a kustomization under its own paths",
            )
        if self.env is not None and claim != self.env:
            raise EnvironmentMismatch(f"is sealed for environment {claim!r}, not {self.env!r} (--env)", file=label)
        rules = repo.rules(claim)
        if rel is None:
            signed = any(d.meta is not None and d.meta.signature is not None for d in sf.docs)
            if signed:
                raise UnsealError(
                    "is signed, but came on stdin without its file's path, which the signature covers,"
                    " so the signature cannot be checked",
                    file=label,
                    hint=f"{_GENERATOR_HINT}; under kpt, run sealer krm --package DIR",
                )
            if rules.signatures.required:
                raise UnsealError(
                    f"is not signed, and environment {claim} requires a signature (policy require_signature)",
                    file=label,
                    hint="an allowed signer signs the file (sealer seal FILE --sign-with KEY), and kustomize "
                    f"reads it through the SealerGenerator: {_GENERATOR_HINT}",
                )
        return rules

    # --- files, for the generator --------------------------------------------------------------

    def generate(self, files: Sequence[str], *, needs_hash: bool = False) -> tuple[list[str], list[str]]:
        """The unsealed manifests of sealed files named relative to the working directory (the
        kustomization's; kpt's package directory under `package`), through `unseal_paths`: each
        file under its own path rule and rules, exactly as `sealer unseal FILE`. Returns the
        manifest texts and notes for stderr."""
        from .._render import manifest
        from .._unseal import unseal_paths

        label = "the SealerGenerator"
        where, here = self.location(label)
        paths = []
        for f in files:
            if posixpath.isabs(f) or Path(f).is_absolute():
                raise UsageError(f"files: {f!r} is absolute", file=label, hint="name it relative to the kustomization")
            paths.append(self.base / f)
        unsealed, notes = unseal_paths(paths, self.identity_for, env=self.env, structured=True)
        out: list[str] = []
        for u in unsealed:
            if here is not None and u.env != here:
                raise EnvironmentMismatch(
                    f"is sealed for environment {u.env!r}, but the kustomization in {where} belongs to {here!r}",
                    file=u.source,
                    hint="generate each environment's files from a kustomization under its own paths",
                )
            for d in u.docs:
                if not d.is_manifest:
                    notes.append(f"{u.source}: document {d.index} is not a Kubernetes manifest; not generated")
                    continue
                content: Any = d.content
                if needs_hash and d.kind in _HASHED_KINDS:
                    content = _annotate(content, NEEDS_HASH, "true")
                out.append(manifest(content, source=u.path if u.path is not None else u.source))
        self.opened.extend(unsealed)
        return out, notes


def _renamed(doc: Any, aside: _items.Aside, label: str) -> None:
    """Refuse, saying why, an item whose values are bound to a namespace and name kustomize has
    changed (namePrefix, nameSuffix, namespace) before sealer ran: they would not open."""
    if doc.meta is None or doc.meta.scope not in ("strict", "namespace"):
        return
    name, namespace = _items.previous(aside, "Names"), _items.previous(aside, "Namespaces")
    moved_name = doc.meta.scope == "strict" and name is not None and name != doc.name
    moved_ns = namespace is not None and namespace != doc.namespace
    if not (moved_name or moved_ns):
        return
    before = "/".join(x for x in (namespace if namespace is not None else doc.namespace, name or doc.name) if x)
    now = "/".join(x for x in (doc.namespace, doc.name) if x)
    raise UnsealError(
        f"kustomize renamed it from {before} to {now} (namePrefix, nameSuffix or namespace) before sealer ran,"
        f" and its values are bound to their {'namespace and name' if doc.meta.scope == 'strict' else 'namespace'}"
        f" (scope {doc.meta.scope}), so they do not open",
        file=label,
        hint="list the sealer transformer in the kustomization that lists the Secret (a base, renamed by the"
        f" overlay afterwards), or {_GENERATOR_HINT}",
    )


def _annotate(content: Any, key: str, value: str) -> Any:
    if not isinstance(content, dict):
        return content
    md = content.get("metadata")
    md = dict(md) if isinstance(md, dict) else {}
    annotations = md.get("annotations")
    md["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), key: value}
    return {**content, "metadata": md}
