"""`sealer krm`: render pipelines as a door. One function, three calling conventions:

- **KRM function** (kpt, kustomize `--enable-exec`): a `ResourceList` in, one out (`run_function`).
  Every item with sealed values is replaced by its unsealed form (annotations kept, `sealer:`
  block gone), others go on untouched; a `SealerGenerator` functionConfig adds its files' items.
- **Legacy kustomize exec plugin** (`kubectl kustomize --enable-alpha-plugins`, Argo CD): the
  config file is the first argument (`run_plugin`); a `SealerTransformer` transforms the YAML
  stream on stdin, a `SealerGenerator` writes its files' manifests.
- **Stream** (`--stream`: Helm's post-renderer, a pipe after `kustomize build`): any manifest
  stream in, the same stream out with sealed items unsealed (`run_stream`).

Every item is opened by `unseal_file` under its environment's `EnvRules` and every generated
file by `unseal_paths`, the functions `sealer unseal` uses (see `door`), and rendered by
`_render.manifest`. All or nothing: one item that does not open fails the run, and nothing is
returned. The caller audits `Rendered.opened` before it writes `Rendered.text` (the CLI does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .door import NEEDS_HASH, Door
from .items import API_VERSIONS, failure_list
from .plugin import GENERATOR, GROUP_VERSION, TRANSFORMER, PluginConfig, install_plugin, plugin_home, read_config

if TYPE_CHECKING:
    from .._unseal import Unsealed

__all__ = [
    "API_VERSIONS",
    "GENERATOR",
    "GROUP_VERSION",
    "NEEDS_HASH",
    "TRANSFORMER",
    "Door",
    "PluginConfig",
    "Rendered",
    "failure_list",
    "install_plugin",
    "plugin_home",
    "read_config",
    "run_function",
    "run_plugin",
    "run_stream",
]


@dataclass
class Rendered:
    """What a run gives back: the output text (plaintext: the caller writes it to stdout only) and
    the files and items it opened, for the audit log."""

    text: str
    opened: list[Unsealed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_stream(text: str, door: Door) -> Rendered:
    """A manifest stream with every sealed document unsealed; every other byte as it came."""
    from .items import may_be_sealed, split_stream

    if not may_be_sealed(text):
        return Rendered(text)
    out = []
    for i, (marker, body) in enumerate(split_stream(text)):
        opened = door.open_item(marker + body, f"stdin document {i}")
        out.append(marker + body if opened is None else ("---\n" if marker else "") + opened)
    return Rendered("".join(out), list(door.opened))


def run_function(text: str, door: Door) -> Rendered:
    """A ResourceList through the door: items unsealed, a SealerGenerator's files added."""
    from .items import may_be_sealed, read_resource_list, write_resource_list
    from .plugin import is_sealer_config, parse_config

    rl = read_resource_list(text)
    config = parse_config(rl.config, "the functionConfig") if is_sealer_config(rl.config) else None
    if config is None:
        _plain_config(rl.config)
    if (config is None or config.kind != GENERATOR) and not may_be_sealed(text):
        return Rendered(text)  # nothing to open, nothing to add: the list goes back as it came
    items = []
    for i, item in enumerate(rl.items):
        opened = door.open_item(item, f"item {i}", paths=True)
        items.append(item if opened is None else opened)
    notes: list[str] = []
    if config is not None and config.kind == GENERATOR:
        generated, notes = door.generate(config.files, needs_hash=config.needs_hash)
        items += generated
    return Rendered(write_resource_list(rl.api_version, items, rl.function_config), list(door.opened), notes)


def run_plugin(config_file: Path, door: Door, stdin: Callable[[], str]) -> Rendered:
    """kustomize's legacy exec plugin: `config_file` decides; a transformer reads the stream
    `stdin()` gives, a generator reads no input."""
    config = read_config(config_file)
    if config.kind == TRANSFORMER:
        return run_stream(stdin(), door)
    generated, notes = door.generate(config.files, needs_hash=config.needs_hash)
    return Rendered("".join("---\n" + g for g in generated), list(door.opened), notes)


def _plain_config(config: object) -> None:
    """No functionConfig, or an empty one (kpt passes an empty ConfigMap), is a transformer. A
    config with settings sealer does not know is refused rather than ignored."""
    if config is None:
        return
    if isinstance(config, dict) and config.get("kind") == "ConfigMap" and not config.get("data"):
        return
    kind = config.get("kind") if isinstance(config, dict) else None
    raise InputError(
        f"the functionConfig is {'a ' + str(kind) if kind else 'not a mapping'} sealer does not know",
        hint=f"pass a {TRANSFORMER} or {GENERATOR} of {GROUP_VERSION}, or none (docs/krm.md)",
    )
