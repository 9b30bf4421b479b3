"""`sealer show`: what a sealed file holds, per value, without any key."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, emit_json, output_option


@click.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@output_option
def show(files: tuple[Path, ...], output: str) -> None:
    """Per value of FILE…: its path, type, key ids, seal time, age and expiry; per document its
    environment, scope and signer. Needs no key and opens nothing (check and unseal judge that).
    """
    from .._show import show as compute

    shown = compute(files)
    if output == "json":
        emit_json([s.to_dict() for s in shown])
        return
    for s in shown:
        for line in s.text_lines():
            click.echo(line)
