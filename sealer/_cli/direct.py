"""`sealer unseal` without click: the command every deploy job runs cold, where importing click alone
costs about as much as the rest of the work.

The option table here is the one home of unseal's (and exec's) options: click builds its command
from it (`_common.click_option`), and `parse` reads argv with it when the arguments are ones click
would read the same way. Whatever `parse` does not take exactly as click would (help, a bad choice, an
option it does not know, a directory given as a file, a missing value) it declines, and click handles
the run, with its usual messages. tests/test_cli_direct.py checks the two readings agree.

Also here, click-free: the output helpers every command shares (`note`, `write_output`,
`audit_release`), so the direct path needs nothing from `_common`.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._unseal import Unsealed


@dataclass(frozen=True)
class Opt:
    """One option, as click declares it. `path`: a click.Path (`dir_okay`, `allow_dash`, and as
    `pathlib.Path` when `as_path`, else str)."""

    dest: str
    names: tuple[str, ...]
    help: str
    metavar: str | None = None
    flag: bool = False
    multiple: bool = False
    choices: tuple[str, ...] | None = None
    default: str | None = None
    path: bool = False
    dir_okay: bool = True
    allow_dash: bool = False
    as_path: bool = False

    def initial(self) -> Any:
        if self.multiple:
            return ()
        return False if self.flag else self.default


FORMAT = Opt(
    "fmt",
    ("--format",),
    "yaml: the files as written, sealer: blocks removed; k8s: only the Kubernetes manifests, for"
    " kubectl apply -f -; dotenv: NAME=value lines (a Secret's keys, other documents' paths in UPPER_SNAKE),"
    " shell-quoted; json: a list of {file, document, content}.",
    choices=("yaml", "k8s", "dotenv", "json"),
    default="yaml",
)
OUT = Opt(
    "out",
    ("-o", "--out"),
    "Write plaintext to this file (mode 0600) instead of stdout.",
    path=True,
    dir_okay=False,
    allow_dash=True,
    as_path=True,
)
ONLY_ENV = Opt(
    "env",
    ("--env",),
    "Only this environment: named files must be sealed for it; directories are filtered.",
    metavar="ENV",
)
IDENTITY = Opt(
    "identities",
    ("-i", "--identity"),
    "Identity (private key) file; repeatable. Else SEALER_IDENTITY, SEALER_IDENTITY_FILE, "
    "SEALER_IDENTITY_COMMAND, then ~/.config/sealer/identities/.",
    multiple=True,
    path=True,
    dir_okay=False,
)
NO_RULES = Opt(
    "no_rules",
    ("--no-rules",),
    "Open files outside any sealer repository, where no environment rules (retired keys, not_before,"
    " signatures) exist. Inside a repository the rules always apply.",
    flag=True,
)
ALLOW_ENV = Opt(
    "allow_env",
    ("--allow-env",),
    "Let a sealed value set this variable although it changes how programs run (PATH, LD_*, …). Repeatable.",
    metavar="NAME",
    multiple=True,
)
# `sealer unseal PATHS… [options]`: PATHS are click.Path(path_type=Path), one or more.
UNSEAL_OPTIONS = (FORMAT, OUT, ONLY_ENV, IDENTITY, NO_RULES, ALLOW_ENV)
PATHS = Opt("paths", (), "", path=True, as_path=True)


def parse(args: Sequence[str], options: Sequence[Opt], argument: Opt) -> dict[str, Any] | None:
    """The parameters click would give the command for `args`, or None where click must decide.

    Mirrors click's parser for what the table holds: `--name VALUE`, `--name=VALUE`, `-xVALUE`,
    `-x VALUE` (a value is the next argument whatever it looks like), flags, repeatable options
    (the last value of a single one wins), `--` ending the options, `-` as a path, options and
    paths interleaved. Values are converted and checked as click.Choice and click.Path do.
    """
    by_name = {name: opt for opt in options for name in opt.names}
    params: dict[str, Any] = {opt.dest: opt.initial() for opt in options}
    positional: list[str] = []
    i, only_args = 0, False
    while i < len(args):
        arg = args[i]
        i += 1
        if only_args or arg == "-" or not arg.startswith("-"):
            positional.append(arg)
            continue
        if arg == "--":
            only_args = True
            continue
        value: str | None
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
            value = attached if eq else None
        else:
            name, value = arg[:2], (arg[2:] or None)
        opt = by_name.get(name)
        if opt is None:
            return None
        if opt.flag:
            if value is not None:
                return None
            params[opt.dest] = True
            continue
        if value is None:
            if i >= len(args):
                return None
            value, i = args[i], i + 1
        converted = _convert(opt, value)
        if converted is None:
            return None
        params[opt.dest] = (*params[opt.dest], converted) if opt.multiple else converted
    if not positional:
        return None
    values = [_convert(argument, p) for p in positional]
    if any(v is None for v in values):
        return None
    params[argument.dest] = tuple(values)
    return params


def _convert(opt: Opt, value: str) -> Any:
    """click.Choice / click.Path's conversion, or None where click would refuse the value."""
    if opt.choices is not None:
        return value if value in opt.choices else None
    if not opt.path:
        return value
    if not (opt.allow_dash and value == "-"):
        try:
            st = os.stat(value)
        except OSError:
            st = None
        if st is not None and ((not opt.dir_okay and stat.S_ISDIR(st.st_mode)) or not os.access(value, os.R_OK)):
            return None
    return Path(value) if opt.as_path else value


def run(args: Sequence[str]) -> Callable[[], None] | None:
    """The command to run for argv without click, or None when click must parse it."""
    if not args or args[0] != "unseal":
        return None
    params = parse(args[1:], UNSEAL_OPTIONS, PATHS)
    if params is None:
        return None
    return lambda: unseal(**params)


def unseal(
    paths: tuple[Path, ...],
    fmt: str,
    out: Path | None,
    env: str | None,
    identities: tuple[str, ...],
    no_rules: bool,
    allow_env: tuple[str, ...],
) -> None:
    """`sealer unseal`: the body click's command calls too."""
    from .._identities import find_identities
    from .._render import render
    from .._unseal import unseal_paths

    ids = find_identities(identities)
    files, skipped = unseal_paths(paths, ids.for_kid, env=env, structured=fmt != "yaml", checked=not no_rules)
    audit_unseal(files, None)
    text, notes = render(files, fmt, allow_env=frozenset(allow_env))
    for n in skipped + notes + [w for u in files for w in u.warnings]:
        note(n)
    write_output(text, out, mode=0o600)  # plaintext: never readable by others


def audit_unseal(files: list[Unsealed], reason: str | None, *, withheld: str | None = None) -> None:
    """One audit line per unsealed file, written in one append before any plaintext leaves (it is
    called before rendering, writing, exporting or exec): a log that cannot be written stops the
    command. Expired values released with a warning (`u.warnings`) are noted in the line."""
    from .._audit import Event, git_head

    head = git_head(Path.cwd())
    events = [
        Event("unseal", env=u.env, file=u.source, kids=u.kids, commit=head, reason=release_reason(reason, u))
        for u in files
    ]
    if withheld is None:
        withheld = "nothing was unsealed" if reason is None else "the command was not run"
    audit_release(events, withheld=withheld)


def release_reason(reason: str | None, u: Unsealed) -> str | None:
    """The audit line's reason, noting expired values released (on_expiry: warn, or --no-rules)."""
    if not u.warnings:
        return reason
    late = f"released {len(u.warnings)} expired value(s) with a warning"
    return f"{reason}; {late}" if reason else late


def audit_release(events: list[Any], *, withheld: str = "nothing was unsealed") -> None:
    """The audit lines of plaintext about to leave (unseal, exec), written before it does: a log
    that cannot be written stops the command (`_audit.record_release`: fail closed, unless
    SEALER_AUDIT=best-effort)."""
    from .._audit import record_release

    warning = record_release(events, withheld=withheld)
    if warning:
        note(warning)


def write_output(text: str, out: Path | None, *, mode: int | None = None) -> None:
    """A command's result: to stdout, or atomically to `-o OUT` (`-` is stdout too)."""
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .._fsio import atomic_write

    atomic_write(out, text.encode(), mode=mode)


def note(message: str) -> None:
    """A status line for people, on stderr so stdout stays clean for pipes."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
