"""Guardrails: `sealer check` (the CI gate), `sealer scan` (the pre-commit gate), `sealer hook
install`, and `sealer signers` (who may sign sealed documents)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from ._common import (
    CONTEXT,
    AuditedGroup,
    emit_json,
    emit_rows,
    env_filter_option,
    identity_option,
    is_tty,
    key_out_options,
    note,
    output_option,
    repo_config,
)


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@identity_option
@click.option("--no-refs", "no_refs", is_flag=True, help="Do not resolve workloads' references to Secret keys.")
@output_option
def check(paths: tuple[Path, ...], identities: tuple[str, ...], no_refs: bool, output: str) -> None:
    """Check sealed files for CI; needs no private key. Exits 1 on any problem.

    Every YAML file under an environment's paths (or under PATH…) must parse, be sealed for that
    environment, hold no plaintext value, name only the current keys, and meet the policy (secret
    age, not_before, signatures, expiry). Every Secret key a workload there references must be provided by
    its environment, in its namespace (rendered with kubectl kustomize where a kustomization is).
    With --identity it also proves that every value unseals. One line per problem: FILE: PATH: problem.
    Values expiring within the policy's warn_before are listed as warnings (FILE: PATH: warning: …)
    and do not fail the check.
    """
    from .._check import check as run
    from .._check import plan
    from ..errors import SealerError

    cfg = repo_config()
    identity_for = None
    if identities:
        from .._identities import find_identities

        identity_for = find_identities(identities).for_kid
    files, path_problems = plan(cfg, paths)
    bar = click.progressbar(length=len(files), label="checking", file=sys.stderr) if is_tty() and files else None
    with bar if bar is not None else contextlib.nullcontext():
        report = run(
            cfg,
            paths,
            identity_for=identity_for,
            files=files,
            progress=(lambda: bar.update(1)) if bar is not None else None,
            refs=not no_refs,
        )
    report.problems = path_problems + report.problems
    if output == "json":
        emit_json(report.to_dict())
    else:
        for p in report.problems + report.warnings:
            click.echo(p.render())
        for n in report.notes:
            note(f"sealer: note: {n}")
    if report.problems:
        bad = len({p.file for p in report.problems})
        raise SealerError(f"check found {len(report.problems)} problem(s) in {bad} file(s)")
    if output != "json":
        opened = f"; {report.unsealed} unsealed" if report.unsealed is not None else ""
        warned = f", {len(report.warnings)} warning(s)" if report.warnings else ""
        note(f"checked {report.files} file(s), {report.values} value(s){opened}: no problems{warned}")


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--staged", is_flag=True, help="Scan the staged content of changed files (what will be committed).")
@click.option("--all", "all_", is_flag=True, help="Scan every file git sees: tracked, and untracked not ignored.")
@output_option
def scan(paths: tuple[Path, ...], staged: bool, all_: bool, output: str) -> None:
    """Find private keys and plaintext secrets: --staged, --all (the default), or PATH….

    Reports age identities, PEM, OpenSSH and PGP private keys, plaintext secrets (detect-secrets),
    and unsealed values in files under an environment's paths. Never prints a secret. A false
    positive is silenced with `pragma: allowlist secret` on its line, or a `scan: exclude:` glob in
    .sealer.yaml. Exits 1 on any finding.
    """
    from .._config import Config, find_root
    from .._scan import ScanReport, all_items, path_items, scan_items, staged_items
    from ..errors import SealerError, UsageError

    if sum((staged, all_, bool(paths))) > 1:
        raise UsageError("give one of --staged, --all or PATH…")
    root = find_root(Path.cwd())
    cfg = Config.load(root) if root is not None else None
    collected = ScanReport()
    tmp_dir = None
    if staged:
        items, tmp_dir = staged_items(Path.cwd(), cfg, collected)
    elif paths:
        items = path_items(paths, cfg, collected)
    else:
        try:
            items, _git_dir = all_items(Path.cwd(), cfg, collected)
        except UsageError:
            if all_:
                raise
            items = path_items((Path("."),), cfg, collected)
    report = scan_items(items, cfg, tmp_dir=tmp_dir)
    report.findings = collected.findings + report.findings
    report.skipped += collected.skipped
    if output == "json":
        emit_json(report.to_dict())
    else:
        for f in report.findings:
            click.echo(f.render())
        for name, why in report.partial + report.skipped:
            note(f"sealer: note: {name}: {why}")
    if report.findings:
        files = len({f.file for f in report.findings})
        raise SealerError(
            f"scan found {len(report.findings)} problem(s) in {files} file(s)",
            hint="seal values with sealer seal, keep private keys out of the repository; a false positive:"
            " add `pragma: allowlist secret` to its line",
        )
    if output != "json":
        note(f"scanned {report.files} file(s): nothing found")


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def hook() -> None:
    """Git hooks that run sealer's checks."""


@hook.command(context_settings=CONTEXT)
@click.option("--force", is_flag=True, help="Replace a pre-commit hook that sealer did not write.")
def install(force: bool) -> None:
    """Install a pre-commit hook that runs `sealer scan --staged` (this sealer, by absolute path)."""
    from .._scan import install_hook, sealer_executable

    path, replaced = install_hook(Path.cwd(), sealer_executable(sys.argv[0]), force=force)
    note(f"installed {path}{' (replaced the previous hook)' if replaced else ''}: commits now run sealer scan --staged")


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def signers() -> None:
    """Signer keys (Ed25519) and each environment's allowed signers."""


@signers.command(context_settings=CONTEXT)
@click.argument("name")
@key_out_options("~/.config/sealer/signers/NAME-KID.txt")
@click.option("--env", "envs", multiple=True, metavar="ENV", help="Also allow the new signer in ENV (repeatable).")
@output_option
def generate(name: str, out: Path | None, force: bool, envs: tuple[str, ...], output: str) -> None:
    """Make a signer key for NAME: public key to stdout, private key to a 0600 file."""
    from .._config import find_root
    from .._fsio import refuse_inside
    from .._identities import user_config_dir
    from .._registry import add_signer
    from .._signing import SignerKey, check_name, write_signer_file

    check_name(name)
    root = find_root(Path.cwd())
    cfg = repo_config() if envs else None
    for env in envs:
        assert cfg is not None
        cfg.registry(env)  # validates the environment name before anything is written
    key = SignerKey.generate()
    path = (out or user_config_dir() / "signers" / f"{name}-{key.kid}.txt").absolute()
    refuse_inside(path, root, force=force)
    write_signer_file(path, key, name)
    for env in envs:
        assert cfg is not None
        add_signer(cfg.root, env, name, key.public.text)
    if output == "json":
        emit_json({"name": name, "kid": key.kid, "key": key.public.text, "key_file": str(path), "envs": list(envs)})
        return
    click.echo(key.public.text)
    note(f"signer {name}: key {key.kid}; private key written to {path} (mode 0600)")
    if envs:
        note(f"allowed to sign for {', '.join(envs)}; sign with: sealer seal FILE --sign-with {path}")
    else:
        note(f"a custodian allows it with: sealer signers add ENV {name} {key.public.text}")


@signers.command(context_settings=CONTEXT)
@click.argument("env")
@click.argument("name")
@click.argument("key")
@output_option
def add(env: str, name: str, key: str, output: str) -> None:
    """Allow signer NAME with public key KEY (sealer-signer1…) to sign documents of ENV."""
    from .._registry import add_signer

    cfg = repo_config()
    cfg.registry(env)
    record = add_signer(cfg.root, env, name, key)
    if output == "json":
        emit_json({**record.to_dict(), "env": env})
    else:
        note(f"{env}: {name} ({record.kid}) may now sign sealed documents")


@signers.command(context_settings=CONTEXT)
@click.argument("env")
@click.argument("which", metavar="NAME|KID")
@output_option
def remove(env: str, which: str, output: str) -> None:
    """Stop allowing a signer in ENV. Documents it signed then fail check and unseal there."""
    from .._registry import remove_signer

    cfg = repo_config()
    cfg.registry(env)
    gone = remove_signer(cfg.root, env, which)
    if output == "json":
        emit_json({"env": env, "removed": [s.to_dict() for s in gone]})
    else:
        for s in gone:
            note(f"{env}: {s.name} ({s.kid}) is no longer an allowed signer; re-sign what it signed")


@signers.command(name="list", context_settings=CONTEXT)
@env_filter_option
@output_option
def list_(env: str | None, output: str) -> None:
    """Every allowed signer: environment, name, key id, public key."""
    cfg = repo_config()
    envs = [env] if env else list(cfg.environments)
    rows = [
        {"env": e, "required": cfg.environments[e].policy.require_signature, **s.to_dict()}
        for e in envs
        for s in cfg.registry(e).signers
    ]
    emit_rows(
        rows,
        output,
        lambda r: f"{r['env']:<12} {r['name']:<20} {r['kid']}  {r['key']}",
        empty="no signers allowed; a custodian adds one with: sealer signers add ENV NAME KEY",
    )
