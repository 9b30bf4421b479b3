"""The hooks of `.pre-commit-hooks.yaml`, run by the real pre-commit framework (`pre-commit try-repo`).

try-repo installs the hooks as a user's `.pre-commit-config.yaml` would: it clones this project at a
commit, builds a virtualenv, `pip install .`s it there and runs `sealer scan` / `sealer check` on
what is staged in a scratch sealer repository. So the project is first snapshotted into a temp git
repository of its own (every file git sees here, committed or not, as a fresh CI clone has them).

The hook environment is installed from a local wheelhouse only (`PIP_NO_INDEX`, `PIP_FIND_LINKS`):
the project's dependencies and build requirements, downloaded once and kept under the temp dir,
keyed by those requirements, so later runs need no registry and take seconds. try-repo always
builds its environment in a store of its own, so PRE_COMMIT_HOME cannot cache it (it only gets the
log, kept out of the user's ~/.cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

import pytest
from conftest import SECRET, Repo, require_tool

PROJECT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def _pre_commit() -> str:
    """The pre-commit of this virtualenv (a test extra), or one on PATH."""
    here = Path(sys.executable).parent / "pre-commit"
    return str(here) if here.is_file() else require_tool("pre-commit")


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Wheels of everything `pip install .` of the project needs: its dependencies and its build
    requirements. Built once per set of requirements (through the registry or pip's cache)."""
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    reqs = sorted({*meta["project"]["dependencies"], *meta["build-system"]["requires"]})
    key = hashlib.sha256("\n".join([sys.version, sysconfig.get_platform(), *reqs]).encode()).hexdigest()[:16]
    house = Path(tempfile.gettempdir()) / f"sealer-test-wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    building = Path(tempfile.mkdtemp(prefix=f"{house.name}.", dir=house.parent))
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(building), *reqs],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        why = f"cannot fetch the hook's dependencies: {r.stderr.strip()[-500:]}"
        if IN_CI:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    (building / ".complete").touch()
    try:
        building.rename(house)
    except OSError:  # another session finished first: use its wheelhouse
        shutil.rmtree(building, ignore_errors=True)
    return house


@pytest.fixture
def project_snapshot(tmp_path: Path) -> Path:
    """This project as a git repository at one commit: every file git sees in the working tree
    (tracked, or untracked and not ignored), so local changes are tested too. try-repo would only
    pick up changes to tracked files, and a fresh CI clone has nothing else."""
    git = require_tool("git")
    listed = subprocess.run(
        [git, "-C", str(PROJECT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    snap = tmp_path / "project"
    for name in filter(None, listed.split("\0")):
        src = PROJECT / name
        if src.is_file() or src.is_symlink():  # a tracked file deleted here is left out
            (snap / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, snap / name, follow_symlinks=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-q", "-m", "snapshot"]):
        subprocess.run([git, *args], cwd=snap, env=env, check=True, capture_output=True, timeout=120)
    assert (snap / ".pre-commit-hooks.yaml").is_file()
    return snap


def try_repo(repo: Repo, project: Path, wheelhouse: Path) -> tuple[int, str]:
    """`pre-commit try-repo PROJECT` (every hook of the manifest) on what `repo` has staged."""
    env = repo.env(
        {
            "HOME": str(repo.home),  # no user git config, caches or pip config
            "GIT_CONFIG_NOSYSTEM": "1",
            "PRE_COMMIT_HOME": str(repo.tmp / "pre-commit-home"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    for k in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(k, None)
    r = subprocess.run(
        [_pre_commit(), "try-repo", str(project), "--color", "never"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = r.stdout + r.stderr
    if "An unexpected error has occurred" in out or r.returncode not in (0, 1):  # an install failure: show why
        with contextlib.suppress(OSError):
            out += "\n--- pre-commit.log ---\n" + (repo.tmp / "pre-commit-home/pre-commit.log").read_text()
    return r.returncode, out


def hook_line(out: str, hook: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"sealer {hook} ("))


def test_try_repo_blocks_keys_and_plaintext_and_passes_sealed_files(
    tmp_path: Path, project_snapshot: Path, wheelhouse: Path
) -> None:
    repo = Repo.create(tmp_path, "prod", keys=("prod",), commit="init")
    identity = next(line for line in repo.keys["prod"].read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))

    # Staged: an age private key and a plaintext Secret under prod's path. Both hooks refuse.
    repo.write("ops/prod.key", repo.keys["prod"].read_text())
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.git("add", "ops/prod.key", "deploy/prod/db.yaml")
    code, out = try_repo(repo, project_snapshot, wheelhouse)
    assert code == 1, out
    assert hook_line(out, "scan").endswith("Failed"), out
    assert hook_line(out, "check").endswith("Failed"), out
    assert "ops/prod.key:4: an age private key (AGE-SECRET-KEY-1…)" in out
    assert "deploy/prod/db.yaml:10: stringData.password: not sealed" in out
    assert identity not in out and "CANARY" not in out
    assert "Traceback" not in out

    # Key gone, the Secret sealed and staged; an unsealed edit of it left unstaged. pre-commit hides
    # unstaged changes while the hooks run, so the staged (sealed) content passes both, and the edit
    # is back in the working tree afterwards.
    repo.git("rm", "-q", "--cached", "ops/prod.key")
    (repo.root / "ops/prod.key").unlink()
    sealed = repo.seal("deploy/prod/db.yaml", SECRET)
    assert "ENC[sealer.v1," in sealed and "CANARY" not in sealed
    repo.git("add", "deploy/prod/db.yaml")
    edited = sealed.replace("stringData:\n", "stringData:\n  api: plain-CANARY\n")
    repo.write("deploy/prod/db.yaml", edited)
    code, out = try_repo(repo, project_snapshot, wheelhouse)
    assert code == 0, out
    assert hook_line(out, "scan").endswith("Passed"), out
    assert hook_line(out, "check").endswith("Passed"), out
    assert repo.read("deploy/prod/db.yaml") == edited
    assert repo.git("diff", "--cached", "--name-only").stdout.split() == ["deploy/prod/db.yaml"]
