"""`sealer seal` and `sealer set`: the developer's commands. Public keys only."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ._common import CONTEXT, F, audit, emit_json, env_option, is_tty, note, output_option, repo_config, write_output


def sign_options(f: F) -> F:
    """--sign-with and --drop-signature, shared by seal, set and reseal."""
    f = click.option(
        "--drop-signature",
        is_flag=True,
        help="Remove the signature of a signed document this changes (default: refuse to change it).",
    )(f)
    return click.option(
        "--sign-with",
        "sign_with",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="KEY",
        help="Sign every document of the file with this signer key (see: sealer signers generate).",
    )(f)


def expires_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--expires",
        metavar="DURATION|TIME",
        help=f"When {what} expire: a duration after now (90s, 12h, 30d) or an RFC 3339 time"
        " (2027-01-31T00:00:00Z). Default: the environment's policy.max_lifetime, else never. Bound into"
        " the token: unseal, exec and the controller refuse the value after it.",
    )


def load_signer(path: Path | None) -> Any:
    if path is None:
        return None
    from .._signing import read_signer_file

    return read_signer_file(path)


def note_dropped(source: object, dropped: list[int]) -> None:
    if dropped:
        docs = ", ".join(map(str, dropped))
        note(f"{source}: warning: dropped the signature of document {docs} (an allowed signer signs it: --sign-with)")


@click.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@env_option
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="Write here instead of in place ('-' for stdout). One input file only.",
)
@click.option("--scope", help="strict (default for Secrets), namespace, env (default otherwise), or a label.")
@expires_option("the values this run seals")
@sign_options
@output_option
def seal(
    files: tuple[Path, ...],
    env: str | None,
    out: Path | None,
    scope: str | None,
    expires: str | None,
    sign_with: Path | None,
    drop_signature: bool,
    output: str,
) -> None:
    """Seal the plaintext values of FILE… to their environment's keys, in place.

    Values already sealed to the current keys keep their exact bytes. FILE '-' reads stdin and
    writes stdout (needs --env). A change to a signed document needs --sign-with (or
    --drop-signature); --sign-with on an unchanged file adds or renews its signatures.
    """
    from .._seal import out_target, seal_file, seal_text, signing_for, target
    from ..errors import UsageError

    if out is not None and len(files) != 1:
        raise UsageError("-o/--out takes exactly one input file")
    cfg = repo_config()
    key = load_signer(sign_with)
    reports = []
    now = int(time.time())  # one seal time for the run, so --expires 30d means one expiry
    if files == (Path("-"),):
        if env is None:
            raise UsageError("sealing stdin needs --env")
        # Into -o FILE: sealed for an environment out's path rule agrees with, by out's value rule.
        t = out_target(cfg, None, env, out)[0] if out is not None and str(out) != "-" else target(cfg, None, env)
        signing = signing_for(cfg, t.env, key, drop=drop_signature)
        text = _stdin_text()
        expires_at = t.rules.expiry_for(expires, now, source="<stdin>")
        new, report = seal_text(
            text,
            "<stdin>",
            env=t.env,
            recipients=t.recipients,
            scope=scope,
            signing=signing,
            now=now,
            expires_at=expires_at,
        )
        write_output(new, out)
        reports.append(report)
        audit("seal", env=report.env, file="<stdin>", kids=kids_in(new))
    else:
        to_stdout = out is not None and str(out) == "-"
        for f in _progress(files, "sealing"):
            new, report = seal_file(
                cfg,
                f,
                env=env,
                scope=scope,
                out=None if to_stdout else out,
                write=not to_stdout,
                sign_with=key,
                drop_signature=drop_signature,
                expires=expires,
                now=now,
            )
            if to_stdout:
                write_output(new, out)
            reports.append(report)
            if report.changed:
                audit("seal", env=report.env, file=str(f), kids=kids_in(new))
    if output == "json":
        emit_json([r.to_dict() for r in reports])
        return
    for r in reports:
        state = f"sealed {r.sealed} value(s)" if r.sealed else "nothing new to seal"
        signed = f"; signed {r.signed} document(s)" if r.signed else ""
        note(f"{r.source}: {state} for {r.env}; {r.kept} already current{signed}")
        note_dropped(r.source, r.dropped)
        if r.stale:
            note(
                f"{r.source}: {len(r.stale)} value(s) sealed to other keys (e.g. {r.stale[0][0]}); "
                "a custodian re-seals them with: sealer reseal"
            )


@click.command(name="set", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("path")
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the value from this file (exact bytes). Default: stdin, one trailing newline removed.",
)
@env_option
@click.option(
    "--type",
    "vtype",
    type=click.Choice(["str", "int", "float", "bool"]),
    help="YAML type of a value outside Secrets (default: keep the existing type, else str). Refused in a"
    " Secret: stringData holds text and data bytes.",
)
@click.option("--document", type=int, help="Which YAML document of the file (0 is the first).")
@expires_option("the value will")
@sign_options
def set_(
    file: Path,
    path: str,
    from_file: Path | None,
    env: str | None,
    vtype: str | None,
    document: int | None,
    expires: str | None,
    sign_with: Path | None,
    drop_signature: bool,
) -> None:
    """Seal one value into FILE at PATH (e.g. stringData.password, data["tls.crt"]).

    Needs only public keys; only that value's line changes (and, with --sign-with, the signatures).
    """
    from .._format.valuepath import parse_path
    from .._seal import set_in_file

    value_path = parse_path(path)
    key = load_signer(sign_with)
    value = _read_value(from_file)
    cfg = repo_config()
    codes = {"str": "s", "int": "i", "float": "f", "bool": "t"}
    dropped = set_in_file(
        cfg,
        file,
        value_path,
        value,
        env=env,
        vtype=codes[vtype] if vtype else None,
        document=document,
        sign_with=key,
        drop_signature=drop_signature,
        expires=expires,
    )
    note(f"{file}: sealed {path}{' and signed' if key is not None else ''}")
    audit(
        "set",
        env=cfg.resolve_env(cfg.relpath(file, env=env), env),
        file=str(file),
        kids=kids_in(file.read_text()),
        reason=f"value path {path}",
    )
    note_dropped(file, dropped)


def kids_in(text: str) -> tuple[str, ...]:
    from .._audit import kids_in as scan

    return scan(text)


def _read_value(from_file: Path | None) -> bytes:
    from ..errors import InputError

    if from_file is not None and str(from_file) != "-":
        try:
            return from_file.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror}", file=str(from_file)) from None
    if from_file is None and sys.stdin.isatty():
        return click.prompt("value", hide_input=True, confirmation_prompt=True, err=True).encode()
    data = sys.stdin.buffer.read()
    if from_file is None:
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
    return data


def _stdin_text() -> str:
    from .._fsio import decode_text

    return decode_text(sys.stdin.buffer.read(), "<stdin>")


def _progress(items: tuple[Path, ...], label: str) -> Iterator[Path]:
    """A progress bar on a terminal for long runs; plain iteration otherwise."""
    if not (is_tty() and len(items) > 20):
        yield from items
        return
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield from bar
