"""Shared test helpers: the repository/CLI harness (`Repo`, fixtures `repo` and `git_repo`),
`assert_clean_failure`, `snapshot` and `require_tool`.

`Repo` is a real sealer repository in a temp dir, driven through the real `sealer` CLI in a child
process. Nothing of the developer's environment reaches that process as configuration: `SEALER_*`
and `GIT_*` variables are dropped and the config dir is the repository's own, so no identity source
is visible to the CLI unless a test passes one. A test file that needs more (the controller, leak
canaries, rotation helpers) subclasses `Repo` in that file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest

if TYPE_CHECKING:
    import git

SEALER = str(Path(sys.executable).parent / "sealer")
SECRET = """\
# prod database
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
type: Opaque
stringData:
  username: app          # not secret, but sealed anyway
  password: "pw-CANARY-7f3a9"
data:
  tls.crt: aGVsbG8gd29ybGQ=
"""


def require_tool(name: str) -> str:
    """Path of an external tool the test needs.

    Skipped locally when the tool is missing, but a failure in CI (`CI=true`): an interop test that
    silently skips there proves nothing.
    """
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not on PATH", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(name="require_tool")
def require_tool_fixture() -> Callable[[str], str]:
    """`require_tool(name)` as a fixture, for tests that prefer not to import from conftest."""
    return require_tool


def assert_clean_failure(r: subprocess.CompletedProcess[str], *needles: str, code: int | None = 1) -> str:
    """One line on stderr, `sealer: error: …`, naming every needle; exit `code` (None: any non-zero);
    no traceback, no internal error, no CANARY anywhere in the output. Returns the line."""
    assert r.returncode != 0 if code is None else r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("sealer: error: "), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "CANARY" not in r.stderr + r.stdout
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (outside `.git`) by relative path, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


class Repo:
    """A sealer repository at `tmp/repo`, its config dir `tmp/home`, private keys in `tmp/keys`.

    `keys[env]` is the newest key file made for `env` through `generate`/`rotate`, `all_keys[env]`
    all of them, oldest first. `env` adds variables to every command's environment."""

    def __init__(self, tmp: Path, *, root: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.root = root or tmp / "repo"
        self.home = tmp / "home"
        self.keydir = tmp / "keys"
        self.extra_env = dict(env or {})
        self.keys: dict[str, Path] = {}
        self.all_keys: dict[str, list[Path]] = {}
        self._git: git.Repo | None = None

    @classmethod
    def create(cls, tmp: Path, *envs: str, keys: Iterable[str] = (), commit: str | None = None, **kw: Any) -> Self:
        """`sealer init` for `envs`, a key for each of `keys`; with `commit`, a git repository
        holding it all in one commit of that message."""
        r = cls(tmp, **kw)
        r.init(*envs, keys=keys)
        if commit is not None:
            r.git_init(commit=commit)
        return r

    def init(self, *envs: str, keys: Iterable[str] = ()) -> Self:
        for d in (self.root, self.home, self.keydir):
            d.mkdir(parents=True, exist_ok=True)
        self.ok("init", *(a for e in envs for a in ("--env", e)))
        for e in keys:
            self.generate(e)
        return self

    # --- the CLI -----------------------------------------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("SEALER_", "GIT_"))}
        full["SEALER_CONFIG_DIR"] = str(self.home)
        full.update(self.extra_env)
        full.update(extra or {})
        return full

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SEALER, *args],
            cwd=cwd or self.root,
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=120,
        )

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        r = self.run(*args, **kw)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def fail(self, *args: str, expect: Iterable[str] = (), code: int | None = 1, **kw: Any) -> str:
        """Run, and `assert_clean_failure` with the `expect` needles; the error line."""
        return assert_clean_failure(self.run(*args, **kw), *expect, code=code)

    # --- files -------------------------------------------------------------------------------------

    def write(self, rel: str, data: str | bytes) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
        return p

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def seal(self, rel: str, text: str) -> str:
        """Write `text` to `rel`, `sealer seal` it; the sealed text."""
        self.write(rel, text)
        self.ok("seal", rel)
        return self.read(rel)

    def snapshot(self) -> dict[str, bytes]:
        return snapshot(self.root)

    # --- keys --------------------------------------------------------------------------------------

    def generate(self, env: str) -> Path:
        key = self.keydir / f"{env}.txt"
        self.ok("keys", "generate", env, "--out", str(key))
        self.keys[env] = key
        self.all_keys[env] = [key]
        return key

    def rotate(self, env: str) -> Path:
        key = self.keydir / f"{env}-{len(self.all_keys[env]) + 1}.txt"
        self.ok("keys", "rotate", env, "--out", str(key))
        self.keys[env] = key
        self.all_keys[env].append(key)
        return key

    # --- git ---------------------------------------------------------------------------------------

    def git(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The git CLI in the repository; no user or system git config (HOME is the config dir)."""
        full = self.env({"HOME": str(self.home), "GIT_CONFIG_NOSYSTEM": "1", **(env or {})})
        r = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, env=full, timeout=120)
        if check:
            assert r.returncode == 0, (args, r.stderr)
        return r

    def git_init(self, commit: str | None = "initial") -> git.Repo:
        """`git init` (branch main, an identity of its own, no signing); with `commit`, commit all."""
        self.git("init", "-q", "-b", "main")
        for key, value in (("user.name", "t"), ("user.email", "t@example.com"), ("commit.gpgsign", "false")):
            self.git("config", key, value)
        if commit is not None:
            self.commit(commit)
        return self.git_repo

    def commit(self, message: str) -> str:
        """Commit everything (`git add -A`); the new commit's hexsha."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    @property
    def git_repo(self) -> git.Repo:
        """The repository through gitpython."""
        if self._git is None:
            import git

            self._git = git.Repo(self.root)
        return self._git


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """Environments dev, staging and prod; keys for staging and prod."""
    return Repo.create(tmp_path, "dev", "staging", "prod", keys=("staging", "prod"))


@pytest.fixture
def git_repo(tmp_path: Path) -> Repo:
    """Environments staging and prod with their keys, in a git repository, all committed."""
    return Repo.create(tmp_path, "staging", "prod", keys=("staging", "prod"), commit="init")


# --- hypothesis profiles ---------------------------------------------------------------------------
# `ci`: bounded, loaded when CI=true (the whole suite stays fast). `long`: what `make fuzz` runs
# (HYPOTHESIS_PROFILE=long). Tests that set their own max_examples keep it; the fuzz tests
# (tests/test_fuzz.py) take theirs from the profile. HYPOTHESIS_PROFILE wins over CI.
from hypothesis import HealthCheck, settings  # noqa: E402

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev"))
