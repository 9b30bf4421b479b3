"""`sealer keys`: environment keys for custodians."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import (
    CONTEXT,
    AuditedGroup,
    audit,
    emit_json,
    emit_rows,
    env_filter_option,
    key_out_options,
    note,
    output_option,
    repo_config,
)

IDENTITY_FILE = "~/.config/sealer/identities/ENV-KID.txt"

kind_option = click.option(
    "--kind",
    type=click.Choice(["x25519", "mlkem768x25519"]),
    help="x25519 (age's default) or mlkem768x25519 (post-quantum hybrid, age1pq1…; larger tokens).",
)
label_option = click.option("--label", default="", help="Who holds it (for recovery keys), e.g. 'security team safe'.")
mixed_option = click.option(
    "--allow-mixed-kinds",
    is_flag=True,
    help="Accept post-quantum and classic keys together in ENV (recorded in keys/ENV.yaml): the classic key"
    " alone then opens every value, so the post-quantum protection is void.",
)


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def keys() -> None:
    """Create, register and list environment keys."""


@keys.command(context_settings=CONTEXT)
@click.argument("env")
@key_out_options(IDENTITY_FILE)
@click.option("--add", is_flag=True, help="Add another active key even though one exists.")
@click.option(
    "--recovery", is_flag=True, help="Make a break-glass recipient of ENV instead (keep its private key offline)."
)
@label_option
@kind_option
@mixed_option
@click.option(
    "--passphrase",
    is_flag=True,
    help="Protect the private key file with a passphrase (age's scrypt format: age -d opens it too),"
    " asked for twice on the terminal, or read from the 0600 file SEALER_PASSPHRASE_FILE names.",
)
@output_option
def generate(
    env: str,
    out: Path | None,
    force: bool,
    add: bool,
    recovery: bool,
    label: str,
    kind: str | None,
    allow_mixed_kinds: bool,
    passphrase: bool,
    output: str,
) -> None:
    """Make a key pair for ENV: public key to keys/ENV.yaml, private key to a 0600 file.

    The kind defaults to ENV's: post-quantum if its active key is, else x25519."""
    from .._identities import new_passphrase
    from .._registry import generate_key

    cfg = repo_config()
    cfg.registry(env)  # validates the environment name
    secret = new_passphrase(str(out) if out else f"the new {env} private key") if passphrase else None
    record, path = generate_key(
        cfg.root,
        env,
        out=out,
        force=force,
        add=add,
        kind=kind,
        recovery=recovery,
        label=label,
        allow_mixed_kinds=allow_mixed_kinds,
        passphrase=secret,
    )
    audit("keygen", env=env, kids=[record.kid], reason="recovery" if recovery else None)
    if output == "json":
        emit_json({**record.to_dict(), "env": env, "identity_file": str(path), "passphrase": passphrase})
        return
    click.echo(record.recipient)
    what = "recovery key" if recovery else "active key"
    protected = ", protected by a passphrase" if passphrase else ""
    note(f"{env}: new {what} {record.kid}; private key written to {path} (mode 0600{protected})")
    if recovery:
        note(
            f"move the private key offline (break-glass only); run sealer reseal --env {env}"
            " to seal existing values to it"
        )
    else:
        note("keep the private key off this repository; give it to the deploy tooling of this environment only")


@keys.command(context_settings=CONTEXT)
@click.argument("env")
@click.argument("recipient")
@click.option("--recovery", is_flag=True, help="A break-glass recipient: every value of ENV is also sealed to it.")
@label_option
@mixed_option
@output_option
def add(env: str, recipient: str, recovery: bool, label: str, allow_mixed_kinds: bool, output: str) -> None:
    """Register a public key (age1…, age1pq1…, ssh-ed25519) made elsewhere as an active key of ENV."""
    from .._registry import add_key

    cfg = repo_config()
    cfg.registry(env)
    record = add_key(cfg.root, env, recipient, recovery=recovery, label=label, allow_mixed_kinds=allow_mixed_kinds)
    audit("add-key", env=env, kids=[record.kid], reason="recovery" if recovery else None)
    if output == "json":
        emit_json({**record.to_dict(), "env": env})
    else:
        what = "recovery recipient" if recovery else "active key"
        note(f"{env}: registered {what} {record.kid}; run sealer reseal --env {env} to seal existing values to it")


@keys.command(context_settings=CONTEXT)
@click.argument("env")
@key_out_options(IDENTITY_FILE, what="the new private key")
@kind_option
@mixed_option
@output_option
def rotate(env: str, out: Path | None, force: bool, kind: str | None, allow_mixed_kinds: bool, output: str) -> None:
    """Make a new active key for ENV; the previous active key becomes retiring."""
    from .._registry import rotate_key

    cfg = repo_config()
    cfg.registry(env)
    record, previous, path = rotate_key(
        cfg.root, env, out=out, force=force, kind=kind, allow_mixed_kinds=allow_mixed_kinds
    )
    audit("rotate", env=env, kids=[record.kid, *(k.kid for k in previous)], reason=f"new active key {record.kid}")
    if output == "json":
        emit_json({**record.to_dict(), "env": env, "identity_file": str(path), "retiring": [k.kid for k in previous]})
        return
    click.echo(record.recipient)
    note(f"{env}: new active key {record.kid}; private key written to {path} (mode 0600)")
    for k in previous:
        note(
            f"{env}: key {k.kid} is now retiring; next: sealer reseal --env {env}, "
            f"then sealer keys retire {env} {k.kid}"
        )


@keys.command(context_settings=CONTEXT)
@click.argument("env")
@click.argument("kid")
@click.option("--force", is_flag=True, help="Retire even though values still name the key.")
@output_option
def retire(env: str, kid: str, force: bool, output: str) -> None:
    """Retire KID: deploy-time unsealing stops accepting it. Refuses while values still name it."""
    from .._rotation import retire as run

    cfg = repo_config()
    using = run(cfg, env, kid, force=force)
    audit("retire", env=env, kids=[kid], reason="forced" if force else None)
    lost = [(f, p) for f, p, only in using if only]
    if output == "json":
        emit_json({"env": env, "kid": kid, "state": "retired", "unreadable": [{"file": f, "path": p} for f, p in lost]})
        return
    note(f"{env}: key {kid} retired")
    if lost:
        note(
            f"{len(lost)} value(s) were sealed to it alone and can no longer be unsealed at deploy time, "
            f"e.g. {lost[0][0]} {lost[0][1]}"
        )


@keys.command(name="revoke-before", context_settings=CONTEXT)
@click.argument("env")
@click.argument("time", metavar="TIME")
@output_option
def revoke_before(env: str, time: str, output: str) -> None:
    """Refuse every value of ENV sealed before TIME (ISO 8601 or 'now'), e.g. after a leak."""
    from .._registry import iso, parse_time
    from .._registry import revoke_before as run

    cfg = repo_config()
    cfg.registry(env)
    reg = run(cfg.root, env, parse_time(time))
    audit("revoke", env=env, reason=f"not_before {iso(reg.not_before) if reg.not_before else ''}")
    when = iso(reg.not_before) if reg.not_before else ""
    if output == "json":
        emit_json({"env": env, "not_before": when})
    else:
        note(f"{env}: values sealed before {when} are now refused; set fresh values (sealer status lists them)")


@keys.command(name="list", context_settings=CONTEXT)
@env_filter_option
@output_option
def list_(env: str | None, output: str) -> None:
    """Every registered key: environment, kid, state, creation time, recipient."""
    cfg = repo_config()
    envs = [env] if env else list(cfg.environments)
    rows = [{"env": e, **k.to_dict()} for e in envs for k in cfg.registry(e).keys]
    emit_rows(rows, output, _key_line, empty="no keys registered; run: sealer keys generate ENV")


def _key_line(r: dict[str, Any]) -> str:
    role = "recovery" if r.get("role") == "recovery" else ""
    return f"{r['env']:<12} {r['kid']}  {r['state']:<8} {role:<8} {r['created']}  {r['recipient']}"
