"""`sealer check`: the CI gate. Needs no private key.

Every YAML file under an environment's paths must parse, be sealed for that environment (its
`sealer.env` agrees with the path rule), leave no selected value in plaintext, name only the
environment's current keys, and respect its policy: secret age, `not_before`, signatures, expiry.
Values expiring within `warn_before` are warnings: listed, but they do not fail the check. With
identities it also proves that every value opens. Each problem is one finding naming the file and,
where there is one, the value's path; nothing stops at the first problem, so one CI run lists them all.

Only what the checks need is imported: no gitpython, and pynacl only when a document is signed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _format
from ._config import CONFIG_NAME, KEYS_DIR, Config, compile_glob
from ._document import load, to_python
from ._format.valuepath import format_path
from ._fsio import read_text
from ._repository import EnvRules, Repository, is_yaml
from .errors import ConfigError, SealerError, TokenError

if TYPE_CHECKING:
    from ._document import SealedFile
    from ._keys import Identity
    from ._registry import Registry

_STRUCTURAL = frozenset({"malformed", "structure", "env-mismatch", "no-sealer-block", "token", "moved", "wrong-type"})


@dataclass
class Problem:
    """One finding: `FILE: PATH: message` (the path of the value when there is one)."""

    file: str
    code: str
    message: str
    path: str | None = None
    line: int | None = None
    warning: bool = False  # reported, but does not fail the check (a value expiring soon)
    extra: dict[str, Any] | None = None  # a reference's workload, containers, Secret and key

    def render(self) -> str:
        message = f"warning: {self.message}" if self.warning else self.message
        return f"{self.file}: {self.path}: {message}" if self.path else f"{self.file}: {message}"

    def to_dict(self) -> dict[str, Any]:
        out = {"file": self.file, "path": self.path, "line": self.line, "code": self.code, "message": self.message}
        return {**out, **self.extra} if self.extra else out


@dataclass
class CheckReport:
    files: int = 0
    values: int = 0
    unsealed: int | None = None  # values proven to open (with identities), else None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # values expiring soon: said, not failed
    notes: list[str] = field(default_factory=list)  # what was not seen (kubectl missing), not failures

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "values": self.values,
            "unsealed": self.unsealed,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
            "notes": self.notes,
        }


def bare(err: SealerError) -> str:
    """An error's message without its `FILE: ` prefix (the Problem names the file)."""
    text = str(err)
    return text[len(err.file) + 2 :] if err.file and text.startswith(f"{err.file}: ") else text


# --- which files -----------------------------------------------------------------------------------


def env_yaml_files(
    cfg: Config, envs: Sequence[str] | None = None, under: Path | None = None
) -> Iterator[tuple[str, str, Path]]:
    """(env, repo-relative path, file) for every file of the environments (the repository's rule)."""
    repo = Repository(cfg)
    for f in repo.files(envs, [under] if under is not None else ()):
        yield f.env, f.rel, repo.path(f)


# --- one file --------------------------------------------------------------------------------------


def check_text(
    cfg: Config,
    env: str,
    rel: str,
    text: str,
    *,
    rules: EnvRules | None = None,
    identity_for: Callable[[str], Identity | None] | None = None,
    now: float | None = None,
    loaded: dict[str, SealedFile] | None = None,
) -> tuple[list[Problem], int, int]:
    """Problems of one file of environment `env`; (problems, values, values opened). Warnings
    (`Problem.warning`) are among the problems, in file order.

    Without `rules` only what needs no registry is checked: it parses, its `sealer.env` agrees with
    the path rule, nothing selected is left in plaintext (what `sealer scan` reports). `loaded`
    receives the parsed file, for resolving references without a second parse."""
    try:
        sf = load(text, rel, cfg.selector(rel))
        sf.env  # noqa: B018 - raises when documents disagree on their environment
    except SealerError as e:
        return [Problem(rel, "malformed", bare(e))], 0, 0
    if loaded is not None:
        loaded[rel] = sf
    if any(d.meta is not None for d in sf.docs) or any(leaf.sealed for _d, leaf in sf.all_leaves()):
        # What the unsealer refuses of a file it opens (aliases expanded past MAX_NODES, a scalar
        # that cannot be read as data), by its own function: the deploy must not be the first to see it.
        try:
            for d in sf.docs:
                to_python(d.root, {}, rel)
        except SealerError as e:
            return [Problem(rel, "structure", f"refused at deploy: {bare(e)}")], 0, 0
    problems: list[Problem] = []
    values = 0
    now = time.time() if now is None else now
    for doc in sf.docs:
        meta = doc.meta
        if meta is not None and meta.env != env:
            problems.append(
                Problem(
                    rel,
                    "env-mismatch",
                    f"document {doc.index} is sealed for environment {meta.env!r}, but its path rule gives {env!r}",
                    line=doc.root.start_mark.line + 1,
                )
            )
            continue
        for leaf in doc.leaves:
            where = format_path(leaf.path)
            line = leaf.node.start_mark.line + 1

            def add(code: str, message: str, where: str = where, line: int = line, warning: bool = False) -> None:
                problems.append(Problem(rel, code, message, where, line, warning))

            if not leaf.sealed:
                add("plaintext", f"not sealed: a plaintext value under environment {env}'s paths (run: sealer seal)")
                continue
            values += 1
            if meta is None:
                add("no-sealer-block", "sealed, but its document has no sealer: block (restore the file from git)")
                continue
            try:
                tok = _format.parse_token(leaf.text)
            except TokenError as e:
                add("token", bare(e))
                continue
            moved = _format.mismatches(tok, doc.context(meta.env, meta.scope, leaf.path))
            if moved:
                add("moved", f"sealed for a different {' and '.join(moved)} (moved, copied or altered; set it again)")
                continue
            wanted = {"stringData": "s", "data": "b"}.get(leaf.section or "")
            if wanted is not None and tok.vtype != wanted:
                add("wrong-type", "holds a value of the wrong type for its section (set it again)")
                continue
            if rules is not None:
                for code, message in rules.value_problems(tok, now):
                    add(code, message)
                for code, message in rules.value_warnings(tok, now):
                    add(code, message, warning=True)
    if rules is not None:
        for err in rules.signature_problems(sf, rel):
            problems.append(Problem(rel, err.code, bare(err)))
    opened = 0
    if identity_for is not None and values and not any(p.code in _STRUCTURAL for p in problems if not p.warning):
        from ._unseal import UNCHECKED, unseal_file

        try:
            opened = unseal_file(sf, identity_for, rules=UNCHECKED).values  # policy is reported above
        except SealerError as e:
            problems.append(Problem(rel, "unseal", bare(e)))
    problems.sort(key=lambda p: (p.line is None, p.line or 0))  # in file order; whole-document ones last
    return problems, values, opened


# --- an environment --------------------------------------------------------------------------------


def env_rules(cfg: Config, env: str, registry: Registry | None = None) -> EnvRules:
    return EnvRules.of(cfg.environments[env], registry or cfg.registry(env))


def registry_problems(cfg: Config, rules: EnvRules, now: float, *, has_files: bool = True) -> list[Problem]:
    """Problems of an environment as a whole: no key (when it has files), a key past its rotation
    period, a key also registered for another environment, no allowed signer where signatures are
    required."""
    reg = rules.registry
    where = f"{KEYS_DIR}/{reg.env}.yaml"
    out = []
    if has_files and not [k for k in reg.current() if k.role == "environment"]:
        out.append(
            Problem(where, "no-key", f"environment {reg.env} has no active key (sealer keys generate {reg.env})")
        )
    for k in rules.overdue_keys(now):
        out.append(
            Problem(
                where, "key-overdue", f"key {k.kid} is older than key_rotation_period (sealer keys rotate {reg.env})"
            )
        )
    try:
        reg.check_kinds()
    except ConfigError as e:
        out.append(Problem(where, "mixed-kinds", bare(e)))
    for kid, other in Repository(cfg).shared_keys(reg.env):
        out.append(
            Problem(
                where,
                "shared-key",
                f"key {kid} is also a key of environment {other!r}: values of one"
                " are readable by the other's key holders",
            )
        )
    if rules.environment.policy.require_signature and not reg.signers:
        out.append(
            Problem(
                where, "no-signer", f"{reg.env} requires signatures but lists no allowed signer (sealer signers add)"
            )
        )
    return out


def config_problems(cfg: Config) -> list[Problem]:
    """A configuration that gives nothing to check: no environment, or one without paths. Zero
    files would pass, while the controller refuses to deploy from it: CI must fail first."""
    if not cfg.environments:
        return [
            Problem(
                CONFIG_NAME,
                "no-environments",
                "defines no environment, so nothing is checked (run: sealer init --env NAME, or restore"
                " the file from git)",
            )
        ]
    return [
        Problem(CONFIG_NAME, "no-paths", f"environment {e.name} has no paths, so none of its files is checked")
        for e in cfg.environments.values()
        if not e.paths
    ]


# --- the run ---------------------------------------------------------------------------------------


def plan(cfg: Config, paths: Sequence[Path] = ()) -> tuple[list[tuple[str, str, Path]], list[Problem]]:
    """The files to check, (env, rel, file), and problems with the paths themselves."""
    if not paths:
        return list(env_yaml_files(cfg)), []
    files: dict[str, tuple[str, str, Path]] = {}
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            for env, rel, f in env_yaml_files(cfg, under=p):
                files.setdefault(rel, (env, rel, f))
            continue
        try:
            file_rel = cfg.relpath(p) or str(p)
            owner = cfg.env_for(file_rel)
        except SealerError as e:
            problems.append(Problem(str(p), "no-env", bare(e)))
            continue
        if owner is None:
            problems.append(Problem(file_rel, "no-env", "no environment's path rule covers this file"))
            continue
        files.setdefault(file_rel, (owner.name, file_rel, p))
    return sorted(files.values(), key=lambda t: t[1]), problems


def check(
    cfg: Config,
    paths: Sequence[Path] = (),
    *,
    identity_for: Callable[[str], Identity | None] | None = None,
    now: float | None = None,
    progress: Callable[[], None] | None = None,
    files: list[tuple[str, str, Path]] | None = None,
    refs: bool = True,
) -> CheckReport:
    """Check files (default: every YAML file under every environment's paths). With `refs`, also
    that every Secret key a workload of those files references is provided (`sealer._refs`)."""
    now = time.time() if now is None else now
    report = CheckReport(unsealed=0 if identity_for is not None else None)
    if files is None:
        files, report.problems = plan(cfg, paths)
    report.problems = config_problems(cfg) + report.problems
    envs = sorted({env for env, _rel, _f in files} if paths else cfg.environments)
    rules: dict[str, EnvRules] = {}
    registries: dict[str, Registry] = {}
    for name in cfg.environments:
        try:
            registries[name] = cfg.registry(name)
        except ConfigError as e:
            if name in envs:
                report.problems.append(Problem(f"{KEYS_DIR}/{name}.yaml", "registry", bare(e)))
    with_files = {env for env, _rel, _f in files}
    loaded: dict[str, SealedFile] | None = {} if refs else None
    for name in envs:
        if name in registries:
            rules[name] = env_rules(cfg, name, registries[name])
            report.problems += registry_problems(cfg, rules[name], now, has_files=name in with_files)
    for env, rel, f in files:
        report.files += 1
        try:
            text = read_text(f)
        except SealerError as e:
            report.problems.append(Problem(rel, "unreadable", bare(e)))
        else:
            problems, values, opened = check_text(
                cfg, env, rel, text, rules=rules.get(env), identity_for=identity_for, now=now, loaded=loaded
            )
            report.problems += [p for p in problems if not p.warning]
            report.warnings += [p for p in problems if p.warning]
            report.values += values
            if report.unsealed is not None:
                report.unsealed += opened
        if progress is not None:
            progress()
    if loaded is not None:
        reference_problems(cfg, sorted(with_files), {rel for _env, rel, _f in files}, loaded, report)
    return report


def reference_problems(
    cfg: Config, envs: Sequence[str], checked: set[str], loaded: dict[str, SealedFile], report: CheckReport
) -> None:
    """Each reference of a checked file's workload to a Secret or key its environment does not
    provide, as a problem; a kustomization that does not render, too; what was not seen, as notes."""
    from ._refs import env_refs

    repo = Repository(cfg)
    for env in envs:
        m = env_refs(repo, env, loaded)
        for f in m.failures:
            if f.file in checked:
                report.problems.append(Problem(f.file, f.code, f.message))
        for miss in m.problems:
            r = miss.ref
            if r.file not in checked:
                continue
            extra = {
                "env": env,
                "workload": f"{r.kind}/{r.workload}",
                "namespace": r.namespace,
                "containers": list(r.containers),
                "how": r.how,
                "secret": r.secret,
                "key": r.key,
            }
            report.problems.append(Problem(r.file, miss.code, miss.message(env), line=r.line, extra=extra))
        report.notes += m.notes


def leaks(cfg: Config, rel: str, text: str) -> list[Problem]:
    """What `sealer scan` reports of a file under an environment's paths: unparseable, sealed for
    another environment, or holding plaintext values. No registry, no keys."""
    if not is_yaml(rel):
        return []
    try:
        owner = cfg.env_for(rel)
    except ConfigError as e:
        return [Problem(rel, "config", bare(e))]
    if owner is None:
        return []
    return check_text(cfg, owner.name, rel, text)[0]


def glob_matches(patterns: Sequence[str], rel: str) -> bool:
    return any(compile_glob(p).fullmatch(rel) for p in patterns)
