"""Setting up a repository: `.sealer.yaml` plus an empty `keys/` registry per environment."""

from __future__ import annotations

from pathlib import Path

from ._config import CONFIG_NAME, KEYS_DIR, write_config
from ._registry import Registry
from .errors import Refused, UsageError


def init_repo(root: Path, envs: list[str]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    if (root / CONFIG_NAME).exists():
        raise Refused(f"{root / CONFIG_NAME} already exists", hint="edit it to add environments")
    if len(set(envs)) != len(envs):
        raise UsageError("an environment is named twice")
    write_config(root, envs)
    created = [root / CONFIG_NAME]
    for env in envs:
        reg = Registry(root / KEYS_DIR / f"{env}.yaml", env, [])
        if not reg.path.exists():
            reg.save()
            created.append(reg.path)
    return created
