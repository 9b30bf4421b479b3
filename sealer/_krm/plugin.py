"""sealer's kustomize plugin configs (`SealerTransformer`, `SealerGenerator`) and the legacy exec
plugin shim that `sealer krm install-plugin` writes.

kustomize finds a legacy exec plugin at `$KUSTOMIZE_PLUGIN_HOME/GROUP/VERSION/LOWERKIND/KIND` and
runs it with the config file as its first argument, in the kustomization's directory. The shim is
one line that runs this sealer (by absolute path) as `sealer krm "$@"`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Refused

GROUP_VERSION = "sealer.dev/v1alpha1"
TRANSFORMER = "SealerTransformer"
GENERATOR = "SealerGenerator"
KINDS = (TRANSFORMER, GENERATOR)
SHIM_MARKER = "# sealer kustomize plugin"
_COMMON = {"apiVersion", "kind", "metadata"}
_FIELDS = {TRANSFORMER: _COMMON, GENERATOR: _COMMON | {"files", "needsHash"}}


@dataclass(frozen=True)
class PluginConfig:
    kind: str
    files: tuple[str, ...] = ()
    needs_hash: bool = False


def is_sealer_config(data: Any) -> bool:
    return isinstance(data, dict) and data.get("apiVersion") == GROUP_VERSION and data.get("kind") in KINDS


def parse_config(data: Any, where: str) -> PluginConfig:
    """A SealerTransformer or SealerGenerator. Unknown fields are refused: a misspelt `file:` would
    otherwise generate nothing, silently."""
    if not is_sealer_config(data):
        kind = data.get("kind") if isinstance(data, dict) else None
        raise InputError(
            f"is {'a ' + str(kind) if kind else 'not a plugin config'}, not a {' or '.join(KINDS)} of {GROUP_VERSION}",
            file=where,
        )
    kind = str(data["kind"])
    unknown = sorted(str(k) for k in data if k not in _FIELDS[kind])
    if unknown:
        raise InputError(
            f"{kind} has no field {', '.join(unknown)}",
            file=where,
            hint=f"a {kind} takes {', '.join(sorted(_FIELDS[kind] - _COMMON)) or 'no fields'}",
        )
    if kind == TRANSFORMER:
        return PluginConfig(kind)
    files = data.get("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise InputError(
            "files must be a list of sealed files, relative to the kustomization",
            file=where,
            hint="files: [db.yaml]",
        )
    needs_hash = data.get("needsHash", False)
    if not isinstance(needs_hash, bool):
        raise InputError("needsHash must be true or false", file=where)
    return PluginConfig(kind, tuple(files), needs_hash)


def read_config(path: Path) -> PluginConfig:
    """The config file kustomize passes a legacy exec plugin as its first argument."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from .._fsio import read_text

    text = read_text(path, limit=1024 * 1024)
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, RecursionError):
        raise InputError("malformed YAML", file=str(path)) from None
    return parse_config(data, str(path))


def plugin_home(environ: dict[str, str] | None = None) -> Path:
    """Where kustomize looks for plugins: $KUSTOMIZE_PLUGIN_HOME, else $XDG_CONFIG_HOME/kustomize/plugin,
    else ~/.config/kustomize/plugin (kustomize's own order)."""
    env = os.environ if environ is None else environ
    if env.get("KUSTOMIZE_PLUGIN_HOME"):
        return Path(env["KUSTOMIZE_PLUGIN_HOME"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "kustomize" / "plugin"


def shim_path(home: Path, kind: str) -> Path:
    group, version = GROUP_VERSION.split("/")
    return home / group / version / kind.lower() / kind


def shim_text(executable: str) -> str:
    import shlex

    return (
        f'#!/bin/sh\n{SHIM_MARKER} (written by `sealer krm install-plugin`)\nexec {shlex.quote(executable)} krm "$@"\n'
    )


def install_plugin(home: Path, executable: str, *, force: bool = False) -> list[Path]:
    """Write the shim for both kinds under `home` (mode 0755). A file there that sealer did not
    write is kept unless `force`; one it wrote is brought up to date. Returns the paths."""
    from .._fsio import atomic_write

    targets = [shim_path(home, kind) for kind in KINDS]
    for path in targets:
        _refuse_unsafe_dirs(home, path.parent)
        if (path.exists() or path.is_symlink()) and not force:
            try:
                mine = SHIM_MARKER in path.read_text(errors="replace")
            except OSError:
                mine = False
            if not mine:
                raise Refused(
                    "a kustomize plugin that sealer did not write is already there",
                    file=str(path),
                    hint="move it away, or pass --force to replace it",
                )
    text = shim_text(executable).encode()
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        atomic_write(path, text, mode=0o755)
    return targets


def _refuse_unsafe_dirs(home: Path, top: Path) -> None:
    """kustomize runs what lies under the plugin home: its directories must not lead elsewhere (a
    link), nor be writable by others than their owner (another user could swap the shim)."""
    import os
    import stat

    rel = top.relative_to(home).parts
    for d in [home, *(home.joinpath(*rel[:i]) for i in range(1, len(rel) + 1))]:
        if d != home and d.is_symlink():
            raise Refused("is a symbolic link; a plugin directory must be a real directory", file=str(d))
        try:
            st = d.lstat() if d != home else d.stat()
        except FileNotFoundError:
            continue
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_uid not in (os.getuid(), 0):
            raise Refused(
                "is writable by other users, or owned by one: another user could replace the plugin",
                file=str(d),
                hint="choose a plugin home of your own (--dir), or chmod go-w it",
            )
