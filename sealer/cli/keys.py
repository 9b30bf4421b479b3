"""`sealer keys`: environment keys for custodians."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, emit_json, note, output_option, repo_config


@click.group(context_settings=CONTEXT)
def keys() -> None:
    """Create, register and list environment keys."""


@keys.command(context_settings=CONTEXT)
@click.argument("env")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (default: ~/.config/sealer/identities/ENV-KID.txt).",
)
@click.option("--force", is_flag=True, help="Allow writing the private key inside the repository.")
@click.option("--add", is_flag=True, help="Add another active key even though one exists.")
@output_option
def generate(env: str, out: Path | None, force: bool, add: bool, output: str) -> None:
    """Make a key pair for ENV: public key to keys/ENV.yaml, private key to a 0600 file."""
    from ..registry import generate_key

    cfg = repo_config()
    cfg.registry(env)  # validates the environment name
    record, path = generate_key(cfg.root, env, out=out, force=force, add=add)
    if output == "json":
        emit_json({**record.to_dict(), "env": env, "identity_file": str(path)})
        return
    click.echo(record.recipient)
    note(f"{env}: new active key {record.kid}; private key written to {path} (mode 0600)")
    note("keep the private key off this repository; give it to the deploy tooling of this environment only")


@keys.command(context_settings=CONTEXT)
@click.argument("env")
@click.argument("recipient")
@output_option
def add(env: str, recipient: str, output: str) -> None:
    """Register a public key (age1…) made elsewhere as an active key of ENV."""
    from ..registry import add_key

    cfg = repo_config()
    cfg.registry(env)
    record = add_key(cfg.root, env, recipient)
    if output == "json":
        emit_json({**record.to_dict(), "env": env})
    else:
        note(f"{env}: registered active key {record.kid}")


@keys.command(name="list", context_settings=CONTEXT)
@click.option("--env", "env", help="Only this environment.")
@output_option
def list_(env: str | None, output: str) -> None:
    """Every registered key: environment, kid, state, creation time, recipient."""
    cfg = repo_config()
    envs = [env] if env else list(cfg.environments)
    rows = [{"env": e, **k.to_dict()} for e in envs for k in cfg.registry(e).keys]
    if output == "json":
        emit_json(rows)
        return
    if not rows:
        note("no keys registered; run: sealer keys generate ENV")
        return
    for r in rows:
        click.echo(f"{r['env']:<12} {r['kid']}  {r['state']:<8} {r['created']}  {r['recipient']}")
