"""`reseal --commit`: one git commit of every file the operation moved, across interruptions.

A reseal killed between writing files and committing them leaves files that are re-sealed but
not committed, and no longer in the next plan. Each file is recorded in a journal in the git
directory just before it is replaced, so the re-run's commit holds every file the operation moved.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import Config
from ._fsio import atomic_write
from ._rotation import FilePlan, Plan, Summary, remove_stray_temp_files
from .errors import InputError, SealerError

# --- --commit: one commit of every file the operation moved, across interruptions ------------------

JOURNAL_NAME = "sealer-reseal.journal"  # in the git directory, so never committed

Moves = Counter[tuple[tuple[str, ...], tuple[str, ...]]]


def journal_append(journal: str, git_path: str, data: bytes, moves: Moves) -> None:
    """Record that `git_path` is about to hold `data`: before the file is replaced, so a kill at
    any point leaves the file old (and in the next plan) or new (and recorded here)."""
    entry = {
        "file": git_path,
        "sha256": hashlib.sha256(data).hexdigest(),
        "moves": [["+".join(old), "+".join(new), n] for (old, new), n in moves.items()],
    }
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    try:
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, line)  # one append: the lines of parallel workers stay whole
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise InputError(f"cannot write the reseal journal: {e.strerror}", file=journal) from None


@dataclass
class Journal:
    """The files `reseal --commit` re-sealed and has not committed yet: one line per file, written
    before the file is replaced, with the SHA-256 of its new bytes and its key moves.

    A run killed before its commit leaves re-sealed files that the next plan no longer lists (they
    are current). The next `reseal --commit` finds them here and commits them with its own, as
    long as they hold exactly what the reseal wrote; a file changed since is not committed."""

    path: Path
    top: Path  # the git work tree
    repo: Any  # git.Repo

    @classmethod
    def of(cls, cfg: Config) -> Journal:
        import git

        try:
            repo = git.Repo(cfg.root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise InputError("--commit needs a git repository", file=str(cfg.root)) from None
        top = Path(repo.working_tree_dir or cfg.root).resolve()
        return cls(Path(repo.git_dir) / JOURNAL_NAME, top, repo)

    def git_path(self, path: Path) -> str:
        return path.resolve().relative_to(self.top).as_posix()

    def entries(self) -> dict[str, tuple[str, Moves]]:
        """git path -> (sha256, moves), the last line of each file winning; a torn line is skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise InputError(f"cannot read the reseal journal: {e.strerror}", file=str(self.path)) from None
        out: dict[str, tuple[str, Moves]] = {}
        for line in raw.splitlines():
            try:
                entry = json.loads(line)
                moves: Moves = Counter()
                for old, new, n in entry["moves"]:
                    moves[(tuple(old.split("+")), tuple(new.split("+")))] += int(n)
                out[str(entry["file"])] = (str(entry["sha256"]), moves)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        return out

    def uncommitted(self) -> dict[str, tuple[str, Moves]]:
        """The recorded files that still hold what the reseal wrote and differ from HEAD."""
        head = self.repo.head.commit.tree if self.repo.head.is_valid() else None
        out = {}
        for gp, (sha, moves) in self.entries().items():
            try:
                data = (self.top / gp).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() != sha:
                continue
            try:
                committed = head[gp].data_stream.read() if head is not None else None
            except KeyError:
                committed = None
            if committed != data:
                out[gp] = (sha, moves)
        return out

    def prune(self) -> None:
        """Forget every file that is committed, changed since, or gone."""
        if not self.path.exists():
            return
        keep = self.uncommitted()
        if not keep:
            self.path.unlink(missing_ok=True)
            return
        lines = [
            json.dumps(
                {"file": gp, "sha256": sha, "moves": [["+".join(o), "+".join(n), c] for (o, n), c in moves.items()]},
                separators=(",", ":"),
            )
            for gp, (sha, moves) in sorted(keep.items())
        ]
        atomic_write(self.path, ("\n".join(lines) + "\n").encode(), mode=0o600)


def interrupted(
    journal: Journal, cfg: Config, plan: Plan, uncommitted: dict[str, tuple[str, Moves]] | None = None
) -> list[FilePlan]:
    """The files of the plan's scope an interrupted `reseal --commit` re-sealed and did not commit."""
    uncommitted = journal.uncommitted() if uncommitted is None else uncommitted
    if not uncommitted:
        return []
    stale = {f.rel for f in plan.files}
    out = []
    for rel, env in sorted(plan.scope.items()):
        path = cfg.root / rel
        found = uncommitted.get(journal.git_path(path))
        if found is not None and rel not in stale:
            out.append(FilePlan(path, rel, env, sum(found[1].values()), found[1]))
    return out


def prepare_commit(cfg: Config, plan: Plan) -> tuple[Journal, list[FilePlan]]:
    """Before `reseal --commit` writes anything: the journal, and the files an interrupted run
    re-sealed (they join this commit). Refuses when the files to commit carry other uncommitted
    changes; a file holding exactly what the interrupted reseal wrote is not such a change."""
    journal = Journal.of(cfg)
    repo = journal.repo
    uncommitted = journal.uncommitted()
    wanted = {journal.git_path(f.path) for f in plan.files}
    dirty = {d.a_path for d in repo.index.diff(None)}
    if repo.head.is_valid():
        dirty |= {d.a_path for d in repo.index.diff("HEAD")}
    else:  # no commit yet: everything in the index is an uncommitted change
        dirty |= {str(path) for path, _stage in repo.index.entries}
    dirty |= set(repo.untracked_files)
    clash = sorted((wanted & dirty) - set(uncommitted))
    if clash:
        raise InputError(
            f"{clash[0]} has uncommitted changes{f' (and {len(clash) - 1} more)' if len(clash) > 1 else ''}",
            hint="commit or stash them first, or run without --commit",
        )
    return journal, interrupted(journal, cfg, plan, uncommitted)


def commit_message(plan: Plan, summary: Summary, earlier: Sequence[FilePlan] = ()) -> str:
    done = {r.rel: r for r in summary.results if r.resealed}
    rows = [(f.rel, done[f.rel].moves) for f in plan.files if f.rel in done] + [(f.rel, f.moves) for f in earlier]
    values = sum(sum(m.values()) for _rel, m in rows)
    lines = [f"sealer reseal: {values} value(s) in {len(rows)} file(s)", ""]
    for rel, moves in rows:
        for (old, new), n in moves.items():
            lines.append(f"{rel}: {n} value(s) {'+'.join(old)} -> {'+'.join(new)}")
    if earlier:
        lines += ["", f"{len(earlier)} of these file(s) were re-sealed by an earlier run that was interrupted."]
    return "\n".join(lines) + "\n"


def git_commit(
    cfg: Config, plan: Plan, summary: Summary, journal: Journal | None = None, earlier: Sequence[FilePlan] = ()
) -> str:
    """One commit (`git commit --only`, through gitpython) of exactly the files re-sealed by this
    run and by the interrupted runs before it (`earlier`); then the journal forgets them."""
    import git

    journal = journal or Journal.of(cfg)
    remove_stray_temp_files([f.path for f in earlier])  # what the interrupted run's writers left
    resealed = {r.rel for r in summary.results if r.resealed}
    files = [journal.git_path(f.path) for f in plan.files if f.rel in resealed]
    files += [journal.git_path(f.path) for f in earlier]
    if not files:
        journal.prune()
        return ""
    repo = journal.repo
    try:
        repo.git.add("--", *files)
        repo.git.commit("--only", "-m", commit_message(plan, summary, earlier), "--", *files)
    except git.GitCommandError as e:
        raise SealerError(
            f"git commit of the re-sealed files failed: {_git_error(e)}",
            file=str(journal.top),
            hint="they are re-sealed on disk and recorded; fix that, then run the same command again to commit them",
        ) from None
    journal.prune()
    return str(repo.head.commit.hexsha)


def _git_error(e: Any) -> str:
    """The line of git's stderr that says what went wrong (`fatal: …`, `error: …`)."""
    lines = [ln.strip().strip("'").strip() for ln in str(e.stderr or "").splitlines()]
    lines = [ln.removeprefix("stderr:").strip().strip("'") for ln in lines if ln]
    return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else f"exit {e.status}")
