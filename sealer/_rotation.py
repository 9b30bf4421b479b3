"""Re-sealing a repository to its environments' current keys: plan, parallel, atomic, resumable.

Only tokens change: each stale token is opened and sealed again in place, with its original seal
time and expiry (the age of a secret is the age of its content, not of its key; an expired value
stays expired), and nothing else in the file is rewritten. Files are replaced atomically one by
one, so a run killed at any point leaves each file old or new, and running again finishes the job
(already-current tokens are skipped). With
`--commit`, each file is recorded in a journal before it is replaced (`Journal`), so the re-run's
commit also holds the files the killed run re-sealed.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _envelope as envelope
from . import _format
from ._config import Config
from ._format.valuepath import format_path
from ._fsio import atomic_write, fsync_dir, locked, read_text
from ._keys import Identity, Recipient, parse_identity, parse_recipient
from ._locator import Located, locate
from ._repository import EnvRules, Repository, list_tree
from .errors import EnvironmentMismatch, IdentityError, Refused, SealerError, UnsealError, UsageError

if TYPE_CHECKING:
    from ._reseal_commit import Journal
    from ._signing import SignerKey


@dataclass
class FilePlan:
    """One file with values sealed to other keys than its environment's current ones."""

    path: Path
    rel: str
    env: str
    stale: int
    moves: Counter[tuple[tuple[str, ...], tuple[str, ...]]]  # (from kids, to kids) -> values


@dataclass
class Plan:
    files: list[FilePlan]
    current: dict[str, tuple[str, ...]]  # env -> current kids
    values_total: int = 0
    scope: dict[str, str] = field(default_factory=dict)  # rel -> env of every file the plan looked at

    @property
    def stale(self) -> int:
        return sum(f.stale for f in self.files)

    def old_kids(self) -> set[str]:
        return {kid for f in self.files for (old, _new) in f.moves for kid in old}

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "file": f.rel,
                    "env": f.env,
                    "values": f.stale,
                    "moves": [{"from": list(o), "to": list(n), "values": c} for (o, n), c in f.moves.items()],
                }
                for f in self.files
            ],
            "stale_values": self.stale,
            "values_total": self.values_total,
        }


def env_files(cfg: Config, envs: Iterable[str], under: Sequence[Path] = ()) -> Iterator[tuple[str, Path]]:
    """(env, file) for every file of the environments, by the repository's one file rule."""
    repo = Repository(cfg)
    for f in repo.files(envs, under):
        yield f.env, repo.path(f)


def make_plan(cfg: Config, paths: Sequence[Path] = (), env: str | None = None) -> Plan:
    """What a reseal would do. Reads only token headers: no private key, no YAML parse."""
    envs = [env] if env else list(cfg.environments)
    current = {e: cfg.registry(e).current_kids() for e in envs}
    if paths:
        repo = Repository(cfg)
        chosen: dict[str, tuple[str, Path]] = {}
        for p in paths:
            if p.is_dir() and not p.is_symlink():
                found = repo.files(envs, [p])
            else:  # a named file as it is, so the file rule sees a link as a link (and refuses it)
                if not p.is_symlink():
                    cfg.relpath(p)  # outside the repository: refused, naming the file
                top = cfg.root / (cfg.relpath(p.absolute().parent) or ".") / p.name
                found = repo.select(list_tree(cfg.root, top), envs)
            for ef in found:
                chosen.setdefault(ef.rel, (ef.env, repo.path(ef)))
        candidates = list(chosen.values())
    else:
        candidates = list(env_files(cfg, envs))
    plan = Plan([], current)
    for e, f in candidates:
        plan.scope[cfg.relpath(f) or str(f)] = e
        text = read_text(f)
        moves: Counter[tuple[tuple[str, ...], tuple[str, ...]]] = Counter()
        for _start, _end, kid_list in _format.find_tokens(text):
            plan.values_total += 1
            kids = tuple(kid_list.split("+"))
            if kids != current[e]:
                moves[(kids, current[e])] += 1
        if moves:
            plan.files.append(FilePlan(f, cfg.relpath(f) or str(f), e, sum(moves.values()), moves))
    return plan


@dataclass
class FileResult:
    rel: str
    resealed: int = 0
    moves: Counter[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=Counter)
    error: str | None = None
    changed_on_disk: bool = False


@dataclass
class Summary:
    files: int
    values: int
    seconds: float
    by_kid: dict[str, int]  # old kid -> values moved off it (kids a value keeps are not counted)
    results: list[FileResult]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error or r.changed_on_disk]

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "values": self.values,
            "seconds": round(self.seconds, 3),
            "by_kid": self.by_kid,
            "failed": [{"file": r.rel, "error": r.error or "changed during reseal; left alone"} for r in self.failed],
        }


# --- the work, in worker processes --------------------------------------------------------------

# Set in the parent before the pool forks, so private keys reach workers by inheritance, never
# through argv, pipes or files. With the spawn start method they travel once, in the initializer.
_IDENTITIES: dict[str, Identity] = {}
_RECIPIENTS: dict[str, list[Recipient]] = {}
_RULES: dict[str, EnvRules] = {}  # env -> its rules: which kids may be opened, not_before
_SIGNING: dict[str, Any] = {}  # env -> _signing.Signing (the signer key travels like the identities)


def _init_worker(
    identities: list[str],
    recipients: dict[str, list[str]],
    rules: dict[str, EnvRules],
    signing: tuple[str | None, dict[str, Any]] | None = None,
) -> None:
    global _IDENTITIES, _RECIPIENTS, _RULES, _SIGNING
    if identities:
        _IDENTITIES = {i.kid: i for i in map(parse_identity, identities)}
        _RECIPIENTS = {e: [parse_recipient(r) for r in rs] for e, rs in recipients.items()}
        _RULES = rules
    if signing is not None:
        import dataclasses

        from ._signing import parse_signer_secret

        secret, templates = signing  # env -> its Signing, without the key
        key = parse_signer_secret(secret) if secret else None
        _SIGNING = {e: dataclasses.replace(t, key=key) for e, t in templates.items()}


_TEMP_NAME = re.compile(r"\.(.+)\.[0-9a-f]{12}\.tmp")  # atomic_write's temp file of NAME: .NAME.<12 hex>.tmp


def remove_stray_temp_files(files: Iterable[Path], older_than: float = 60.0) -> None:
    """Remove the temp files of writers killed between create and rename (atomic_write's names),
    in the directories of `files`. They hold sealed text only, but litter `git status`. A temp file
    of one of `files` goes at once, under that file's lock: every writer of a sealed file (seal,
    set, reseal) holds it while its temp file exists, so none is live. Any other goes only once it
    is older than `older_than` seconds: its writer may not lock."""
    mine = {f.resolve() for f in files}
    now = time.time()
    for d in {f.parent for f in mine}:
        try:
            entries = list(d.iterdir())
        except OSError:
            continue
        for tmp in entries:
            m = _TEMP_NAME.fullmatch(tmp.name)
            if m is None:
                continue
            target = d / m.group(1)
            with contextlib.suppress(OSError):
                if target in mine:
                    with locked(target):
                        tmp.unlink()
                elif now - tmp.lstat().st_mtime > older_than:
                    tmp.unlink()


def _reseal_tokens(
    located: list[Located],
    env: str,
    rel: str,
    recipients: list[Recipient],
    current: tuple[str, ...],
    result: FileResult,
) -> list[tuple[Located, str]]:
    edits: list[tuple[Located, str]] = []
    for loc in located:
        tok = loc.token
        if tok.kids == current:
            continue
        if loc.ctx.env != env:
            raise EnvironmentMismatch(f"is sealed for environment {loc.ctx.env!r}, but belongs to {env!r}", file=rel)
        # The environment's rules decide what may be opened (no retired key, nothing revoked),
        # as for unseal: a reseal must not launder a value that deploy tooling would refuse.
        lookup = _RULES[env].lookup(tok, loc.ctx.path, rel, _IDENTITIES.get)
        plain = envelope.unseal(tok, loc.ctx, lookup, where=rel)
        # Its expiry goes with it: re-sealing to new keys neither renews nor ends a value's life.
        new = envelope.seal(tok.vtype, plain, loc.ctx, recipients, sealed_at=tok.sealed_at, expires_at=tok.expires_at)
        edits.append((loc, new))
        result.moves[(tok.kids, current)] += 1
    return edits


def reseal_file(job: tuple[str, ...]) -> FileResult:
    """Re-seal one file's stale tokens in place. Never raises: errors come back in the result.
    A job is (path, rel, env[, journal, path in git]): with a journal, the file is recorded there
    before it is replaced, so a resumed `reseal --commit` commits it even if this run is killed."""
    path, rel, env = job[:3]
    journal, git_path = job[3:5] if len(job) == 5 else ("", "")
    result = FileResult(rel)
    try:
        text = read_text(path)
        recipients = _RECIPIENTS[env]
        current = tuple(r.kid for r in recipients)
        try:
            edits = _reseal_tokens(locate(text, rel), env, rel, recipients, current, result)
        except UnsealError:
            # The fast locator may have guessed a context that passed the 2-byte hint check and still
            # was wrong: ask the full YAML reader before calling the file broken.
            result.moves.clear()
            edits = _reseal_tokens(locate(text, rel, fast=False), env, rel, recipients, current, result)
        if not edits:
            return result
        out = []
        pos = 0
        for loc, new in sorted(edits, key=lambda e: e[0].start):
            out.append(text[pos : loc.start])
            out.append(new)
            pos = loc.end
        out.append(text[pos:])
        new_text = "".join(out)
        signing = _SIGNING.get(env)
        if (signing is not None and signing.key is not None) or "signature:" in text:
            from ._signing import resign

            # fresh=False: these tokens hold the old ones' values, vouched for only by a valid signature
            new_text = resign(text, new_text, rel, env=env, signing=signing, fresh=False, path=rel)[0]
        with locked(path):
            if read_text(path) != text:
                result.changed_on_disk = True
                result.moves.clear()
                return result
            data = new_text.encode()
            if journal:
                from ._reseal_commit import journal_append

                journal_append(journal, git_path, data, result.moves)
            atomic_write(path, data, sync_dir=False)  # reseal() fsyncs each directory once
        result.resealed = len(edits)
    except SealerError as e:
        result.error = str(e)
        result.moves.clear()
    return result


def reseal(
    cfg: Config,
    plan: Plan,
    identity_for: Callable[[str], Identity | None],
    *,
    workers: int | None = None,
    progress: Callable[[FileResult], None] | None = None,
    sign_with: SignerKey | None = None,
    drop_signature: bool = False,
    journal: Journal | None = None,
) -> Summary:
    """Carry out a plan in parallel. Refuses up front when a stale value has no identity we hold,
    and, without `sign_with` or `drop_signature`, when a file to re-seal holds signed documents
    (re-sealing changes their tokens, so their signatures would go stale). With a `journal`
    (`reseal --commit`), each file is recorded there before it is replaced."""
    import dataclasses

    from ._signing import refuse_unvouched, signing_for

    _check_identities(plan, identity_for)
    started = time.perf_counter()
    envs = {f.env for f in plan.files}
    regs = {e: cfg.registry(e) for e in envs}
    signings = {e: signing_for(cfg, e, sign_with, drop=drop_signature) for e in sorted(envs)}
    if sign_with is None and not drop_signature:
        _refuse_signed(plan)
    elif sign_with is not None:  # a tampered or someone else's document: refused before any file is written
        refuse_unvouched([(str(f.path), f.rel, signings[f.env], f.env) for f in plan.files])
    remove_stray_temp_files([cfg.root / rel for rel in plan.scope] or [f.path for f in plan.files])
    templates = {e: dataclasses.replace(s, key=None) for e, s in signings.items()}  # the key travels as text
    signing = (sign_with.encode() if sign_with else None, templates)
    ids = [i for i in map(identity_for, sorted(plan.old_kids())) if i is not None]
    jobs = [
        (str(f.path), f.rel, f.env, *((str(journal.path), journal.git_path(f.path)) if journal else ("", "")))
        for f in plan.files
    ]
    recipients = {e: [r.encode() for r in regs[e].recipients()] for e in envs}
    repo = Repository(cfg, regs)
    rules = {e: repo.rules(e) for e in envs}
    results: list[FileResult] = []
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) < 8:
        _init_worker([i.encode() for i in ids], recipients, rules, signing)
        for job in jobs:
            results.append(reseal_file(job))
            if progress:
                progress(results[-1])
    else:
        from ._pool import start_method, worker_pool

        initargs: tuple[Any, ...] = ([i.encode() for i in ids], recipients, rules, signing)
        if start_method("fork") == "fork":  # the workers inherit the keys: nothing to send them
            _init_worker(*initargs)
            initargs = ([], {}, {}, None)
        chunk = max(1, min(64, len(jobs) // (workers * 8) or 1))
        with worker_pool(workers, _init_worker, initargs, start="fork") as pool:
            for r in pool.map(reseal_file, jobs, chunksize=chunk):
                results.append(r)
                if progress:
                    progress(r)
    for directory in {Path(j[0]).parent for j, r in zip(jobs, results, strict=True) if r.resealed}:
        fsync_dir(directory)
    by_kid: Counter[str] = Counter()
    for r in results:
        for (old, new), n in r.moves.items():
            for kid in old:
                if kid not in new:  # a key the value keeps (a recovery key) is not moved off
                    by_kid[kid] += n
    done = [r for r in results if r.resealed]
    return Summary(len(done), sum(r.resealed for r in done), time.perf_counter() - started, dict(by_kid), results)


def _refuse_signed(plan: Plan) -> None:
    from ._document import load

    signed = []
    for f in plan.files:
        text = read_text(f.path)
        if "signature:" in text and any(d.meta and d.meta.signature for d in load(text, f.rel).docs):
            signed.append(f.rel)
    if signed:
        more = f" and {len(signed) - 3} more" if len(signed) > 3 else ""
        raise UsageError(
            f"{len(signed)} file(s) to re-seal hold signed documents ({', '.join(signed[:3])}{more});"
            " re-sealing would invalidate their signatures",
            hint="pass --sign-with KEY to sign them again, or --drop-signature to remove the signatures",
        )


def _check_identities(plan: Plan, identity_for: Callable[[str], Identity | None]) -> None:
    def held(kid: str) -> bool:
        try:
            return identity_for(kid) is not None
        except IdentityError:  # no identity source at all: report the kid and files, below
            return False

    missing: dict[str, set[str]] = {}
    for f in plan.files:
        for old, _new in f.moves:
            if not any(held(k) for k in old):
                for k in old:
                    missing.setdefault(k, set()).add(f.rel)
    if missing:
        kid, files = next(iter(missing.items()))
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        others = f"; also missing: {', '.join(k for k in missing if k != kid)}" if len(missing) > 1 else ""
        raise IdentityError(
            f"no identity for old key {kid}, needed by {', '.join(sorted(set(files))[:3])}{more}{others}",
            hint="pass --identity with that key's private key",
        )


def values_naming(cfg: Config, env: str, kid: str) -> list[tuple[str, str, bool]]:
    """Every value of `env` sealed to `kid`: (file, value path, sealed to that key only?)."""
    out = []
    for _e, path in env_files(cfg, [env]):
        text = read_text(path)
        if kid not in text:
            continue
        rel = path.relative_to(cfg.root).as_posix()
        for loc in locate(text, rel):
            kids = _format.parse_token(loc.text).kids
            if kid in kids:
                out.append((rel, format_path(loc.ctx.path), kids == (kid,)))
    return out


def retire(cfg: Config, env: str, kid: str, *, force: bool = False) -> list[tuple[str, str, bool]]:
    """Mark a key retired. Refuses while values still name it (listing them), unless forced; returns
    the values that named it (those sealed to it alone become unreadable)."""
    from ._registry import set_state

    cfg.registry(env).require(kid)
    using = values_naming(cfg, env, kid)
    if using and not force:
        shown = "; ".join(f"{f} {p}" for f, p, _only in using[:10])
        more = f" and {len(using) - 10} more" if len(using) > 10 else ""
        raise Refused(
            f"key {kid} of {env} still seals {len(using)} value(s): {shown}{more}",
            hint=f"run sealer reseal --env {env} first, or pass --force",
        )
    set_state(cfg.root, env, kid, "retired")
    return using
