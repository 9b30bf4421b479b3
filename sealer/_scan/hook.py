"""`sealer hook install`: the pre-commit hook that runs `sealer scan --staged`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import Refused, UsageError

HOOK_MARKER = "# sealer pre-commit hook"


def hook_text(executable: str) -> str:
    import shlex

    return (
        "#!/bin/sh\n"
        f"{HOOK_MARKER} (written by `sealer hook install`; run it again to update)\n"
        "# Refuses a commit whose staged files hold private keys, plaintext secrets, or unsealed\n"
        "# values under an environment's paths. Bypass once, knowingly: git commit --no-verify\n"
        f"exec {shlex.quote(executable)} scan --staged\n"
    )


def install_hook(start: Path, executable: str, *, force: bool = False) -> tuple[Path, bool]:
    """Write the repository's pre-commit hook (honouring core.hooksPath). Refuses to replace a hook
    sealer did not write unless `force`. Returns the hook's path and whether a foreign hook was replaced."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--git-path", "hooks/pre-commit"],
            cwd=start,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise UsageError("not inside a git repository", file=str(start)) from None
    hook = (start / out).absolute()
    replaced = False
    if hook.exists() or hook.is_symlink():
        try:
            mine = HOOK_MARKER in hook.read_text(errors="replace")
        except OSError:
            mine = False
        if not mine and not force:
            raise Refused(
                "a pre-commit hook that sealer did not write is already installed",
                file=str(hook),
                hint="add `sealer scan --staged` to it yourself, or pass --force to replace it",
            )
        replaced = not mine
    from .._fsio import atomic_write

    hook.parent.mkdir(parents=True, exist_ok=True)
    if hook.is_symlink():
        hook.unlink()
    atomic_write(hook, hook_text(executable).encode(), mode=0o755)
    return hook, replaced


def sealer_executable(argv0: str) -> str:
    """The absolute path of the running `sealer`, for the hook: git runs hooks with its own PATH,
    which may not reach the virtualenv sealer is installed in."""
    import sys

    candidates = [Path(argv0)] if argv0 else []
    which = shutil.which("sealer")
    candidates += [Path(which)] if which else []
    candidates.append(Path(sys.executable).parent / "sealer")
    for c in candidates:
        if c.name == "sealer" and c.is_file() and os.access(c, os.X_OK):
            return str(c.absolute())
    raise UsageError("cannot find the sealer executable to put in the hook", hint="run it as an installed `sealer`")
