"""What the hostile review of the new layout found, each through the doors it concerns.

The adversary holds only an environment's public key and can commit files.
"""

from __future__ import annotations

import json

from conftest import Repo

SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: app\nstringData:\n  password: pw-CANARY-9\n"


def _require_signatures(repo: Repo, env: str) -> None:
    cfg = repo.read(".sealer.yaml")
    repo.write(
        ".sealer.yaml",
        cfg.replace(
            f'      - "deploy/{env}/**"\n', f'      - "deploy/{env}/**"\n    policy:\n      require_signature: true\n'
        ),
    )
    repo.ok("signers", "generate", "alice", "--out", str(repo.keydir / "alice.txt"), "--env", env)


# --- a nested .sealer.yaml must not replace the environment's rules -------------------------------


def test_a_nested_configuration_is_refused_at_every_door(repo: Repo) -> None:
    _require_signatures(repo, "prod")
    # The attacker's own "repository" under deploy/: prod's real public key, no policy.
    repo.write("deploy/.sealer.yaml", 'version: 1\nenvironments:\n  prod:\n    paths: ["prod/**"]\n')
    repo.write("deploy/keys/prod.yaml", repo.read("keys/prod.yaml"))
    repo.write("deploy/prod/db.yaml", SECRET)
    key = str(repo.keys["prod"])
    marker = repo.tmp / "ran"
    deploy = repo.root / "deploy"
    for args, cwd in (
        (("unseal", "deploy/prod/db.yaml", "-i", key), None),
        (("unseal", "deploy/prod", "-i", key), None),
        (("exec", "deploy/prod/db.yaml", "-i", key, "--", "touch", str(marker)), None),
        (("unseal", "prod/db.yaml", "-i", key), deploy),  # from inside the attacker's tree
        (("seal", "prod/db.yaml"), deploy),
        (("check",), None),
        (("status",), None),
        (("reseal", "--env", "prod", "--dry-run"), None),
    ):
        r = repo.run(*args, cwd=cwd)
        assert r.returncode != 0, (args, r.stdout, r.stderr)
        assert "second .sealer.yaml" in r.stderr, (args, r.stderr)
        assert "CANARY" not in r.stdout + r.stderr
    assert not marker.exists()


def test_the_controller_refuses_a_commit_with_a_nested_configuration(repo: Repo) -> None:
    repo.seal("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/.sealer.yaml", 'version: 1\nenvironments:\n  prod:\n    paths: ["prod/**"]\n')
    repo.git_init(commit="nested")
    out = repo.tmp / "out"
    r = repo.run(
        "controller", "--repo", str(repo.root), "--env", "prod", "--target", f"dir:{out}", "--once",
        "--state-dir", str(repo.tmp / "state"), "-i", str(repo.keys["prod"]),
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "second .sealer.yaml" in r.stderr
    assert not out.exists()


# --- files the environment owns, whatever their name ---------------------------------------------


def test_odd_names_under_an_environment_are_its_files(repo: Repo) -> None:
    """kubectl applies `db.YAML` and a name with a newline; check must see them as prod's."""
    repo.write("deploy/prod/db.YAML", SECRET)
    repo.write("deploy/prod/x\n.yaml", SECRET)
    r = repo.run("check", "--output", "json")
    assert r.returncode == 1
    files = {p["file"] for p in json.loads(r.stdout)["problems"] if p["code"] == "plaintext"}
    assert files == {"deploy/prod/db.YAML", "deploy/prod/x\n.yaml"}
    repo.ok("seal", "deploy/prod/db.YAML")
    opened = repo.ok("unseal", "deploy/prod", "--env", "prod", "-i", str(repo.keys["prod"]), "--format", "json")
    assert "deploy/prod/db.YAML" in {item["file"] for item in json.loads(opened.stdout)}


# --- sealed values never set how programs load or run --------------------------------------------


def test_values_that_would_change_how_programs_run_are_refused(repo: Repo) -> None:
    marker = repo.tmp / "ran"
    for name in ("PATH", "LD_PRELOAD", "BASH_ENV", "PYTHONPATH", "NODE_OPTIONS", "SEALER_IDENTITY_COMMAND"):
        text = SECRET.replace("password: pw-CANARY-9", f"{name}: /tmp/evil-CANARY")
        repo.seal("deploy/prod/app.yaml", text)
        key = str(repo.keys["prod"])
        for args in (
            ("exec", "deploy/prod/app.yaml", "-i", key, "--", "touch", str(marker)),
            ("unseal", "deploy/prod/app.yaml", "-i", key, "--format", "dotenv"),
        ):
            line = repo.fail(*args, expect=[name])
            assert "CANARY" not in line
        assert not marker.exists()
    # Named one by one, a custodian can allow it; sealer's own identity variables never.
    repo.seal("deploy/prod/app.yaml", SECRET.replace("password: pw-CANARY-9", "NODE_OPTIONS: --max-old-space-size=64"))
    out = repo.ok(
        "unseal",
        "deploy/prod/app.yaml",
        "-i",
        str(repo.keys["prod"]),
        "--format",
        "dotenv",
        "--allow-env",
        "NODE_OPTIONS",
    )
    assert "NODE_OPTIONS=" in out.stdout
    repo.seal("deploy/prod/app.yaml", SECRET.replace("password: pw-CANARY-9", "SEALER_IDENTITY_COMMAND: id"))
    repo.fail(
        "exec",
        "deploy/prod/app.yaml",
        "-i",
        str(repo.keys["prod"]),
        "--allow-env",
        "SEALER_IDENTITY_COMMAND",
        "--",
        "true",
        expect=["never"],
    )


def test_exec_finds_the_command_with_the_callers_path(repo: Repo) -> None:
    """Even an allowed PATH value does not choose which program runs."""
    evil = repo.tmp / "evil-bin"
    evil.mkdir()
    fake = evil / "env"
    fake.write_text(f"#!/bin/sh\ntouch {repo.tmp / 'hijacked'}\n")
    fake.chmod(0o755)
    repo.seal("deploy/prod/app.yaml", SECRET.replace("password: pw-CANARY-9", f"PATH: {evil}"))
    r = repo.ok("exec", "deploy/prod/app.yaml", "-i", str(repo.keys["prod"]), "--allow-env", "PATH", "--", "env")
    assert f"PATH={evil}" in r.stdout  # the child got the value it was allowed to get ...
    assert not (repo.tmp / "hijacked").exists()  # ... but /usr/bin/env ran, found with our PATH


# --- structured outputs never merge two keys ------------------------------------------------------


def test_keys_that_collide_in_json_and_manifests_are_refused(repo: Repo) -> None:
    config = "settings:\n  0x1: a-CANARY\n  '1': b-CANARY\n"
    repo.seal("deploy/prod/app.yaml", config)
    key = str(repo.keys["prod"])
    for fmt in ("json", "dotenv"):
        r = repo.run("unseal", "deploy/prod/app.yaml", "-i", key, "--format", fmt)
        assert r.returncode == 1 and "CANARY" not in r.stdout + r.stderr, (fmt, r.stdout, r.stderr)
    assert "a-CANARY" in repo.ok("unseal", "deploy/prod/app.yaml", "-i", key, "--format", "yaml").stdout


# --- reseal opens values under the environment's rules, as unseal does ---------------------------


def test_reseal_does_not_launder_a_value_on_a_retired_key(repo: Repo) -> None:
    repo.seal("deploy/prod/db.yaml", SECRET)
    old_key = repo.keys["prod"]
    kid = json.loads(repo.ok("keys", "list", "--output", "json").stdout)
    old_kid = next(k["kid"] for k in kid if k["env"] == "prod" and k["state"] == "active")
    new_key = repo.rotate("prod")
    repo.ok("keys", "retire", "prod", old_kid, "--force")
    before = repo.read("deploy/prod/db.yaml")
    r = repo.run("reseal", "--env", "prod", "-i", str(old_key), "-i", str(new_key))
    assert r.returncode == 1
    assert "deploy/prod/db.yaml: stringData.password: is sealed only to retired" in r.stderr
    assert "Traceback" not in r.stderr and "CANARY" not in r.stdout + r.stderr
    assert repo.read("deploy/prod/db.yaml") == before


def test_writing_into_a_missing_directory_is_a_clear_error(repo: Repo) -> None:
    repo.write("deploy/prod/app.yaml", "settings:\n  token: t-CANARY\n")
    before = repo.snapshot()
    line = repo.fail("seal", "deploy/prod/app.yaml", "-o", "deploy/prod/missing/out.yaml", expect=["does not exist"])
    assert "deploy/prod/missing/out.yaml" in line
    assert repo.snapshot() == before
