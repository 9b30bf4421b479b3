"""Issue 14, item 10: plain Kubernetes manifests.

In a Kubernetes manifest (top-level `apiVersion` and `kind`) other than a Secret nothing is sealed
by default, and `check` (and `scan`) do not ask for it; a `.sealer.yaml` rule can still select
values; documents that are not manifests (Helm values, app config) keep every scalar sealed. The
rule lives in the document layer (`sealer._document.selects`), so seal, check, scan and status
agree. Real CLI, real files, real keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SECRET, Repo

DEPLOYMENT = """\
# the web tier: nothing secret here
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.42.0
          env:
            - name: LOG_LEVEL
              value: info
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
  database_password: cm-CANARY-5e1
"""

HELM_VALUES = """\
replicaCount: 2
database:
  host: db.internal
  password: helm-CANARY-9b2
"""

APP_CONFIG = """\
kind: AppConfig
listen: ":8080"
token: app-CANARY-3c4
"""


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path, "staging", "prod", keys=("staging", "prod"))


def check_json(repo: Repo) -> dict[str, object]:
    r = repo.run("check", "--output", "json")
    data = json.loads(r.stdout)
    assert data["ok"] is (r.returncode == 0), (r.stdout, r.stderr)
    return dict(data)


def problem_rows(repo: Repo) -> list[tuple[str, str, str | None]]:
    return [(p["file"], p["code"], p["path"]) for p in check_json(repo)["problems"]]  # type: ignore[attr-defined]


def test_seal_leaves_a_plain_deployment_as_it_is(repo: Repo) -> None:
    repo.write("deploy/prod/deployment.yaml", DEPLOYMENT)
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/prod/values.yaml", HELM_VALUES)
    r = repo.ok("seal", "deploy/prod/db.yaml", "deploy/prod/deployment.yaml", "deploy/prod/values.yaml")
    assert repo.read("deploy/prod/deployment.yaml") == DEPLOYMENT  # before: image, replicas, ... sealed
    assert "deploy/prod/deployment.yaml: nothing new to seal for prod; 0 already current" in r.stderr
    assert repo.read("deploy/prod/db.yaml").count("ENC[sealer.v1,") == 3  # the Secret: every data value
    assert repo.read("deploy/prod/values.yaml").count("ENC[sealer.v1,") == 3  # Helm values: every scalar
    assert "CANARY" not in repo.read("deploy/prod/db.yaml") + repo.read("deploy/prod/values.yaml")
    # The gate agrees with seal: three sealed files and a plain Deployment pass as they are.
    r = repo.ok("check")
    assert "checked 3 file(s), 6 value(s): no problems" in r.stderr


def test_check_and_scan_do_not_ask_for_plain_manifests(repo: Repo) -> None:
    repo.write("deploy/prod/deployment.yaml", DEPLOYMENT)
    repo.write("deploy/prod/config.yaml", CONFIGMAP)
    repo.write("deploy/prod/all.yaml", DEPLOYMENT + "---\n" + CONFIGMAP)
    assert check_json(repo) == {
        "ok": True,
        "files": 3,
        "values": 0,
        "unsealed": None,
        "problems": [],
        "warnings": [],
        "notes": [],
    }
    r = repo.run("scan", "deploy/prod/deployment.yaml")  # before: every scalar "not sealed"
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_a_secret_beside_a_deployment_in_one_file(repo: Repo) -> None:
    sealed = repo.seal("deploy/prod/app.yaml", DEPLOYMENT + "---\n" + SECRET)
    deployment, secret = sealed.split("---\n")
    assert deployment == DEPLOYMENT  # no token, and no sealer: block
    assert secret.count("ENC[sealer.v1,") == 3 and "\nsealer:\n  version: 1\n  env: prod\n" in secret
    assert check_json(repo)["ok"] is True
    out = repo.ok("unseal", "deploy/prod/app.yaml", "--format", "k8s", "-i", str(repo.keys["prod"])).stdout
    assert "kind: Deployment" in out and "password: pw-CANARY-7f3a9" in out


def test_a_rule_still_selects_values_of_a_manifest(repo: Repo) -> None:
    cfg = repo.root / ".sealer.yaml"
    cfg.write_text(cfg.read_text() + 'rules:\n  - files: "deploy/**/config.yaml"\n    encrypted_regex: "password$"\n')
    repo.write("deploy/prod/config.yaml", CONFIGMAP)
    repo.write("deploy/prod/deployment.yaml", DEPLOYMENT)  # no rule covers it: nothing asked
    assert problem_rows(repo) == [("deploy/prod/config.yaml", "plaintext", "data.database_password")]
    sealed = repo.seal("deploy/prod/config.yaml", CONFIGMAP)
    assert sealed.count("ENC[sealer.v1,") == 1 and "  greeting: hello\n" in sealed and "CANARY" not in sealed
    assert check_json(repo)["ok"] is True
    out = repo.ok("unseal", "deploy/prod/config.yaml", "--format", "k8s", "-i", str(repo.keys["prod"])).stdout
    assert "database_password: cm-CANARY-5e1" in out


def test_a_rule_without_regexes_selects_a_manifests_values_but_never_its_header(repo: Repo) -> None:
    cfg = repo.root / ".sealer.yaml"
    cfg.write_text(cfg.read_text() + 'rules:\n  - files: "deploy/prod/config.yaml"\n')
    sealed = repo.seal("deploy/prod/config.yaml", CONFIGMAP)
    assert sealed.count("ENC[sealer.v1,") == 2
    assert sealed.startswith("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n")


def test_documents_that_are_not_manifests_keep_every_scalar_sealed(repo: Repo) -> None:
    repo.write("deploy/prod/values.yaml", HELM_VALUES)
    repo.write("deploy/prod/app.yaml", APP_CONFIG)  # a `kind` without `apiVersion` is no manifest
    assert sorted(problem_rows(repo)) == sorted(
        [
            ("deploy/prod/app.yaml", "plaintext", "kind"),
            ("deploy/prod/app.yaml", "plaintext", "listen"),
            ("deploy/prod/app.yaml", "plaintext", "token"),
            ("deploy/prod/values.yaml", "plaintext", "replicaCount"),
            ("deploy/prod/values.yaml", "plaintext", "database.host"),
            ("deploy/prod/values.yaml", "plaintext", "database.password"),
        ]
    )
    repo.ok("seal", "deploy/prod/values.yaml", "deploy/prod/app.yaml")
    assert repo.read("deploy/prod/app.yaml").count("ENC[sealer.v1,") == 3
    assert check_json(repo)["ok"] is True


def test_tokens_in_a_manifest_stay_values_when_no_rule_covers_it(repo: Repo) -> None:
    """A manifest sealed under a rule (or by an older sealer, which sealed every scalar) still
    opens, is still checked and is counted by status after the rule is gone."""
    cfg = repo.root / ".sealer.yaml"
    plain_cfg = cfg.read_text()
    cfg.write_text(plain_cfg + 'rules:\n  - files: "deploy/prod/config.yaml"\n')
    sealed = repo.seal("deploy/prod/config.yaml", CONFIGMAP)
    cfg.write_text(plain_cfg)
    assert repo.ok("seal", "deploy/prod/config.yaml") and repo.read("deploy/prod/config.yaml") == sealed
    assert check_json(repo)["values"] == 2
    st = json.loads(repo.ok("status", "--env", "prod", "--output", "json").stdout)[0]
    assert st["values"] == 2 and st["files"] == 1
    out = repo.ok("unseal", "deploy/prod/config.yaml", "--format", "k8s", "-i", str(repo.keys["prod"])).stdout
    assert "greeting: hello" in out and "database_password: cm-CANARY-5e1" in out
    # and a token moved inside it is still caught
    repo.write("deploy/prod/config.yaml", sealed.replace("  greeting:", "  moved:", 1))
    assert problem_rows(repo) == [("deploy/prod/config.yaml", "moved", "data.moved")]


def test_set_still_seals_one_chosen_value_of_a_manifest(repo: Repo) -> None:
    repo.write("deploy/prod/config.yaml", CONFIGMAP.replace("  database_password: cm-CANARY-5e1\n", ""))
    repo.ok("set", "deploy/prod/config.yaml", "data.database_password", stdin="set-CANARY-77")
    text = repo.read("deploy/prod/config.yaml")
    assert text.count("ENC[sealer.v1,") == 1 and "  greeting: hello\n" in text
    assert check_json(repo)["ok"] is True
    out = repo.ok("unseal", "deploy/prod/config.yaml", "--format", "k8s", "-i", str(repo.keys["prod"])).stdout
    assert "database_password: set-CANARY-77" in out
