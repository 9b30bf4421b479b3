"""`sealer reseal` and `sealer status`: the custodian's repository-wide commands."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from ._common import (
    CONTEXT,
    audit_many,
    emit_json,
    env_filter_option,
    identity_option,
    is_tty,
    note,
    output_option,
    repo_config,
)
from .seal import load_signer, sign_options


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@env_filter_option
@click.option("--dry-run", is_flag=True, help="Print the plan; needs no private key.")
@click.option(
    "--commit",
    "commit",
    is_flag=True,
    help="Make one git commit of the re-sealed files (with those an interrupted --commit run re-sealed).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@identity_option
@sign_options
@output_option
def reseal(
    paths: tuple[Path, ...],
    env: str | None,
    dry_run: bool,
    commit: bool,
    jobs: int | None,
    identities: tuple[str, ...],
    sign_with: Path | None,
    drop_signature: bool,
    output: str,
) -> None:
    """Re-seal every value whose keys differ from its environment's current keys.

    Already-current values keep their bytes. Each file is replaced atomically; after an
    interruption, run it again to finish. Files holding signed documents need --sign-with (they
    are signed again) or --drop-signature.
    """
    from .._identities import find_identities
    from .._reseal_commit import git_commit, prepare_commit
    from .._rotation import Summary, make_plan
    from .._rotation import reseal as run
    from ..errors import SealerError

    cfg = repo_config()
    plan = make_plan(cfg, paths, env)
    if dry_run:
        _dry_run(cfg, plan, output)
        return
    # With --commit, files an interrupted run re-sealed (no longer in the plan) join this commit.
    journal, earlier = prepare_commit(cfg, plan) if commit else (None, [])
    if not plan.files and not earlier:
        if journal is not None:
            journal.prune()
        note(f"nothing to re-seal: all {plan.values_total} value(s) are sealed to the current keys")
        if output == "json":
            emit_json({"files": 0, "values": 0, "seconds": 0, "by_kid": {}, "failed": [], "resumed": []})
        return
    summary = Summary(0, 0, 0.0, {}, [])
    if plan.files:
        key = load_signer(sign_with)
        ids = find_identities(identities)
        bar = click.progressbar(length=len(plan.files), label="re-sealing", file=sys.stderr) if is_tty() else None
        with bar if bar is not None else contextlib.nullcontext():
            summary = run(
                cfg,
                plan,
                ids.for_kid,
                workers=jobs,
                progress=(lambda _r: bar.update(1)) if bar else None,
                sign_with=key,
                drop_signature=drop_signature,
                journal=journal,
            )
    sha = git_commit(cfg, plan, summary, journal, earlier) if journal is not None else ""
    _audit_reseal(plan, summary, sha, earlier)
    if output == "json":
        emit_json({**summary.to_dict(), "commit": sha, "resumed": [f.rel for f in earlier]})
    else:
        kids = ", ".join(f"{k}: {n}" for k, n in sorted(summary.by_kid.items()))
        note(
            f"re-sealed {summary.values} value(s) in {summary.files} file(s) in {summary.seconds:.2f} s"
            f"{f' (moved off {kids})' if kids else ''}"
        )
        if earlier:
            note(f"{len(earlier)} file(s) re-sealed by an earlier, interrupted run go into the commit too")
        if sha:
            note(f"committed {sha[:12]}")
        for r in summary.failed:
            # An error already names its file; a change on disk is ours to describe.
            note(r.error or f"{r.rel}: changed on disk during the reseal; left alone, run again")
    if summary.failed:
        raise SealerError(f"{len(summary.failed)} file(s) not re-sealed; see above")


def _dry_run(cfg: Any, plan: Any, output: str) -> None:
    from .._reseal_commit import Journal, interrupted
    from ..errors import InputError

    if output == "json":
        emit_json(plan.to_dict())
        return
    for f in plan.files:
        for (old, new), n in f.moves.items():
            click.echo(f"{f.rel}: {n} value(s) {'+'.join(old)} -> {'+'.join(new)}")
    note(f"{plan.stale} of {plan.values_total} value(s) in {len(plan.files)} file(s) would be re-sealed")
    try:
        earlier = interrupted(Journal.of(cfg), cfg, plan)
    except InputError:  # not a git repository: no --commit, so nothing awaits one
        return
    if earlier:
        note(
            f"{len(earlier)} file(s) re-sealed by an interrupted reseal --commit are not committed yet"
            f" (e.g. {earlier[0].rel}); reseal --commit commits them"
        )


@click.command(context_settings=CONTEXT)
@env_filter_option
@output_option
def status(env: str | None, output: str) -> None:
    """Keys and their age, values per key, secrets and keys past the policy. Exits 1 on a breach."""
    from .._status import status as compute
    from ..errors import SealerError

    cfg = repo_config()
    envs = compute(cfg, env)
    if output == "json":
        emit_json([s.to_dict() for s in envs])
    else:
        for s in envs:
            for line in s.text_lines():
                click.echo(line)
    breaches = sum(len(s.breaches) for s in envs)
    if breaches:
        raise SealerError(f"policy breached in {sum(1 for s in envs if s.breaches)} environment(s)")


def _audit_reseal(plan: Any, summary: Any, sha: str, earlier: list[Any]) -> None:
    from .._audit import Event, git_head

    head = sha or git_head(Path.cwd())
    events = []
    for f in earlier:  # re-sealed (and audited) by the interrupted run; committed now
        moves = ", ".join(f"{'+'.join(o)} -> {'+'.join(n)}" for o, n in f.moves)
        reason = f"{moves} (re-sealed by an interrupted run, committed now)"
        events.append(Event("reseal", env=f.env, file=f.rel, kids=plan.current[f.env], commit=head, reason=reason))
    for r in summary.results:
        f = next(p for p in plan.files if p.rel == r.rel)
        if r.resealed:
            moves = ", ".join(f"{'+'.join(o)} -> {'+'.join(n)}" for o, n in r.moves)
            events.append(Event("reseal", env=f.env, file=r.rel, kids=plan.current[f.env], commit=head, reason=moves))
        elif r.error or r.changed_on_disk:
            reason = r.error or "changed on disk during the reseal"
            events.append(Event("reseal", result="fail", env=f.env, file=r.rel, commit=head, reason=reason))
    audit_many(events)
