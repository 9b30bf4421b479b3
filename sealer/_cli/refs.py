"""`sealer refs`: which workload consumes which Secret key, which keys nobody consumes."""

from __future__ import annotations

import click

from ._common import CONTEXT, emit_json, env_filter_option, repo_config


@click.command(context_settings=CONTEXT)
@env_filter_option
@click.option(
    "--output",
    "output",
    type=click.Choice(["text", "json", "mermaid"]),
    default="text",
    show_default=True,
    help="For people, for scripts, or a mermaid graph to paste into a pull request or a wiki.",
)
def refs(env: str | None, output: str) -> None:
    """The dependency map: per Secret key its consumers (workload, container, how), seal time and
    key ids; keys no workload uses are marked unused, references to what is missing are listed.
    Needs no key and opens nothing; `sealer check` fails on a missing reference.
    """
    from .._refs import mermaid, text_lines
    from .._refs import refs as compute
    from .._repository import Repository

    maps = compute(Repository(repo_config()), env)
    if output == "json":
        emit_json([m.to_dict() for m in maps])
    elif output == "mermaid":
        click.echo(mermaid(maps), nl=False)
    else:
        for line in text_lines(maps):
            click.echo(line)
