"""Issue 14, item 11: `sealer check` is the CI gate, so what the deploy refuses it must refuse first.

An empty or missing `.sealer.yaml` fails it (as the controller does); a sealed file whose aliases
expand past the unsealer's cap fails it without a key (the unsealer's own structural check); a seal
time in the future is refused by check, status, unseal, exec and the controller (the environment's
rule, `EnvRules`, with a small clock skew); a pathological glob in `.sealer.yaml` costs linear time;
and `sealer status` says "and N more" when it cuts a list. Real CLI, real files, real keys.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SECRET, Repo, assert_clean_failure
from test_controller import GitOps

DAY = 86400
PATHOLOGICAL = "**a**a**a**a**a**a**a**b"

# Each level multiplies by ten: 10**6 leaves once expanded, past the unsealer's MAX_NODES (200,000),
# in a few hundred bytes. None of it is a sealed value, so the loader (which never expands aliases) takes it.
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10) if prev else ', '.join(['x'] * 10)}]\n"
    for prev, name in zip(["", "b0", "b1", "b2", "b3", "b4"], ["b0", "b1", "b2", "b3", "b4", "b5"], strict=True)
)


class Clocked(Repo):
    """The harness, plus the real CLI run on a machine whose clock is off by `offset` seconds."""

    def run_at(self, offset: int, *args: str) -> subprocess.CompletedProcess[str]:
        code = (
            "import sys, time\n"
            "_real = time.time\n"
            f"time.time = lambda: _real() + {offset}\n"
            "from sealer._cli import main\n"
            "sys.argv[0] = 'sealer'\n"
            "main()\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
        )

    def seal_at(self, offset: int, rel: str, text: str) -> str:
        self.write(rel, text)
        r = self.run_at(offset, "seal", rel)
        assert r.returncode == 0, (r.stdout, r.stderr)
        return self.read(rel)

    def configure(self, prod_extra: str = "") -> None:
        self.write(
            ".sealer.yaml",
            "version: 1\nenvironments:\n"
            '  staging:\n    paths: ["deploy/staging/**"]\n'
            f'  prod:\n    paths: ["deploy/prod/**"]\n{prod_extra}',
        )


@pytest.fixture
def repo(tmp_path: Path) -> Clocked:
    return Clocked.create(tmp_path, "staging", "prod", keys=("staging", "prod"))


def json_check(repo: Repo, *args: str) -> dict[str, object]:
    r = repo.run("check", "--output", "json", *args)
    data = json.loads(r.stdout)
    assert data["ok"] is (r.returncode == 0), (r.stdout, r.stderr)
    return dict(data)


def codes(data: dict[str, object]) -> list[tuple[str, str | None]]:
    return [(str(p["code"]), p["path"]) for p in data["problems"]]  # type: ignore[attr-defined,index]


# --- an empty or missing .sealer.yaml --------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "version: 1\n", "version: 1\nenvironments: {}\n"])
def test_a_configuration_without_environments_fails_check(repo: Clocked, text: str) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)  # plaintext that no environment claims any more
    repo.write(".sealer.yaml", text)
    r = repo.run("check")
    assert r.returncode == 1, (r.stdout, r.stderr)  # before: "checked 0 file(s) ... no problems", exit 0
    assert r.stdout.splitlines() == [
        ".sealer.yaml: defines no environment, so nothing is checked"
        " (run: sealer init --env NAME, or restore the file from git)"
    ]
    assert r.stderr.strip() == "sealer: error: check found 1 problem(s) in 1 file(s)"
    data = json_check(repo)
    assert data["files"] == 0 and codes(data) == [("no-environments", None)]


def test_an_environment_without_paths_fails_check(repo: Clocked) -> None:
    repo.write(".sealer.yaml", 'version: 1\nenvironments:\n  staging:\n    paths: ["deploy/staging/**"]\n  prod: {}\n')
    assert codes(json_check(repo)) == [("no-paths", None)]
    line = repo.run("check").stdout.strip()
    assert line == ".sealer.yaml: environment prod has no paths, so none of its files is checked"


def test_a_missing_configuration_fails_check(repo: Clocked) -> None:
    (repo.root / ".sealer.yaml").unlink()
    assert_clean_failure(repo.run("check"), "no .sealer.yaml found")
    assert_clean_failure(repo.run("check", "--output", "json"), "no .sealer.yaml found")


def test_a_repository_with_environments_and_no_files_still_passes(repo: Clocked) -> None:
    assert "checked 0 file(s)" in repo.ok("check").stderr  # nothing to seal yet is not a broken gate


# --- the unsealer's structural checks -------------------------------------------------------------


def test_check_refuses_an_alias_bomb_the_deploy_would_refuse(repo: Clocked) -> None:
    sealed = repo.seal("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/prod/db.yaml", sealed + BOMB)  # beside the sealed values, in the same document
    key = str(repo.keys["prod"])
    deploy = repo.fail("unseal", "deploy/prod/db.yaml", "--format", "k8s", "-i", key)
    assert "more than 200000 values once aliases are expanded" in deploy

    r = repo.run("check")  # no key: before the fix this passed, exit 0
    assert r.returncode == 1, (r.stdout, r.stderr)
    refused = deploy.removeprefix("sealer: error: deploy/prod/db.yaml: ")
    assert r.stdout.splitlines() == [f"deploy/prod/db.yaml: refused at deploy: {refused}"]
    assert codes(json_check(repo)) == [("structure", None)]
    assert "refused at deploy" in repo.run("check", "-i", key).stdout


def test_check_refuses_a_scalar_the_deploy_cannot_read(repo: Clocked) -> None:
    sealed = repo.seal("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/prod/db.yaml", sealed + "replicas: !!int many\n")
    deploy = repo.fail("unseal", "deploy/prod/db.yaml", "--format", "json", "-i", str(repo.keys["prod"]))
    assert "replicas: cannot read this int value as data" in deploy
    assert codes(json_check(repo)) == [("structure", None)]


def test_small_anchors_outside_sealed_values_still_pass(repo: Clocked) -> None:
    sealed = repo.seal("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/prod/db.yaml", sealed + "x-labels: &l {app: db}\nx-copy: *l\n")
    assert json_check(repo)["ok"] is True
    repo.ok("unseal", "deploy/prod/db.yaml", "--format", "k8s", "-i", str(repo.keys["prod"]))


def test_a_plain_file_is_not_held_to_the_unsealers_rules(repo: Clocked) -> None:
    """The unsealer and the controller never open a file without sealed values; neither does this check."""
    repo.write("deploy/prod/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\n" + BOMB)
    assert json_check(repo)["ok"] is True


# --- a seal time in the future --------------------------------------------------------------------


def test_a_seal_time_in_the_future_is_refused_by_check_status_unseal_and_exec(repo: Clocked) -> None:
    repo.configure("    policy:\n      max_secret_age: 30d\n")
    repo.seal_at(DAY, "deploy/prod/db.yaml", SECRET)  # a developer's clock a day ahead
    key = str(repo.keys["prod"])

    r = repo.run("check")
    assert r.returncode == 1, (r.stdout, r.stderr)  # before: no problems
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all(
        re.fullmatch(
            r"deploy/prod/db\.yaml: [^:]+: sealed at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in the future \(more than 5"
            r" minutes ahead of this clock\): refused at deploy, set it again with a correct clock",
            line,
        )
        for line in lines
    ), lines
    assert {c for c, _ in codes(json_check(repo))} == {"future"}

    for args in (
        ("unseal", "deploy/prod/db.yaml", "--format", "yaml", "-i", key),
        ("unseal", "deploy/prod", "--format", "k8s", "-i", key),
        ("exec", "deploy/prod/db.yaml", "-i", key, "--", sys.executable, "-c", "print('ran')"),
    ):
        line = repo.fail(*args, expect=["deploy/prod/db.yaml", "in the future", "set it again"])
        assert "ran" not in line

    r = repo.run("status", "--env", "prod")
    assert r.returncode == 1
    assert "  sealed in the future: deploy/prod/db.yaml stringData.username" in r.stdout
    assert "POLICY BREACH: 3 value(s) with a seal time in the future (refused at deploy)" in r.stdout
    st = json.loads(repo.run("status", "--env", "prod", "--output", "json").stdout)[0]
    assert len(st["future_values"]) == 3 and st["old_values"] == []


def test_a_future_seal_time_does_not_escape_revoke_before(repo: Clocked) -> None:
    """After a leak the custodian revokes everything sealed until now; a value stamped tomorrow is
    'after' that, so only the future rule stops it."""
    repo.seal_at(DAY, "deploy/prod/db.yaml", SECRET)
    repo.ok("keys", "revoke-before", "prod", "now")
    repo.fail(
        "unseal", "deploy/prod/db.yaml", "--format", "yaml", "-i", str(repo.keys["prod"]), expect=["in the future"]
    )
    assert {c for c, _ in codes(json_check(repo))} == {"future"}


def test_a_small_clock_skew_is_allowed(repo: Clocked) -> None:
    repo.configure("    policy:\n      max_secret_age: 30d\n")
    repo.seal_at(120, "deploy/prod/db.yaml", SECRET)  # two minutes ahead: within the allowed skew
    assert json_check(repo)["ok"] is True
    repo.ok("status", "--env", "prod")
    out = repo.ok("unseal", "deploy/prod/db.yaml", "--format", "yaml", "-i", str(repo.keys["prod"])).stdout
    assert "pw-CANARY-7f3a9" in out


class ClockedOps(GitOps, Clocked):
    """The controller's test repository (tests/test_controller.py), with the clocked CLI."""


def test_the_controller_refuses_a_seal_time_in_the_future(tmp_path: Path) -> None:
    gitops = ClockedOps(tmp_path)
    assert gitops.once().returncode == 0  # the good commit is applied
    applied = sorted(p.name for p in gitops.out.iterdir())
    gitops.seal_at(DAY, "deploy/prod/db.yaml", SECRET)
    gitops.commit("sealed on a machine whose clock is a day ahead")
    r = gitops.once()
    assert r.returncode == 1, r.stderr
    assert "in the future" in r.stderr and "deploy/prod/db.yaml" in r.stderr, r.stderr
    assert sorted(p.name for p in gitops.out.iterdir()) == applied  # the last good output stays


# --- globs ----------------------------------------------------------------------------------------


def test_a_pathological_glob_does_not_hang_check(repo: Clocked) -> None:
    """Each `**` of this glob was a `.*` for Python's backtracking regex: O(n^8) per path. It is a
    glob of environment paths, of a value rule and of scan excludes, matched against long paths."""
    repo.write(
        ".sealer.yaml",
        "version: 1\nenvironments:\n"
        f'  prod:\n    paths: ["deploy/prod/**", "{PATHOLOGICAL}"]\n'
        f'  staging:\n    paths: ["deploy/staging/**"]\n'
        f'rules:\n  - files: "{PATHOLOGICAL}"\n    encrypted_regex: "password$"\n'
        f'scan:\n  exclude: ["{PATHOLOGICAL}"]\n',
    )
    long = "deploy/prod/" + "a" * 200 + ".yaml"
    repo.write(long, "password: x\n")
    repo.write("deploy/staging/" + "a/" * 100 + "b.yaml", "password: x\n")
    start = time.monotonic()
    r = subprocess.run(
        [*map(str, [Path(sys.executable).parent / "sealer"]), "check"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        env=repo.env(),
        timeout=10,  # before the fix: hours
    )
    assert time.monotonic() - start < 10
    assert r.returncode == 1 and f"{long}: password: not sealed" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run(
        [str(Path(sys.executable).parent / "sealer"), "scan", long],
        cwd=repo.root,
        capture_output=True,
        text=True,
        env=repo.env(),
        timeout=10,
    )
    assert r.returncode == 1 and f"{long}:1: " in r.stdout, (r.stdout, r.stderr)  # not excluded: no `b` at the end


def test_glob_matching_is_linear_in_the_path() -> None:
    code = (
        "from sealer._config import compile_glob\n"
        f"g = compile_glob({PATHOLOGICAL!r})\n"
        "assert not g.fullmatch('a' * 20000)\n"
        "assert g.fullmatch('a' * 20000 + 'b')\n"
        "assert g.fullmatch('/'.join(['a'] * 5000) + '/b')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=5)


def _reference(pattern: str) -> re.Pattern[str]:
    """docs/format.md §2's glob as a regex, written out here independently (fine for short inputs)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def test_globs_mean_what_they_meant() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from sealer._config import compile_glob

    @given(st.text("ab/*?.", max_size=9), st.text("ab/.\n", max_size=10))
    def same(pattern: str, path: str) -> None:
        assert compile_glob(pattern).fullmatch(path) == bool(_reference(pattern).fullmatch(path)), (pattern, path)

    same()
    for pattern, path, want in (
        ("deploy/prod/**", "deploy/prod/a/b.yaml", True),
        ("deploy/**/values*.yaml", "deploy/values.yaml", True),
        ("deploy/**/values*.yaml", "deploy/prod/eu/values-eu.yaml", True),
        ("deploy/*/db.yaml", "deploy/a/b/db.yaml", False),
        ("deploy/???/x", "deploy/dev/x", True),
        ("****/x", "x", True),
        ("***/x", "ax", False),
    ):
        assert compile_glob(pattern).fullmatch(path) is want, (pattern, path)


# --- status lists ---------------------------------------------------------------------------------


def test_status_says_how_many_it_left_out(repo: Clocked) -> None:
    repo.configure("    policy:\n      max_secret_age: 30d\n")
    many = "".join(f"  v{i:02d}: value-{i}\n" for i in range(13))
    body = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: many\nstringData:\n" + many
    repo.seal_at(-100 * DAY, "deploy/prod/many.yaml", body)
    for i in range(4):
        repo.seal(f"deploy/prod/s{i}.yaml", SECRET.replace("name: db", f"name: s{i}"))
    repo.rotate("prod")  # every file is now on a retiring key

    r = repo.run("status", "--env", "prod")
    assert r.returncode == 1
    too_old = [line for line in r.stdout.splitlines() if line.startswith("  too old: ")]
    assert len(too_old) == 11, r.stdout
    assert too_old[-1] == "  too old: and 3 more (sealer status --output json lists all)"
    assert re.search(
        r"  still on retiring key [0-9a-f]{16}: 5 file\(s\), e\.g\. deploy/prod/many\.yaml and 4 more\n", r.stdout
    )
    st = json.loads(repo.run("status", "--env", "prod", "--output", "json").stdout)[0]
    assert len(st["old_values"]) == 13  # the JSON lists all of them
