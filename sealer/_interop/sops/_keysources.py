"""The age identities sops itself would find: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD, then
sops's default keys file. Files are read and commands run as sealer's own key sources do them
(`_fsio.read_private_file`, `_identities.run_key_command`); what is read and when is sops's."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..._fsio import read_private_file
from ..._identities import MAX_IDENTITY_FILE_SIZE, run_key_command, split_command
from ..._keys import Identity, parse_identity
from ...errors import IdentityError, InputError, KeyFormatError
from .. import age


def sops_identities(
    environ: Mapping[str, str] | None = None, *, passphrase: Callable[[str], str] | None = None
) -> list[Identity]:
    """The age identities sops itself would find: `SOPS_AGE_KEY` (keys separated by whitespace),
    `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD` (run once, no shell), all of those that are set; else
    sops's default keys file. Empty when none is set or present.

    Key files readable by group or others are refused, as sealer refuses its own. A keys file that is
    itself passphrase-protected (as sops allows) opens only with a `passphrase(source)` callback.
    """
    env = os.environ if environ is None else environ
    found: list[Identity] = []
    if "SOPS_AGE_KEY" in env:
        found += _parse_sops_keys(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY", several_per_line=True)
    if env.get("SOPS_AGE_KEY_FILE"):
        path = Path(env["SOPS_AGE_KEY_FILE"])
        label = f"SOPS_AGE_KEY_FILE ({path})"
        text = _key_text(_read_key_file(path, "SOPS_AGE_KEY_FILE"), label, passphrase)
        found += _parse_sops_keys(text, label, several_per_line=False)
    if env.get("SOPS_AGE_KEY_CMD"):
        argv = split_command(env["SOPS_AGE_KEY_CMD"], "SOPS_AGE_KEY_CMD")
        out = run_key_command(argv, "SOPS_AGE_KEY_CMD", env=None if environ is None else env)
        label = f"output of SOPS_AGE_KEY_CMD ({argv[0]})"
        found += _parse_sops_keys(_key_text(out, label, passphrase), label, several_per_line=False)
    if not found:
        default = _sops_keys_file(env)
        if default.is_file():
            text = _key_text(_read_key_file(default, "sops keys file"), str(default), passphrase)
            found += _parse_sops_keys(text, str(default), several_per_line=False)
    unique: dict[str, Identity] = {}
    for identity in found:
        unique.setdefault(identity.kid, identity)
    return list(unique.values())


def _read_key_file(path: Path, label: str) -> bytes:
    """A keys file, read as sealer reads its own private key files (0600, regular, at most 1 MiB).
    Here a file that cannot be read is an IdentityError too: the key source named is unusable."""
    try:
        return read_private_file(path, what=f"{label}: key file", limit=MAX_IDENTITY_FILE_SIZE)
    except InputError as err:
        raise IdentityError(str(err).removeprefix(f"{err.file}: "), file=err.file) from None


def _sops_keys_file(env: Mapping[str, str]) -> Path:
    """sops's default keys file on Linux: $XDG_CONFIG_HOME/sops/age/keys.txt, else ~/.config/…."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "sops" / "age" / "keys.txt"


def _key_text(data: bytes, source: str, passphrase: Callable[[str], str] | None) -> str:
    if age.is_age_file(data):
        if passphrase is None:
            raise IdentityError(
                f"{source} is a passphrase-protected age file",
                hint="open it with `age -d` into a 0600 file and point SOPS_AGE_KEY_FILE there",
            )
        return age.decrypt_identity_file(data, passphrase(source), source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(
            "not UTF-8 text, so not an age keys file",
            file=source,
            hint="point it at an age keys file (AGE-SECRET-KEY-1… lines), as sops reads it",
        ) from None


def _parse_sops_keys(text: str, source: str, *, several_per_line: bool) -> list[Identity]:
    """sops's keys-file format. Plugin and post-quantum identities are skipped: the age layer here
    opens X25519 stanzas only (sops's mlkem768x25519 and plugin stanzas are future work)."""
    found: list[Identity] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for word in line.split() if several_per_line else [line]:
            if word.startswith(("AGE-PLUGIN-", "AGE-SECRET-KEY-PQ-1")):
                continue
            try:
                found.append(parse_identity(word))
            except KeyFormatError as err:
                raise KeyFormatError(f"line {number}: {err}", file=source) from None
    return found
