"""`sealer krm`: the KRM function, kustomize exec plugin and post-renderer. Needs private keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import CONTEXT, AuditedGroup, audit_release, emit_json, identity_option, note, output_option, write_output
from .direct import release_reason

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._keys import Identity
    from .._unseal import Unsealed

MAX_STDIN_BYTES = 256 * 1024 * 1024  # a whole render (CRDs included), not one sealed file


class _KrmGroup(AuditedGroup):
    """kustomize runs a legacy exec plugin as `PLUGIN CONFIGFILE`: a first argument that is not a
    subcommand (`install-plugin`) is that config file."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            ctx.meta["sealer.krm.config"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)


@click.group(
    cls=_KrmGroup, invoke_without_command=True, context_settings=CONTEXT, subcommand_metavar="[CONFIG | COMMAND]"
)
@click.option("--stream", is_flag=True, help="Read any manifest stream on stdin (a Helm post-renderer, a pipe).")
@click.option(
    "--package",
    type=click.Path(file_okay=False, path_type=Path),
    help="kpt's package directory (the DIR of kpt fn eval DIR): take each item's file from kpt's path"
    " annotation, relative to it, so signatures can be checked. Only kpt sets those annotations truthfully.",
)
@click.option(
    "--env",
    "env",
    metavar="ENV",
    envvar="SEALER_ENV",
    help="Every sealed item must be this environment's (else $SEALER_ENV, which the plugins kustomize starts inherit).",
)
@identity_option
@click.pass_context
def krm(ctx: click.Context, stream: bool, package: Path | None, env: str | None, identities: tuple[str, ...]) -> None:
    """Unseal inside a render pipeline, under the environment's rules (as unseal).

    \b
    sealer krm                 a KRM function: a ResourceList on stdin and stdout (kpt)
    sealer krm CONFIG          a kustomize exec plugin: CONFIG is a SealerTransformer
                               (the YAML stream on stdin) or a SealerGenerator (files: […])
    sealer krm --stream        any manifest stream, e.g. helm install --post-renderer
    sealer krm install-plugin  write the plugin shim kustomize runs

    Plaintext goes to stdout only; a failure prints one line and writes none. See docs/krm.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .._krm import Door, failure_list, run_function, run_plugin, run_stream
    from ..errors import SealerError, UsageError

    config = ctx.meta.get("sealer.krm.config")
    if config is not None and (stream or package is not None):
        raise UsageError("a plugin config takes no --stream or --package", hint="sealer krm CONFIG")
    door = Door(_identities(identities), cwd=Path.cwd(), env=env, package=package.absolute() if package else None)
    if config is not None:
        rendered = run_plugin(Path(config), door, _stdin_text)
    elif stream:
        rendered = run_stream(_stdin_text(), door)
    else:
        text = ""
        try:
            text = _stdin_text()
            rendered = run_function(text, door)
            _audit(rendered.opened)
        except SealerError as e:
            from .._krm.items import api_version_of

            sys.stdout.write(failure_list(api_version_of(text), str(e)))  # the KRM way to fail: results
            raise
    if config is not None or stream:
        _audit(rendered.opened)
    for n in rendered.notes + [w for u in rendered.opened for w in u.warnings]:
        note(n)
    write_output(rendered.text, None)


@krm.command("install-plugin", context_settings=CONTEXT)
@click.option(
    "--dir",
    "home",
    type=click.Path(file_okay=False, path_type=Path),
    help="The plugin home to write into (default: $KUSTOMIZE_PLUGIN_HOME, else ~/.config/kustomize/plugin).",
)
@click.option("--sealer", "executable", metavar="PATH", help="The sealer the shim runs (default: this one).")
@click.option("--force", is_flag=True, help="Replace a plugin file that sealer did not write.")
@output_option
def install_plugin(home: Path | None, executable: str | None, force: bool, output: str) -> None:
    """Write the shim kustomize runs for SealerTransformer and SealerGenerator:
    $KUSTOMIZE_PLUGIN_HOME/sealer.dev/v1alpha1/<lower-case kind>/<Kind>, running `sealer krm "$@"`."""
    from .._krm import install_plugin as install
    from .._krm import plugin_home
    from .._scan.hook import sealer_executable

    where = (home or plugin_home()).absolute()
    paths = install(where, executable or sealer_executable(sys.argv[0]), force=force)
    if output == "json":
        emit_json({"plugin_home": str(where), "shims": [str(p) for p in paths]})
        return
    for p in paths:
        note(f"installed {p}")
    note(f"kustomize finds them with KUSTOMIZE_PLUGIN_HOME={where} and --enable-alpha-plugins")


def _identities(files: tuple[str, ...]) -> Callable[[str], Identity | None]:
    """The key lookup, found (and the process hardened) when the first sealed item needs a key:
    a render without sealed items does not pay for loading the key code."""
    found: list[Callable[[str], Identity | None]] = []

    def lookup(kid: str) -> Identity | None:
        if not found:
            from .._identities import find_identities

            found.append(find_identities(files).for_kid)
        return found[0](kid)

    return lookup


def _stdin_text() -> str:
    from .._fsio import decode_text

    return decode_text(sys.stdin.buffer.read(MAX_STDIN_BYTES + 1), "stdin", limit=MAX_STDIN_BYTES)


def _audit(opened: list[Unsealed]) -> None:
    """One `unseal` line per file or item opened, in one append, before any plaintext leaves."""
    if not opened:
        return
    from .._audit import Event, git_head

    head = git_head(Path.cwd())
    events = [
        Event("unseal", env=u.env, file=u.path or u.source, kids=u.kids, commit=head, reason=release_reason("krm", u))
        for u in opened
    ]
    audit_release(events, withheld="nothing was rendered")
