"""`sealer check`: the CI gate. Needs no private key.

Every YAML file under an environment's paths must parse, be sealed for that environment (its
`sealer.env` agrees with the path rule), leave no selected value in plaintext, name only the
environment's current keys, and respect its policy: secret age, `not_before`, signatures. With
identities it also proves that every value opens. Each problem is one finding naming the file and,
where there is one, the value's path; nothing stops at the first problem, so one CI run lists them all.

Only what the checks need is imported: no gitpython, and pynacl only when a document is signed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _envelope as envelope
from ._config import KEYS_DIR, Config, Environment, glob_to_regex
from ._document import load
from ._fsio import read_text
from ._valuepath import format_path
from .errors import ConfigError, SealerError, TokenError

if TYPE_CHECKING:
    from ._keys import Identity
    from ._registry import Registry
    from ._signing import SignaturePolicy

YAML_SUFFIXES = (".yaml", ".yml")
_STRUCTURAL = frozenset({"malformed", "env-mismatch", "no-sealer-block", "token", "moved", "wrong-type"})


@dataclass
class Problem:
    """One finding: `FILE: PATH: message` (the path of the value when there is one)."""

    file: str
    code: str
    message: str
    path: str | None = None
    line: int | None = None

    def render(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "path": self.path, "line": self.line, "code": self.code, "message": self.message}


@dataclass
class CheckReport:
    files: int = 0
    values: int = 0
    unsealed: int | None = None  # values proven to open (with identities), else None
    problems: list[Problem] = field(default_factory=list)

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
        }


@dataclass
class EnvRules:
    """What one environment accepts, read once per run from .sealer.yaml and keys/ENV.yaml."""

    env: Environment
    registry: Registry
    signatures: SignaturePolicy

    @property
    def current(self) -> tuple[str, ...]:
        return self.registry.current_kids()


def bare(err: SealerError) -> str:
    """An error's message without its `FILE: ` prefix (the Problem names the file)."""
    text = str(err)
    return text[len(err.file) + 2 :] if err.file and text.startswith(f"{err.file}: ") else text


# --- which files -----------------------------------------------------------------------------------


def _prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: where to start walking."""
    parts = []
    for seg in pattern.split("/")[:-1]:
        if any(c in seg for c in "*?["):
            break
        parts.append(seg)
    return "/".join(parts)


def _walk(top: Path) -> Iterator[Path]:
    """Regular files below `top`, hidden ones included (a `.env.yaml` leaks like any other); never
    into `.git`, never through symlinks."""
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if not p.is_symlink() and p.is_file():
                yield p


def env_yaml_files(
    cfg: Config, envs: Sequence[str] | None = None, under: Path | None = None
) -> Iterator[tuple[str, str, Path]]:
    """(env, repo-relative path, file) for every YAML file under the environments' path rules."""
    wanted = set(envs) if envs is not None else set(cfg.environments)
    starts: set[Path] = set()
    for name in wanted:
        for pattern in cfg.environments[name].paths:
            starts.add(cfg.root / _prefix(pattern))
    if under is not None:
        u = under.resolve()
        starts = {
            u if u.is_relative_to(s.resolve()) else s
            for s in starts
            if u.is_relative_to(s.resolve()) or s.resolve().is_relative_to(u)
        }
    seen: set[Path] = set()
    for start in sorted(starts):
        if not start.exists():
            continue
        for f in _walk(start):
            if f in seen or f.suffix not in YAML_SUFFIXES:
                continue
            seen.add(f)
            rel = f.relative_to(cfg.root).as_posix()
            owner = cfg.env_for(rel)
            if owner is not None and owner.name in wanted:
                yield owner.name, rel, f


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
) -> tuple[list[Problem], int, int]:
    """Problems of one file of environment `env`; (problems, values, values opened).

    Without `rules` only what needs no registry is checked: it parses, its `sealer.env` agrees with
    the path rule, nothing selected is left in plaintext (what `sealer scan` reports)."""
    rule = cfg.rule_for(rel)
    try:
        sf = load(text, rel, rule.selects if rule else None)
        sf.env  # noqa: B018 - raises when documents disagree on their environment
    except SealerError as e:
        return [Problem(rel, "malformed", bare(e))], 0, 0
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

            def add(code: str, message: str, where: str = where, line: int = line) -> None:
                problems.append(Problem(rel, code, message, where, line))

            if not leaf.sealed:
                add("plaintext", f"not sealed: a plaintext value under environment {env}'s paths (run: sealer seal)")
                continue
            values += 1
            if meta is None:
                add("no-sealer-block", "sealed, but its document has no sealer: block (restore the file from git)")
                continue
            try:
                tok = envelope.parse_token(leaf.text)
            except TokenError as e:
                add("token", bare(e))
                continue
            moved = envelope.mismatches(tok, doc.context(meta.env, meta.scope, leaf.path))
            if moved:
                add("moved", f"sealed for a different {' and '.join(moved)} (moved, copied or altered; set it again)")
                continue
            wanted = {"stringData": "s", "data": "b"}.get(leaf.section or "")
            if wanted is not None and tok.vtype != wanted:
                add("wrong-type", "holds a value of the wrong type for its section (set it again)")
                continue
            if rules is not None:
                _value_policy(rules, tok, now, add)
    if rules is not None:
        for err in rules.signatures.problems(sf):
            problems.append(Problem(rel, err.code, bare(err)))
    opened = 0
    if identity_for is not None and values and not any(p.code in _STRUCTURAL for p in problems):
        from ._unseal import unseal_file

        try:
            opened = unseal_file(sf, identity_for, env=env, structured=True).values
        except SealerError as e:
            problems.append(Problem(rel, "unseal", bare(e)))
    problems.sort(key=lambda p: (p.line is None, p.line or 0))  # in file order; whole-document ones last
    return problems, values, opened


def _value_policy(rules: EnvRules, tok: envelope.Token, now: float, add: Callable[[str, str], None]) -> None:
    reg, policy = rules.registry, rules.env.policy
    current = rules.current
    extra = [k for k in tok.kids if k not in current]
    missing = [k for k in current if k not in tok.kids]
    if extra:
        records = {k: reg.find(k) for k in extra}
        states = ", ".join(f"{k} ({r.state if r else 'not in the registry'})" for k, r in records.items())
        add("stale-key", f"sealed to {states}, not only to the current keys (run: sealer reseal --env {reg.env})")
    elif missing:
        add("missing-key", f"not sealed to current key {', '.join(missing)} (run: sealer reseal --env {reg.env})")
    nb = reg.not_before_ts()
    if nb is not None and tok.sealed_at < nb:
        add("revoked", f"sealed before {reg.env}'s not_before: revoked, set a fresh value")
    elif policy.max_secret_age is not None and now - tok.sealed_at > policy.max_secret_age:
        days = (now - tok.sealed_at) / 86400
        limit = policy.max_secret_age / 86400
        add("too-old", f"sealed {days:.0f} days ago, older than max_secret_age ({limit:g} days): set a fresh value")


# --- an environment --------------------------------------------------------------------------------


def env_rules(cfg: Config, env: str, registry: Registry | None = None) -> EnvRules:
    from ._signing import SignaturePolicy

    reg = registry or cfg.registry(env)
    return EnvRules(cfg.environments[env], reg, SignaturePolicy.of(reg, cfg.environments[env].policy))


def registry_problems(
    rules: EnvRules, registries: dict[str, Registry], now: float, *, has_files: bool = True
) -> list[Problem]:
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
    period = rules.env.policy.key_rotation_period
    for k in reg.current():
        if period is not None and k.role == "environment" and now - k.created.timestamp() > period:
            out.append(
                Problem(
                    where,
                    "key-overdue",
                    f"key {k.kid} is older than key_rotation_period (sealer keys rotate {reg.env})",
                )
            )
    for other, oreg in registries.items():
        if other == reg.env:
            continue
        for k in reg.keys:
            theirs = oreg.find(k.kid)
            if theirs is not None and not (k.role == "recovery" and theirs.role == "recovery"):
                out.append(
                    Problem(
                        where,
                        "shared-key",
                        f"key {k.kid} is also a key of environment {other!r}: values of one"
                        " are readable by the other's key holders",
                    )
                )
    if rules.env.policy.require_signature and not reg.signers:
        out.append(
            Problem(
                where, "no-signer", f"{reg.env} requires signatures but lists no allowed signer (sealer signers add)"
            )
        )
    return out


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
) -> CheckReport:
    """Check files (default: every YAML file under every environment's paths)."""
    now = time.time() if now is None else now
    report = CheckReport(unsealed=0 if identity_for is not None else None)
    if files is None:
        files, report.problems = plan(cfg, paths)
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
    for name in envs:
        if name in registries:
            rules[name] = env_rules(cfg, name, registries[name])
            report.problems += registry_problems(rules[name], registries, now, has_files=name in with_files)
    for env, rel, f in files:
        report.files += 1
        try:
            text = read_text(f)
        except SealerError as e:
            report.problems.append(Problem(rel, "unreadable", bare(e)))
        else:
            problems, values, opened = check_text(
                cfg, env, rel, text, rules=rules.get(env), identity_for=identity_for, now=now
            )
            report.problems += problems
            report.values += values
            if report.unsealed is not None:
                report.unsealed += opened
        if progress is not None:
            progress()
    return report


def leaks(cfg: Config, rel: str, text: str) -> list[Problem]:
    """What `sealer scan` reports of a file under an environment's paths: unparseable, sealed for
    another environment, or holding plaintext values. No registry, no keys."""
    if not rel.endswith(YAML_SUFFIXES):
        return []
    try:
        owner = cfg.env_for(rel)
    except ConfigError as e:
        return [Problem(rel, "config", bare(e))]
    if owner is None:
        return []
    return check_text(cfg, owner.name, rel, text)[0]


def glob_matches(patterns: Sequence[str], rel: str) -> bool:
    return any(glob_to_regex(p).fullmatch(rel) for p in patterns)
