"""References resolve before deploy (issue 12, items 1 and 2): `sealer check` fails on a workload
referencing a Secret or key its environment does not provide, and `sealer refs` maps every key to
its consumers. Real CLI, real keys, real sealed files, the real `kubectl kustomize`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo, assert_clean_failure, require_tool

DB = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
stringData:
  password: pw-CANARY-1
  user: app
  legacy_token: old-CANARY-2
"""

REGCRED = """\
apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: shop
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {}}'
"""

# Every reference form, once each, in the containers of one pod spec.
FORMS: dict[str, str] = {
    "env": """
      containers:
        - name: web
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: db, key: password}
""",
    "envFrom": """
      containers:
        - name: web
          envFrom:
            - secretRef: {name: db}
""",
    "volume": """
      containers:
        - name: web
          volumeMounts: [{name: creds, mountPath: /creds}]
      volumes:
        - name: creds
          secret: {secretName: db}
""",
    "volume-items": """
      containers:
        - name: web
          volumeMounts: [{name: creds, mountPath: /creds}]
      volumes:
        - name: creds
          secret:
            secretName: db
            items: [{key: password, path: pw}]
""",
    "projected": """
      containers:
        - name: web
          volumeMounts: [{name: all, mountPath: /all}]
      volumes:
        - name: all
          projected:
            sources:
              - configMap: {name: settings}
              - secret:
                  name: db
                  items: [{key: user, path: user}]
""",
    "imagePullSecrets": """
      imagePullSecrets: [{name: regcred}]
      containers:
        - name: web
""",
    "initContainers": """
      initContainers:
        - name: migrate
          env:
            - name: PW
              valueFrom: {secretKeyRef: {name: db, key: password}}
      containers:
        - name: web
""",
    "ephemeralContainers": """
      containers:
        - name: web
      ephemeralContainers:
        - name: debug
          envFrom: [{secretRef: {name: db}}]
""",
}
# What each form, pointed at something absent, must be reported as: (code, container, how, Secret, key).
BROKEN: dict[str, tuple[str, str, str, str, str | None]] = {
    "env": ("missing-key", "web", "env DB_PASSWORD", "db", "pasword"),
    "envFrom": ("missing-secret", "web", "envFrom", "dbx", None),
    "volume": ("missing-secret", "web", "volume creds", "dbx", None),
    "volume-items": ("missing-key", "web", "volume creds", "db", "pasword"),
    "projected": ("missing-key", "web", "projected volume all", "db", "usr"),
    "imagePullSecrets": ("missing-secret", "", "imagePullSecrets", "regcredx", None),
    "initContainers": ("missing-key", "migrate", "env PW", "db", "pasword"),
    "ephemeralContainers": ("missing-secret", "debug", "envFrom", "dbx", None),
}


def break_form(form: str, spec: str) -> str:
    code, _c, _how, secret, key = BROKEN[form]
    if code == "missing-key":
        original = {"pasword": "password", "usr": "user"}[str(key)]
        return spec.replace(f"key: {original}", f"key: {key}")
    return spec.replace(f"name: {secret[:-1]}}}", f"name: {secret}}}").replace(
        f"secretName: {secret[:-1]}}}", f"secretName: {secret}}}"
    )


POD_PATHS = {
    "Pod": "spec:\n  {}",
    "Deployment": "spec:\n  template:\n    spec:\n{}",
    "StatefulSet": "spec:\n  template:\n    spec:\n{}",
    "DaemonSet": "spec:\n  template:\n    spec:\n{}",
    "ReplicaSet": "spec:\n  template:\n    spec:\n{}",
    "Job": "spec:\n  template:\n    spec:\n{}",
    "CronJob": "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
}


def workload(kind: str, spec: str, name: str = "web", namespace: str | None = "shop") -> str:
    """A workload of `kind` whose pod spec is `spec` (written at the indentation of a Deployment's)."""
    lines = [line[6:] for line in spec.strip("\n").splitlines()]
    depth = {"Pod": 2, "CronJob": 10}.get(kind, 6)
    body = "\n".join(" " * depth + line for line in lines)
    head = POD_PATHS[kind].split("\n")
    md = f"metadata:\n  name: {name}\n" + (f"  namespace: {namespace}\n" if namespace else "")
    api = {"Pod": "v1", "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
    return f"apiVersion: {api}\nkind: {kind}\n{md}" + "\n".join(head[:-1]) + "\n" + body + "\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo.create(tmp_path, "staging", "prod", keys=("staging", "prod"))
    r.seal("deploy/prod/db.yaml", DB)
    r.seal("deploy/prod/regcred.yaml", REGCRED)
    return r


def check_json(repo: Repo, *args: str, **kw: Any) -> dict[str, Any]:
    r = repo.run("check", *args, "--output", "json", **kw)
    data = json.loads(r.stdout)
    assert data["ok"] is (r.returncode == 0), (r.stdout, r.stderr)
    assert "CANARY" not in r.stdout + r.stderr
    return dict(data)


def ref_rows(repo: Repo, *args: str, **kw: Any) -> list[tuple[Any, ...]]:
    rows = check_json(repo, *args, **kw)["problems"]
    return [
        (p["file"], p["code"], p.get("workload"), p.get("containers"), p.get("how"), p.get("secret"), p.get("key"))
        for p in rows
    ]


def refs_json(repo: Repo, *args: str, **kw: Any) -> dict[str, Any]:
    r = repo.ok("refs", "--output", "json", *args, **kw)
    assert "CANARY" not in r.stdout + r.stderr
    maps = json.loads(r.stdout)
    return {m["env"]: m for m in maps}


# --- check: every form, every kind -----------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_reference_form_resolves_and_a_broken_one_is_one_line(repo: Repo, form: str) -> None:
    repo.write("deploy/prod/web.yaml", workload("Deployment", FORMS[form]))
    assert check_json(repo)["problems"] == []
    repo.write("deploy/prod/web.yaml", workload("Deployment", break_form(form, FORMS[form])))
    code, container, how, secret, key = BROKEN[form]
    assert ref_rows(repo) == [
        ("deploy/prod/web.yaml", code, "Deployment/web", [container] if container else [], how, secret, key)
    ]
    r = repo.run("check")
    assert r.returncode == 1
    (line,) = r.stdout.splitlines()
    who = f"container {container}" if container else "pod"
    assert line.startswith(f"deploy/prod/web.yaml: Deployment shop/web, {who}: {how}: ")
    assert (f"no key {key!r}" if key else f"no Secret shop/{secret} in prod") in line
    assert r.stderr.strip().endswith("check found 1 problem(s) in 1 file(s)")


@pytest.mark.parametrize("kind", sorted(POD_PATHS))
def test_every_workload_kind_has_its_pod_spec_read(repo: Repo, kind: str) -> None:
    spec = FORMS["env"]
    repo.write("deploy/prod/w.yaml", workload(kind, spec))
    assert check_json(repo)["ok"] is True
    repo.write("deploy/prod/w.yaml", workload(kind, spec.replace("key: password", "key: nope")))
    assert ref_rows(repo) == [
        ("deploy/prod/w.yaml", "missing-key", f"{kind}/web", ["web"], "env DB_PASSWORD", "db", "nope")
    ]


def test_a_volume_is_attributed_to_the_containers_that_mount_it(repo: Repo) -> None:
    spec = """
      containers:
        - name: web
          volumeMounts: [{name: creds, mountPath: /a}]
        - name: sidecar
          volumeMounts: [{name: creds, mountPath: /b}]
        - name: other
      volumes:
        - name: creds
          secret: {secretName: gone}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    rows = ref_rows(repo)
    assert rows == [
        ("deploy/prod/web.yaml", "missing-secret", "Deployment/web", ["web", "sidecar"], "volume creds", "gone", None)
    ]


def test_optional_references_are_no_problem_but_the_map_shows_them(repo: Repo) -> None:
    spec = """
      containers:
        - name: web
          env:
            - name: A
              valueFrom: {secretKeyRef: {name: db, key: absent, optional: true}}
            - name: B
              valueFrom: {secretKeyRef: {name: nowhere, key: k, optional: true}}
          envFrom: [{secretRef: {name: nowhere, optional: true}}]
      volumes:
        - name: v
          secret: {secretName: nowhere, optional: true}
        - name: p
          projected: {sources: [{secret: {name: db, optional: true, items: [{key: absent2, path: x}]}}]}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    assert check_json(repo)["problems"] == []
    m = refs_json(repo, "--env", "prod")["prod"]
    missing = sorted((x["how"], x["secret"], x["key"], x["optional"], x["code"]) for x in m["missing"])
    assert missing == [
        ("env A", "db", "absent", True, "missing-key"),
        ("env B", "nowhere", "k", True, "missing-secret"),
        ("envFrom", "nowhere", None, True, "missing-secret"),
        ("projected volume p", "db", "absent2", True, "missing-key"),
        ("volume v", "nowhere", None, True, "missing-secret"),
    ]
    text = repo.ok("refs", "--env", "prod").stdout
    assert text.count("optional, missing: deploy/prod/web.yaml: ") == 5
    # optional: false is not optional
    repo.write(
        "deploy/prod/web.yaml",
        workload("Deployment", spec.replace("absent, optional: true", "absent, optional: false")),
    )
    assert [r[1:] for r in ref_rows(repo)] == [("missing-key", "Deployment/web", ["web"], "env A", "db", "absent")]


def test_namespaces_must_match_and_an_unset_one_is_default(repo: Repo) -> None:
    repo.write("deploy/prod/web.yaml", workload("Deployment", FORMS["env"], namespace="other"))
    assert [r[1] for r in ref_rows(repo)] == ["missing-secret"]
    assert "no Secret other/db in prod" in repo.run("check").stdout
    # No namespace on either side: both are in default.
    repo.seal("deploy/prod/plain-ns.yaml", DB.replace("  namespace: shop\n", "").replace("name: db", "name: dbd"))
    spec = FORMS["env"].replace("name: db,", "name: dbd,")
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec, namespace=None))
    assert check_json(repo)["ok"] is True
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec, namespace="default"))
    assert check_json(repo)["ok"] is True
    repo.write("deploy/prod/web.yaml", workload("Deployment", FORMS["env"], namespace=None))  # db is in shop
    assert "no Secret default/db in prod" in repo.run("check").stdout


def test_a_secret_of_another_environment_does_not_count(repo: Repo) -> None:
    repo.write("deploy/staging/web.yaml", workload("Deployment", FORMS["env"]))
    rows = ref_rows(repo)
    assert rows == [
        ("deploy/staging/web.yaml", "missing-secret", "Deployment/web", ["web"], "env DB_PASSWORD", "db", "password")
    ]
    assert "no Secret shop/db in staging" in repo.run("check").stdout


def test_no_refs_turns_resolution_off_and_explicit_paths_report_only_their_files(repo: Repo) -> None:
    repo.write("deploy/prod/web.yaml", workload("Deployment", FORMS["envFrom"].replace("name: db}", "name: gone}")))
    repo.write("deploy/staging/web.yaml", workload("Deployment", FORMS["env"]))
    assert len(check_json(repo)["problems"]) == 2
    assert check_json(repo, "--no-refs")["problems"] == []
    assert [r[0] for r in ref_rows(repo, "deploy/prod/web.yaml")] == ["deploy/prod/web.yaml"]
    assert [r[0] for r in ref_rows(repo, "deploy/staging")] == ["deploy/staging/web.yaml"]
    assert check_json(repo, "deploy/prod/db.yaml")["ok"] is True  # the Secret file alone: nothing of web's


def test_a_secret_key_and_a_reference_resolve_without_any_private_key(repo: Repo) -> None:
    for k in repo.keys.values():
        k.unlink()  # nobody here holds a key: names and keys are readable in the sealed file
    repo.write("deploy/prod/web.yaml", workload("Deployment", FORMS["env"]))
    assert check_json(repo)["ok"] is True
    assert refs_json(repo)["prod"]["secrets"]


def test_data_and_string_data_keys_both_count(repo: Repo) -> None:
    repo.seal(
        "deploy/prod/tls.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\n  namespace: shop\n"
        "data:\n  tls.crt: aGVsbG8=\nstringData:\n  tls.key: k-CANARY-3\n",
    )
    spec = """
      containers:
        - name: web
          volumeMounts: [{name: t, mountPath: /t}]
      volumes:
        - name: t
          secret: {secretName: tls, items: [{key: tls.crt, path: c}, {key: tls.key, path: k}, {key: ca.crt, path: ca}]}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    assert [r[1:] for r in ref_rows(repo)] == [("missing-key", "Deployment/web", ["web"], "volume t", "tls", "ca.crt")]


def test_malformed_workloads_do_not_crash_check(repo: Repo) -> None:
    odd = [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: 7\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\nspec: {template: {spec: {containers: 3}}}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec: {containers: [7, {env: [1, {valueFrom: 2}]}]}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: d}\n"
        "spec: {volumes: [{secret: {secretName: [1]}}], imagePullSecrets: x}\n",
    ]
    repo.write("deploy/prod/odd.yaml", "---\n".join(odd))
    assert check_json(repo)["ok"] is True
    # Aliases that repeat a container and its env list past the walk's budget (1000 x 1000 items
    # from 8 KB): one problem, not minutes of work.
    odd_item = "{name: V, valueFrom: {secretKeyRef: {name: db, key: password}}}"
    bomb = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\n"
        f"x-var: &v {odd_item}\n"
        "x-env: &e [" + ", ".join(["*v"] * 1000) + "]\n"
        "x-container: &c {name: c, env: *e}\n"
        "spec:\n  containers: [" + ", ".join(["*c"] * 1000) + "]\n"
    )
    repo.write("deploy/prod/odd.yaml", bomb)
    rows = check_json(repo)["problems"]
    assert [(p["file"], p["code"]) for p in rows] == [("deploy/prod/odd.yaml", "refs-limit")]
    assert "more than 200000 list items once aliases are expanded" in rows[0]["message"]


# --- external: ------------------------------------------------------------------------------------


def configure(repo: Repo, env: str, text: str) -> None:
    cfg = repo.root / ".sealer.yaml"
    marker = f'      - "deploy/{env}/**"\n'
    cfg.write_text(cfg.read_text().replace(marker, marker + text))


def test_external_secrets_resolve_by_name_with_any_key(repo: Repo) -> None:
    spec = """
      containers:
        - name: web
          env:
            - name: CRT
              valueFrom: {secretKeyRef: {name: wildcard-tls, key: tls.crt}}
      volumes:
        - name: t
          secret: {secretName: wildcard-tls}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    assert [r[1] for r in ref_rows(repo)] == ["missing-secret", "missing-secret"]
    configure(repo, "prod", "    external:\n      - shop/wildcard-tls\n")
    assert check_json(repo)["ok"] is True
    secrets = refs_json(repo)["prod"]["secrets"]
    ext = next(s for s in secrets if s["external"])
    assert (ext["namespace"], ext["name"], ext["file"]) == ("shop", "wildcard-tls", None)
    assert sorted(c["how"] for c in ext["consumers"]) == ["env CRT", "volume t"]
    # The namespace counts for external Secrets too.
    configure(repo, "staging", "    external: [shop/other]\n")
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec, namespace="elsewhere"))
    assert [r[1] for r in ref_rows(repo)] == ["missing-secret", "missing-secret"]


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("'just-a-name'", "external[0] 'just-a-name' is not NAMESPACE/NAME"),
        ("'a/b/c'", "external[0] 'a/b/c'"),
        ("'Shop/DB'", "external[0] 'Shop/DB'"),
        ("7", "external[0] 7"),
        ("'/x'", "external[0] '/x'"),
    ],
)
def test_bad_external_entries_are_one_line_errors(repo: Repo, entry: str, needle: str) -> None:
    configure(repo, "prod", f"    external:\n      - {entry}\n")
    assert_clean_failure(repo.run("check"), ".sealer.yaml", "environment 'prod'", needle)
    configure(repo, "staging", "    external: shop/x\n")
    assert_clean_failure(repo.run("refs"), ".sealer.yaml", "'external' must be a list")


# --- the map ---------------------------------------------------------------------------------------


def test_the_map_names_consumers_seal_times_kids_and_unused_keys(repo: Repo) -> None:
    spec = """
      imagePullSecrets: [{name: regcred}]
      containers:
        - name: web
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
            - name: GONE
              valueFrom: {secretKeyRef: {name: db, key: gone}}
        - name: worker
          volumeMounts: [{name: creds, mountPath: /c}]
      volumes:
        - name: creds
          secret: {secretName: db, items: [{key: user, path: u}]}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    m = refs_json(repo, "--env", "prod")["prod"]
    shown = json.loads(repo.ok("show", "deploy/prod/db.yaml", "--output", "json").stdout)[0]["documents"][0]
    sealing = {v["path"].split(".", 1)[1]: (v["kids"], v["sealed_at"]) for v in shown["values"]}
    prod_kid = json.loads(repo.ok("keys", "list", "--env", "prod", "--output", "json").stdout)[0]["kid"]
    db = next(s for s in m["secrets"] if s["name"] == "db")
    assert (db["namespace"], db["file"], db["external"]) == ("shop", "deploy/prod/db.yaml", False)
    keys = {k["key"]: k for k in db["keys"]}
    assert set(keys) == {"password", "user", "legacy_token"}
    for name, k in keys.items():
        assert k["kids"] == [prod_kid] and (k["kids"], k["sealed_at"]) == tuple(sealing[name])
        assert k["sealed"] is True
    assert [
        (c["kind"], c["workload"], c["containers"], c["how"], c["file"]) for c in keys["password"]["consumers"]
    ] == [("Deployment", "web", ["web"], "env DB_PASSWORD", "deploy/prod/web.yaml")]
    assert [(c["containers"], c["how"]) for c in keys["user"]["consumers"]] == [(["worker"], "volume creds")]
    assert keys["legacy_token"]["unused"] is True and keys["legacy_token"]["consumers"] == []
    assert keys["password"]["unused"] is False
    assert m["unused"] == [{"namespace": "shop", "name": "db", "file": "deploy/prod/db.yaml", "key": "legacy_token"}]
    reg = next(s for s in m["secrets"] if s["name"] == "regcred")
    assert reg["keys"][0]["unused"] is False and reg["consumers"][0]["how"] == "imagePullSecrets"
    assert [(x["code"], x["key"], x["optional"]) for x in m["missing"]] == [("missing-key", "gone", False)]
    line = keys["password"]["consumers"][0]["line"]
    assert repo.read("deploy/prod/web.yaml").splitlines()[line - 1].strip().startswith("valueFrom: {secretKeyRef")

    text = repo.ok("refs", "--env", "prod").stdout
    assert "  Secret shop/db  deploy/prod/db.yaml\n" in text
    assert f"    legacy_token  key {prod_kid}  sealed " in text
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("    legacy_token  "))
    assert lines[at + 1] == "      unused: no workload consumes it"
    assert "MISSING: deploy/prod/web.yaml: Deployment shop/web, container web: env GONE:" in text
    # refs is a map, not a gate: a missing reference does not fail it (check does).
    assert repo.run("refs").returncode == 0 and repo.run("check").returncode == 1


def test_refs_rejects_an_unknown_environment(repo: Repo) -> None:
    assert_clean_failure(repo.run("refs", "--env", "nope"), "unknown environment 'nope'", code=2)


def test_the_library_gives_the_same_map(repo: Repo) -> None:
    import sealer

    repo.write("deploy/prod/web.yaml", workload("Deployment", FORMS["envFrom"]))
    maps = sealer.refs(sealer.Repository.open(repo.root), "prod")
    assert [m.env for m in maps] == ["prod"]
    assert [(p.name, k.info.key) for p, k in maps[0].unused] == [("regcred", ".dockerconfigjson")]
    assert maps[0].problems == []


# --- mermaid ---------------------------------------------------------------------------------------

NODE = re.compile(r'  ([a-z]\d+)\["([^"\[\]\n]*)"\]')
EDGE = re.compile(r'  ([a-z]\d+) -->\|"([^"|\n]*)"\| ([a-z]\d+)')
CLASS = re.compile(r"  class ([a-z]\d+) (unused|missing|optional)")
CLASSDEF = re.compile(r"  classDef (unused|missing|optional) [^\n;]+")


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]], dict[str, str]]:
    """Every line is one of the four statements the graph uses, or the test fails."""
    lines = text.splitlines()
    assert lines[0] == "graph LR"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    classes: dict[str, str] = {}
    for line in lines[1:]:
        if m := NODE.fullmatch(line):
            assert m[1] not in nodes, line
            nodes[m[1]] = decode(m[2])
        elif m := EDGE.fullmatch(line):
            assert m[1] in nodes and m[3] in nodes, line  # nodes are declared before their edges
            edges.append((m[1], decode(m[2]), m[3]))
        elif m := CLASS.fullmatch(line):
            classes[m[1]] = m[2]
        else:
            assert CLASSDEF.fullmatch(line), line
    return nodes, edges, classes


def decode(label: str) -> str:
    assert re.fullmatch(r"(?:[A-Za-z0-9 ._/:=,()+-]|#\d+;)*", label), label
    return re.sub(r"#(\d+);", lambda m: chr(int(m[1])), label)


def test_mermaid_is_a_graph_of_keys_and_containers(repo: Repo) -> None:
    spec = """
      containers:
        - name: web
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
            - name: X
              valueFrom: {secretKeyRef: {name: db, key: nope}}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    nodes, edges, classes = parse_mermaid(repo.ok("refs", "--env", "prod", "--output", "mermaid").stdout)
    by_label = {v: k for k, v in nodes.items()}
    web = by_label["prod: Deployment shop/web / web"]
    assert (by_label["prod: shop/db password"], "env DB_PASSWORD", web) in edges
    assert (by_label["prod: shop/db nope (missing)"], "env X", web) in edges
    assert classes[by_label["prod: shop/db legacy_token"]] == "unused"
    assert classes[by_label["prod: shop/db nope (missing)"]] == "missing"
    assert classes[by_label["prod: shop/regcred .dockerconfigjson"]] == "unused"


def test_mermaid_labels_cannot_break_out_of_their_quotes(repo: Repo) -> None:
    """Names come from the repository, which anyone with the public key writes."""
    evil = 'x"]\n  click k1 "javascript:alert(1)"\n  w9["`**md**` <b>#35;|'
    spec = f"""
      containers:
        - name: {json.dumps(evil)}
          env:
            - name: {json.dumps(evil)}
              valueFrom: {{secretKeyRef: {{name: db, key: {json.dumps(evil)}}}}}
"""
    repo.write("deploy/prod/web.yaml", workload("Deployment", spec))
    text = repo.ok("refs", "--output", "mermaid").stdout
    assert "click" not in [line.split()[0] for line in text.splitlines() if line.strip()]
    nodes, edges, _classes = parse_mermaid(text)
    assert f"prod: Deployment shop/web / {evil}" in nodes.values()
    assert f"prod: shop/db {evil} (missing)" in nodes.values()
    assert any(how == f"env {evil}" for _s, how, _d in edges)


# --- kustomize -------------------------------------------------------------------------------------

# kustomize's own header: without it a kustomization.yaml is a plain document whose scalars check
# asks to seal, like any configuration file that is not a Kubernetes manifest.
KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"

BASE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
"""


def kustomized(repo: Repo) -> None:
    """A base (a Deployment without a namespace, a Secret sealed in namespace shop: its values are
    bound to it) and prod's overlay setting `namespace: shop`: only the render puts them together."""
    repo.write("deploy/prod/base/deployment.yaml", BASE_DEPLOYMENT)
    repo.seal("deploy/prod/base/secret.yaml", DB)
    repo.write("deploy/prod/base/kustomization.yaml", KUST + "resources:\n  - deployment.yaml\n  - secret.yaml\n")
    repo.write(
        "deploy/prod/overlay/kustomization.yaml",
        KUST + "namespace: shop\nresources:\n  - ../base\n",
    )
    for f in ("db.yaml", "regcred.yaml"):
        (repo.root / "deploy/prod" / f).unlink()


def test_an_overlay_resolves_within_its_render(repo: Repo) -> None:
    require_tool("kubectl")
    kustomized(repo)
    assert check_json(repo)["problems"] == []
    m = refs_json(repo, "--env", "prod")["prod"]
    assert m["rendered"] == ["deploy/prod/overlay/kustomization.yaml"]  # the base is not rendered alone
    (db,) = m["secrets"]
    assert (db["namespace"], db["name"], db["file"]) == ("shop", "db", "deploy/prod/base/secret.yaml")
    used = {k["key"]: [(c["kind"], c["namespace"], c["workload"]) for c in k["consumers"]] for k in db["keys"]}
    assert used["password"] == [("Deployment", "shop", "web")]  # as deployed: in the overlay's namespace
    assert used["legacy_token"] == [] and used["user"] == []
    assert all(k["kids"] and k["sealed_at"] for k in db["keys"])  # the tokens come through the render
    password = next(k for k in db["keys"] if k["key"] == "password")
    assert [c["file"] for c in password["consumers"]] == ["deploy/prod/base/deployment.yaml"]  # by kind and name
    # A key the Secret does not have: caught in the render, and named by the workload as deployed.
    repo.write("deploy/prod/base/deployment.yaml", BASE_DEPLOYMENT.replace("key: password", "key: pasword"))
    r = repo.run("check")
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "deploy/prod/base/deployment.yaml: Deployment shop/web, container web: env DB_PASSWORD:"
        " Secret shop/db in prod has no key 'pasword' (its keys: legacy_token, password, user)"
    ]
    # A name prefix makes the object unlike any source's: it is attributed to the overlay.
    overlay = repo.root / "deploy/prod/overlay/kustomization.yaml"
    overlay.write_text(overlay.read_text() + "nameSuffix: -x\n")
    rows = check_json(repo)["problems"]
    # (the Secret's name moved too, and its values are bound to it: sealer seal would say so at deploy)
    assert [(p["file"], p["code"], p["workload"], p["secret"]) for p in rows] == [
        ("deploy/prod/overlay/kustomization.yaml", "missing-key", "Deployment/web-x", "db-x")
    ]


def test_without_kubectl_the_files_are_read_as_they_are_and_a_note_says_so(repo: Repo, tmp_path: Path) -> None:
    kustomized(repo)
    empty = tmp_path / "no-tools"
    empty.mkdir()
    env = {"PATH": str(empty)}
    r = repo.run("check", env=env)
    # The Deployment has no namespace in its file: as written it is in default, its Secret in shop.
    assert r.stdout.splitlines() == [
        "deploy/prod/base/deployment.yaml: Deployment default/web, container web: env DB_PASSWORD: no Secret"
        " default/db in prod (seal one under prod's paths, or list it under external: in .sealer.yaml)"
    ]
    assert "sealer: note: prod: kubectl is not on PATH, so 2 kustomization(s) were not rendered" in r.stderr
    assert check_json(repo, env=env)["notes"][0].startswith("prod: kubectl is not on PATH")
    if require_tool("kubectl"):
        assert check_json(repo)["ok"] is True  # the render puts both in shop
        assert check_json(repo)["notes"] == []


def test_a_kustomization_that_does_not_render_is_a_problem(repo: Repo) -> None:
    require_tool("kubectl")
    kustomized(repo)
    repo.write("deploy/prod/overlay/kustomization.yaml", KUST + "resources:\n  - ../base\n  - missing-CANARY.yaml\n")
    rows = check_json(repo)["problems"]
    # The render's problem, and what its files say as written (the Deployment is in default there).
    assert sorted((p["file"], p["code"]) for p in rows) == [
        ("deploy/prod/base/deployment.yaml", "missing-secret"),
        ("deploy/prod/overlay/kustomization.yaml", "kustomize"),
    ]
    failed = next(p["message"] for p in rows if p["code"] == "kustomize")
    assert "kubectl kustomize deploy/prod/overlay failed (exit 1)" in failed


def test_a_remote_base_is_not_fetched(repo: Repo) -> None:
    require_tool("kubectl")
    repo.write(
        "deploy/prod/kustomization.yaml",
        KUST + "resources:\n  - https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.5.0\n",
    )
    r = repo.run("check", "--output", "json")
    rows = json.loads(r.stdout)["problems"]
    assert [(p["file"], p["code"]) for p in rows] == [("deploy/prod/kustomization.yaml", "kustomize")]


def test_kustomize_runs_once_per_overlay(repo: Repo, tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    kustomized(repo)
    repo.write("deploy/prod/overlay2/kustomization.yaml", KUST + "namespace: shop\nresources:\n  - ../base\n")
    log = tmp_path / "calls"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "kubectl").write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {kubectl} "$@"\n')
    (shim / "kubectl").chmod(0o755)
    env = {"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    check_json(repo, env=env)
    assert sorted(log.read_text().splitlines()) == ["kustomize deploy/prod/overlay", "kustomize deploy/prod/overlay2"]


def test_the_kubectl_used_is_the_real_one(repo: Repo) -> None:
    """Guard for the tests above: the kustomize render they rely on is kubectl's."""
    kubectl = require_tool("kubectl")
    out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=True).stdout
    assert "Kustomize Version" in out
