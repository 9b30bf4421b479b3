"""The opening side: unseal a sealed file into its plaintext, in memory. Needs private keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import _envelope as envelope
from . import _format
from ._config import Config
from ._document import (
    SealedFile,
    apply_edits,
    load,
    remove_meta,
    render_scalar,
    replace_scalar,
    to_python,
)
from ._format.valuepath import format_path
from ._fsio import read_text
from ._keys import Identity
from ._repository import EnvRules, Repository, expiry_unchecked, is_yaml, list_tree
from .errors import EnvironmentMismatch, InputError, UnsafePath, UsageError


class Unchecked:
    """Pass `rules=UNCHECKED` to open values without an environment's rules (retired keys,
    `not_before`, signatures): for files outside any repository, and tests of the format."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED = Unchecked()


@dataclass
class UnsealedDoc:
    index: int
    kind: str | None
    name: str
    is_manifest: bool
    content: Any  # the plaintext document as Python data (dicts, lists, scalars)


@dataclass
class Unsealed:
    """A file's plaintext: `text` keeps the original layout (sealer: blocks removed)."""

    source: str
    env: str | None
    text: str
    docs: list[UnsealedDoc]
    values: int
    kids: tuple[str, ...] = ()  # every key id the file's values are sealed to (for the audit log)
    warnings: list[str] = field(default_factory=list)  # expired values opened (on_expiry: warn), one line each
    path: str | None = None  # repository-relative path (what signatures cover), when known


def unseal_file(
    sf: SealedFile,
    identity_for: Callable[[str], Identity | None],
    *,
    rules: EnvRules | Unchecked,
    env: str | None = None,
    structured: bool = True,
    path: str | None = None,
    now: float | None = None,
) -> Unsealed:
    """Open every token. Fails on the first value that does not open; nothing partial is returned.

    `rules` is required: an environment's rules (`Repository.rules(env)`) refuse a file of another
    environment, a signature that does not hold (or is missing where required), values sealed
    only to retired keys and values sealed before `not_before`, all before a value is opened.
    `UNCHECKED` skips them, and `env` then only checks the file's own claim. `path` is the
    file's repository-relative path, which signatures cover (default: `sf.source`).

    Each value's expiry is judged once it has opened (so it is authentic), at `now` (default: the
    clock): an expired value is refused (`Expired`), or under `on_expiry: warn`, and always with
    `UNCHECKED`, opened with a line in `warnings`.
    """
    file_env = sf.env
    if isinstance(rules, EnvRules):
        rules.admit(sf, path)
        env = rules.name
    elif env is not None and file_env is not None and file_env != env:
        raise EnvironmentMismatch(f"is sealed for environment {file_env!r}, not {env!r}", file=sf.source)
    edits = []
    kids: set[str] = set()
    warnings: list[str] = []
    opened: dict[int, tuple[str, bytes, str | None]] = {}  # id(node) -> plaintext, for the structured view
    for doc, leaf in sf.all_leaves():
        if not leaf.sealed:
            continue
        if doc.meta is None:
            raise InputError(
                f"document {doc.index} has sealed values but no sealer: block",
                file=sf.source,
                hint="restore the file from git",
            )
        tok = leaf.token(sf.source)
        ctx = doc.context(doc.meta.env, doc.meta.scope, leaf.path)
        lookup = rules.lookup(tok, leaf.path, sf.source, identity_for) if isinstance(rules, EnvRules) else identity_for
        data = envelope.unseal(tok, ctx, lookup, where=sf.source)
        if tok.expires_at is not None:
            if isinstance(rules, EnvRules):
                late = rules.opened(tok, leaf.path, sf.source, now)
            else:
                late = expiry_unchecked(tok, leaf.path, sf.source, now)
            if late is not None:
                warnings.append(late)
        wanted = {"stringData": "s", "data": "b"}.get(leaf.section or "")
        if wanted is not None and tok.vtype != wanted:
            raise InputError(
                f"{format_path(leaf.path)} holds a value of the wrong type for its section", file=sf.source
            )
        rendered = render_scalar(tok.vtype, data, section=leaf.section)
        edits.append(replace_scalar(sf.text, leaf.node, rendered, in_flow=leaf.in_flow, quote_ok=False))
        opened[id(leaf.node)] = (tok.vtype, data, leaf.section)
        kids.update(tok.kids)
    for doc in sf.docs:
        m = remove_meta(sf.text, doc)
        if m is not None:
            edits.append(m)
    text = apply_edits(sf.text, edits)
    docs = (
        [UnsealedDoc(d.index, d.kind, d.name, d.is_manifest, to_python(d.root, opened, sf.source)) for d in sf.docs]
        if structured
        else []
    )
    return Unsealed(sf.source, file_env, text, docs, len(opened), tuple(sorted(kids)), warnings, path)


STDIN = Path("-")  # a path of "-": one sealed file read from standard input
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class _Planned:
    file: Path  # as the caller named it (or below the directory it named); STDIN for standard input
    explicit: bool  # named itself, not found in a directory
    rules: EnvRules | Unchecked | None  # None: no path rule and no --env; the file's own claim decides
    rel: str | None  # repository-relative path (signatures cover it); None outside a repository
    repo: Repository | None


def _plan(paths: Sequence[Path], env: str | None, checked: bool) -> Iterator[_Planned]:
    """Each named file and each file of each named directory, with the rules it opens under.

    Inside a repository the repository decides which files a directory holds and whose rules
    apply (the path rule's environment, else `--env`, else the file's own claim), always. Outside
    one there are no rules to apply, so opening such a file takes an explicit `checked=False`.

    Standard input (`-`) has no path, so no path rule: it takes `env`, and that environment's
    rules in the repository of the current directory; outside one, the same refusal as a file."""
    repos: dict[Path, Repository] = {}
    if list(paths).count(STDIN) > 1:
        raise UsageError("stdin (-) is named twice; it holds one file", hint="name - once")
    for p in paths:
        if p == STDIN:
            if env is None:
                raise UsageError(
                    "a sealed file on stdin has no path, so no path rule says whose rules apply",
                    file=STDIN_NAME,
                    hint="name its environment: sealer unseal - --env ENV",
                )
            repo = _repository_of(Path.cwd(), repos)
            if repo is None:
                _outside(STDIN_NAME, checked)
                yield _Planned(p, True, UNCHECKED, None, None)
            else:
                yield _Planned(p, True, repo.rules(env), None, repo)
            continue
        repo = _repository_of(p, repos)
        if repo is None:
            _outside(str(p), checked)
            if not p.is_dir():
                yield _Planned(p, True, UNCHECKED, None, None)
                continue
            for entry in list_tree(p):
                if entry.kind == "file" and is_yaml(entry.rel):
                    yield _Planned(p / entry.rel, False, UNCHECKED, None, None)
            continue
        if p.is_dir():
            top = repo.config.relpath(p)
            for f in repo.files([env] if env else None, [p]):
                shown = p / PurePosixPath(f.rel).relative_to(top) if top not in (None, ".") else p / f.rel
                yield _Planned(shown, False, repo.rules(f.env), f.rel, repo)
            continue
        if p.is_symlink():
            raise UnsafePath("is a symbolic link; sealer does not follow it", file=str(p), hint="name the file itself")
        rel = repo.config.relpath(p, env=env)
        # --env must agree with the path rule; without it the path rule decides, else the file's claim.
        owner = repo.config.resolve_env(rel, env) if env is not None else repo.owner_of(rel) if rel else None
        yield _Planned(p, True, repo.rules(owner) if owner else None, rel, repo)


def _outside(source: str, checked: bool) -> None:
    """A file outside any repository has no environment rules: refused unless `checked=False`."""
    if checked:
        raise InputError(
            "is not inside a sealer repository, so its environment's rules (retired keys,"
            " not_before, signatures) cannot be applied",
            file=source,
            hint="unseal it from the repository's checkout, or pass --no-rules to open it anyway",
        )


def _repository_of(p: Path, cache: dict[Path, Repository]) -> Repository | None:
    from ._config import find_root

    root = find_root(p.parent if p.is_symlink() else p)  # a link is where it is, not where it leads
    if root is None:
        return None
    if root not in cache:
        cache[root] = Repository(Config.load(root))
    return cache[root]


def unseal_paths(
    paths: Sequence[Path],
    identity_for: Callable[[str], Identity | None],
    *,
    env: str | None = None,
    structured: bool = True,
    checked: bool = True,
    now: float | None = None,
) -> tuple[list[Unsealed], list[str]]:
    """Unseal files and directories, all or nothing; returns the files and notes on what was skipped.

    Every file is opened under its environment's rules (see `_plan`). In directories, files
    without sealed documents (plain manifests) are left out, and with `env` only that
    environment's files are read: a deploy job can point at the whole tree.
    """
    planned = [(i, _read_stdin() if i.file == STDIN else read_text(i.file)) for i in _plan(paths, env, checked)]
    todo = [(i, t) for i, t in planned if i.explicit or _format.mentions_tokens(t) or "sealer:" in t]
    out: list[Unsealed] = []
    notes: list[str] = []
    for result in _open_all(todo, identity_for, env, structured, now):
        if isinstance(result, BaseException):
            raise result  # the first failure in the order the files were named: all or nothing
        if isinstance(result, str):
            notes.append(result)
        elif result is not None:
            out.append(result)
    if not out:
        raise InputError(f"no sealed files found in {', '.join(map(str, paths))}")
    return out, notes


def _open_planned(
    item: _Planned,
    text: str,
    identity_for: Callable[[str], Identity | None],
    env: str | None,
    structured: bool,
    now: float | None,
) -> Unsealed | str | None:
    """One planned file: its plaintext, a note saying why it was skipped, or None (nothing sealed)."""
    f, rules = item.file, item.rules
    sf = load(text, STDIN_NAME if f == STDIN else str(f))
    file_env = sf.env
    if not item.explicit and rules is UNCHECKED and (file_env is None or (env is not None and file_env != env)):
        return f"{f}: sealed for {file_env}, not {env}; skipped" if file_env is not None else None
    if rules is None:
        if file_env is None or item.repo is None:
            raise InputError(
                "no environment's path rule covers this file, and it names no environment",
                file=str(f),
                hint="pass --env, or add the path to an environment in .sealer.yaml",
            )
        rules = item.repo.rules(file_env)
    return unseal_file(sf, identity_for, rules=rules, env=env, structured=structured, path=item.rel, now=now)


# Below this many files one process is faster: a pool costs its imports and a fork per worker.
PARALLEL_FILES = 48
_JOB: tuple[list[tuple[_Planned, str]], Callable[[str], Identity | None], str | None, bool, float | None] | None = None


def _open_all(
    todo: list[tuple[_Planned, str]],
    identity_for: Callable[[str], Identity | None],
    env: str | None,
    structured: bool,
    now: float | None,
) -> Iterator[Unsealed | str | BaseException | None]:
    """Each file's result, in order. Parsing is most of the work, so many files are shared out
    among forked workers, one per core: they inherit the identities and the plan (nothing is
    pickled on the way in, and no key leaves the process tree), and send back only results.
    A program with threads opens them in-process: forking one is unsafe."""
    import os
    import threading

    workers = min(os.cpu_count() or 1, len(todo) // (PARALLEL_FILES // 2))
    if workers < 2 or len(todo) < PARALLEL_FILES or threading.active_count() > 1:
        for item, text in todo:
            try:
                yield _open_planned(item, text, identity_for, env, structured, now)
            except Exception as e:
                yield e
        return
    global _JOB
    from ._pool import worker_pool

    _JOB = (todo, identity_for, env, structured, now)
    try:
        with worker_pool(workers, start="fork") as pool:
            yield from pool.map(_open_nth, range(len(todo)), chunksize=max(1, len(todo) // (workers * 4)))
    finally:
        _JOB = None


def _open_nth(n: int) -> Unsealed | str | BaseException | None:
    """In a forked worker: the n-th file of the inherited job. A failure comes back as a value."""
    assert _JOB is not None
    todo, identity_for, env, structured, now = _JOB
    item, text = todo[n]
    try:
        return _open_planned(item, text, identity_for, env, structured, now)
    except Exception as e:
        return e


def _read_stdin() -> str:
    import sys

    from ._fsio import MAX_FILE_BYTES, decode_text

    text = decode_text(sys.stdin.buffer.read(MAX_FILE_BYTES + 1), STDIN_NAME)
    if not text.strip():
        raise InputError("is empty: no sealed file came in", file=STDIN_NAME, hint="sealer unseal - --env ENV < FILE")
    return text
