"""The deploy recipes: the Containerfile, the controller's Kubernetes manifests (examples/k8s) and the
Argo CD plugin sidecar (examples/argocd), checked with the real peer tools that run here.

hadolint lints the Containerfile, kubectl 1.32 (its kustomize 5.5) builds both examples and parses
the controller's apply command, checkov scans both directories under `.checkov.yaml`'s reasoned
skip list. No image is built (no container daemon here) and nothing is applied (no API server):
what can be checked is that the recipe's paths exist and the manifests say what the docs promise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from conftest import require_tool
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
K8S = ROOT / "examples" / "k8s"
ARGOCD = ROOT / "examples" / "argocd"
CONTAINERFILE = ROOT / "Containerfile"


def tool(name: str, *candidates: Path) -> str:
    """A peer tool from one of our venvs (the test extra, `.venv-checkov`), else from PATH."""
    for c in (*candidates, VENV_BIN / name):
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return require_tool(name)


def load_dir(root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    docs = {}
    for f in sorted(root.glob("*.yaml")):
        for doc in YAML(typ="safe", pure=True).load_all(f.read_text()):
            if doc and "metadata" in doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def load_stream(text: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    r = subprocess.run([require_tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return load_stream(r.stdout)


# --- the image -----------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            rows.append((op.upper(), rest.strip()))
    return rows


def test_containerfile_passes_hadolint() -> None:
    r = subprocess.run([tool("hadolint"), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr


def test_containerfile_copies_what_the_context_holds_and_runs_sealer_as_non_root() -> None:
    rows = instructions()
    stages = {m.group(1) for op, rest in rows if op == "FROM" and (m := re.search(r"\bAS (\S+)$", rest))}
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") :][:1] == ["*"]  # an allow-list: only what is named below it
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    for op, rest in rows:
        if op != "COPY":
            continue
        args = rest.split()
        sources = [a for a in args[:-1] if not a.startswith("--")]
        if any(a.startswith("--from=") for a in args):
            assert args[0].removeprefix("--from=") in stages, rest
            continue
        for src in sources:  # from the build context: it exists and .dockerignore lets it in
            assert (ROOT / src).exists(), src
            assert src.rstrip("/") in allowed, src
    assert ("USER", "65532:65532") in rows  # numeric, so runAsNonRoot can verify it
    entry = [json.loads(rest) for op, rest in rows if op == "ENTRYPOINT"]
    assert entry == [["/opt/sealer/bin/sealer"]]  # exec form: no shell between the runtime and sealer
    assert any(op == "RUN" and "python -m venv /opt/sealer" in rest for op, rest in rows)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "sealer" in project["scripts"]  # the console script the entrypoint runs
    for name in ("kubectl", "git"):
        assert any(name in rest for op, rest in rows if op in ("COPY", "RUN")), name


def test_every_example_runs_the_image_the_containerfile_builds() -> None:
    docs = [*load_dir(K8S).values(), *load_dir(ARGOCD).values()]
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    assert len(pods) == 2
    images = {c["image"] for pod in pods for c in pod["containers"]}
    assert images == {"ghcr.io/example/sealer:0.1.0"}


# --- the controller (examples/k8s) -------------------------------------------------------------


def test_kubernetes_example_matches_the_command() -> None:
    """examples/k8s parses, and every setting its ConfigMap gives is one the command reads."""
    from sealer._cli.controller import controller

    docs = load_dir(K8S)
    kinds = {kind for kind, _ in docs}
    assert {"Deployment", "ServiceAccount", "Secret", "ConfigMap", "Service", "NetworkPolicy"} <= kinds
    envvars = {v for p in controller.params for v in ([p.envvar] if isinstance(p.envvar, str) else p.envvar or [])}
    config = docs[("ConfigMap", "sealer-controller-prod")]["data"]
    assert set(config) - {"SEALER_ACTOR"} <= envvars, set(config) - envvars
    assert config["SEALER_CONTROLLER_LISTEN"].endswith(":9808")
    service = docs[("Service", "sealer-controller-prod")]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    pod = docs[("Deployment", "sealer-controller-prod")]["spec"]["template"]["spec"]
    probes = pod["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
    assert probes["securityContext"]["readOnlyRootFilesystem"] is True
    assert "AGE-SECRET-KEY-1" not in (K8S / "identity-secret.yaml").read_text()  # a shape, never a key
    policy = docs[("NetworkPolicy", "sealer-controller-prod")]["spec"]
    selector = docs[("Deployment", "sealer-controller-prod")]["spec"]["selector"]["matchLabels"]
    assert policy["podSelector"]["matchLabels"] == selector
    assert [p["port"] for p in policy["ingress"][0]["ports"]] == [9808]
    built = {(d["kind"], d["metadata"]["name"]) for d in kustomize(K8S)}
    assert built == set(docs) - {("Secret", "sealer-identity-prod")}  # every file but the key's shape


def apply_argv() -> list[str]:
    from sealer._controller.targets import CmdTarget, parse_target

    config = load_dir(K8S)[("ConfigMap", "sealer-controller-prod")]["data"]
    target = parse_target(config["SEALER_CONTROLLER_TARGET"])
    assert isinstance(target, CmdTarget)
    return target.argv


def test_the_controller_prunes_with_server_side_apply_and_an_applyset_it_may_use() -> None:
    """A Secret deleted from git is deleted from the cluster: kubectl 1.32 prunes server-side applied
    objects only through an ApplySet (`--prune -l` with `--server-side` is refused), and the Role
    grants what pruning needs in the namespace the command names, and nothing outside it."""
    argv = apply_argv()
    assert argv[:2] == ["env", "KUBECTL_APPLYSET=true"]
    kubectl = argv[2:]
    assert kubectl[:2] == ["kubectl", "apply"] and kubectl[-2:] == ["-f", "-"]
    assert {"--server-side", "--prune", "--field-manager=sealer-controller"} <= set(kubectl)
    assert not {"-l", "--selector", "--all", "--prune-allowlist"} & {a.split("=")[0] for a in kubectl}
    namespace = kubectl[kubectl.index("-n") + 1]
    assert any(a.startswith("--applyset=") for a in kubectl)
    roles = [d for d in load_stream((K8S / "rbac.yaml").read_text()) if d["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in roles] == [namespace]
    (rule,) = roles[0]["rules"]
    assert rule["resources"] == ["secrets"]
    assert {"get", "list", "create", "patch", "delete"} <= set(rule["verbs"])


def test_kubectl_accepts_the_controllers_apply_flags(tmp_path: Path) -> None:
    """The real kubectl parses the command line (an unknown or alpha-gated flag fails before any
    connection); with no API server here, it must get as far as trying to reach one."""
    require_tool("kubectl")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    stream = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: orders}\nstringData: {a: b}\n"
    r = subprocess.run(apply_argv(), input=stream, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and "127.0.0.1:1" in r.stderr and "connection refused" in r.stderr, r.stderr
    assert "unknown flag" not in r.stderr
    # and without the variable, kubectl 1.32 does not know --applyset: the command must carry it
    argv = apply_argv()[2:]
    r = subprocess.run(argv, input=stream, capture_output=True, text=True, env=env, timeout=60)
    assert "unknown flag: --applyset" in r.stderr


# --- the Argo CD plugin sidecar (examples/argocd) ------------------------------------------------

REPO_SERVER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-repo-server
  namespace: argocd
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: argocd-repo-server}
  template:
    metadata:
      labels: {app.kubernetes.io/name: argocd-repo-server}
    spec:
      containers:
        - name: argocd-repo-server
          image: quay.io/argoproj/argocd:v2.14.0
          volumeMounts:
            - {name: var-files, mountPath: /var/run/argocd}
            - {name: plugins, mountPath: /home/argocd/cmp-server/plugins}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: var-files, emptyDir: {}}
        - {name: plugins, emptyDir: {}}
        - {name: tmp, emptyDir: {}}
"""

STAND_IN_PLUGIN = """\
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: sealer
spec:
  generate:
    command: [sealer, krm, --stream]
"""


def test_argocd_component_adds_the_sidecar_to_the_repo_server(tmp_path: Path) -> None:
    """The Component, over a stand-in of Argo CD's repo-server Deployment (the volumes it has),
    built by the real kustomize: the sidecar as Argo CD's CMP docs require it, non-root, read-only,
    the key from a Secret, and plugin.yaml from the ConfigMap `sealer-cmp-plugin`."""
    component = tmp_path / "sealer"
    shutil.copytree(ARGOCD, component)
    if not (component / "plugin.yaml").exists():  # the plugin itself lands with `sealer krm`
        (component / "plugin.yaml").write_text(STAND_IN_PLUGIN)
    overlay = tmp_path / "argocd"
    overlay.mkdir()
    (overlay / "repo-server.yaml").write_text(REPO_SERVER)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: argocd\n"
        "resources: [repo-server.yaml]\ncomponents: [../sealer]\n"
    )
    built = {(d["kind"], d["metadata"]["name"]): d for d in kustomize(overlay)}
    cm = built[("ConfigMap", "sealer-cmp-plugin")]
    assert cm["data"]["plugin.yaml"] == (component / "plugin.yaml").read_text()
    pod = built[("Deployment", "argocd-repo-server")]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert sorted(containers) == ["argocd-repo-server", "sealer"]
    sidecar = containers["sealer"]
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    sc = sidecar["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 999  # the uid Argo CD runs plugins as
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["SEALER_IDENTITY"]["valueFrom"]["secretKeyRef"] == {"name": "sealer-identity", "key": "identity"}
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    plugin = mounts["/home/argocd/cmp-server/config/plugin.yaml"]
    assert plugin["subPath"] == "plugin.yaml"
    assert volumes[plugin["name"]]["configMap"]["name"] == "sealer-cmp-plugin"
    assert mounts["/var/run/argocd"]["name"] == "var-files"
    assert mounts["/home/argocd/cmp-server/plugins"]["name"] == "plugins"
    assert mounts["/tmp"]["name"] != "tmp" and "emptyDir" in volumes[mounts["/tmp"]["name"]]  # not the repo-server's
    writable = {m["mountPath"] for m in sidecar["volumeMounts"]} - {"/home/argocd/cmp-server/config/plugin.yaml"}
    assert writable == {"/var/run/argocd", "/home/argocd/cmp-server/plugins", "/tmp"}  # HOME=/tmp is one of them
    assert env["HOME"]["value"] == "/tmp"
    # the repo-server itself is left as it was
    assert containers["argocd-repo-server"] == load_stream(REPO_SERVER)[0]["spec"]["template"]["spec"]["containers"][0]


# --- checkov -------------------------------------------------------------------------------------


def test_checkov_finds_nothing_in_the_kubernetes_examples() -> None:
    """Every Kubernetes check checkov has passes on both example directories (whatever files they
    hold), but the ones `.checkov.yaml` skips, each under a comment that says why."""
    checkov = tool("checkov", ROOT / ".venv-checkov" / "bin" / "checkov")
    config = ROOT / ".checkov.yaml"
    lines = config.read_text().splitlines()
    start = lines.index("skip-check:")
    for i, line in enumerate(lines[start + 1 :], start + 1):
        if line.strip().startswith("- CKV"):
            j = i - 1
            while lines[j].strip().startswith("- CKV"):
                j -= 1
            assert lines[j].strip().startswith("#") and j > start, f"{line.strip()}: no reason given above it"
    for directory in (K8S, ARGOCD):  # one run each: checkov 3.3 scans only the first of several -d
        r = subprocess.run(
            [checkov, "--config-file", str(config), "-d", str(directory), "-o", "json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        report = json.loads(r.stdout)
        report = report[0] if isinstance(report, list) else report
        failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
        assert r.returncode == 0 and failed == [], (directory.name, failed, r.stderr[-2000:])
        summary = report["summary"]
        builtin = ("v1", "apps/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1")
        manifests = sum(1 for d in load_dir(directory).values() if d.get("apiVersion") in builtin)
        assert summary["parsing_errors"] == 0 and summary["resource_count"] >= manifests, (directory.name, summary)
