"""`sealer init`: make a repository sealer-ready."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, note


@click.command(context_settings=CONTEXT)
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME",
    help="An environment to create (repeatable). Default: dev, staging, prod.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Repository root (default: the current directory).",
)
def init(envs: tuple[str, ...], directory: Path) -> None:
    """Write .sealer.yaml and the keys/ registry. Environment E owns deploy/E/."""
    from .._repo_init import init_repo

    created = init_repo(directory, list(envs) or ["dev", "staging", "prod"])
    for path in created:
        note(f"wrote {path}")
    note("next: sealer keys generate ENV (custodian), then sealer seal deploy/ENV/FILE.yaml")
