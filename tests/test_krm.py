"""`sealer krm` driven by the real engines: `kubectl kustomize` (kustomize v5) running the legacy
exec plugin shim that `sealer krm install-plugin` writes, `kpt fn eval --exec`, the Argo CD plugin's
generate command, and the stream a Helm post-renderer gets. No engine is mocked; a missing one skips
locally and fails in CI (`require_tool`).

Every calling convention goes through the door `sealer unseal` uses, so every rule of the
environment holds at each: a tampered token, a retired key and an unsigned document under
`require_signature` fail the render, with no plaintext on stdout or stderr.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SEALER, Repo, assert_clean_failure, require_tool

ROOT = Path(__file__).resolve().parent.parent
PLAIN = {  # every plaintext value sealed below, and its base64 form (as a Secret's data holds it)
    "prod": "CANARY-prod-pw-41",
    "crt": "CANARY-prod-crt-42",
    "api": "CANARY-api-43",
    "api2": "CANARY-api-rotated-44",
    "staging": "CANARY-staging-45",
    "old": "CANARY-old-46",
    "signed": "CANARY-signed-47",
    "tampered": "CANARY-tampered-48",
}
SHIM_KINDS = ("SealerTransformer", "SealerGenerator")


def secret(name: str, value: str, *, crt: str | None = None, namespace: str = "shop") -> str:
    text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
    text += f'type: Opaque\nstringData:\n  password: "{value}"\n'
    if crt is not None:
        text += f"data:\n  tls.crt: {base64.b64encode(crt.encode()).decode()}\n"
    return text


def deployment(name: str, secret_name: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: app:1\n"
        f"        envFrom:\n        - secretRef:\n            name: {secret_name}\n"
    )


def kustomization(*lines: str) -> str:
    return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + "".join(f"{x}\n" for x in lines)


TRANSFORMER = "apiVersion: sealer.dev/v1alpha1\nkind: SealerTransformer\nmetadata:\n  name: sealer\n"


def generator(*files: str, needs_hash: bool = False) -> str:
    text = f"apiVersion: sealer.dev/v1alpha1\nkind: SealerGenerator\nmetadata:\n  name: sealer\nfiles: {list(files)}\n"
    return text + ("needsHash: true\n" if needs_hash else "")


def leaked(text: str) -> list[str]:
    """Every plaintext value (or its base64) that appears in `text`."""
    forms = list(PLAIN.values()) + [base64.b64encode(v.encode()).decode() for v in PLAIN.values()]
    return [f for f in forms if f in text] + (["CANARY"] if "CANARY" in text else [])


def docs(text: str) -> list[dict[str, Any]]:
    """A manifest stream read by a YAML 1.1 reader (PyYAML: go-yaml v2's rules, as kubectl)."""
    return [d for d in yaml.safe_load_all(text) if d is not None]


def kubectl_read(text: str, home: Path) -> list[dict[str, Any]]:
    """kubectl's own parse of a stream, offline: `annotate --local` reads it as `apply -f` does."""
    kubectl = require_tool("kubectl")
    r = subprocess.run(
        [kubectl, "annotate", "--local", "-o", "json", "-f", "-", "sealer.test/read=1"],
        input=text,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": os.devnull},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out, dec, i = [], json.JSONDecoder(), 0
    while i < len(r.stdout):
        if r.stdout[i].isspace():
            i += 1
            continue
        obj, i = dec.raw_decode(r.stdout, i)
        out.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    return out


def by_kind(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in items if d.get("kind") == kind]


class World(Repo):
    """A repository with environments prod, staging, old (its first key retired) and signed
    (require_signature, signer alice); kustomizations for every convention and failure; sealer's
    kustomize plugin shim installed into a plugin home of its own."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.init("prod", "staging", "old", "signed", keys=("prod", "staging", "old", "signed"))
        config = self.root / ".sealer.yaml"
        config.write_text(
            config.read_text().replace("  signed:\n", "  signed:\n    policy:\n      require_signature: true\n", 1)
        )
        self.alice = tmp / "signers" / "alice.txt"
        self.ok("signers", "generate", "alice", "--env", "signed", "--out", str(self.alice))
        self.plugins = tmp / "plugins"
        self.ok("krm", "install-plugin", "--dir", str(self.plugins))

        # prod: a transformer over a listed Secret, a generator with name hashing, a base and overlay
        self.seal("deploy/prod/app/db.yaml", secret("db", PLAIN["prod"], crt=PLAIN["crt"]))
        self.write("deploy/prod/app/web.yaml", deployment("web", "db"))
        self.write("deploy/prod/app/sealer.yaml", TRANSFORMER)
        self.write(
            "deploy/prod/app/kustomization.yaml",
            kustomization("resources: [db.yaml, web.yaml]", "transformers: [sealer.yaml]"),
        )
        self.seal("deploy/prod/gen/api.yaml", secret("api", PLAIN["api"]))
        self.write("deploy/prod/gen/web.yaml", deployment("api-web", "api"))
        self.write("deploy/prod/gen/sealer.yaml", generator("api.yaml", needs_hash=True))
        self.write(
            "deploy/prod/gen/kustomization.yaml", kustomization("generators: [sealer.yaml]", "resources: [web.yaml]")
        )
        self.write("deploy/prod/overlay/kustomization.yaml", kustomization("namePrefix: p-", "resources: [../app]"))
        self.write("deploy/prod/renamed/db.yaml", self.read("deploy/prod/app/db.yaml"))
        self.write("deploy/prod/renamed/sealer.yaml", TRANSFORMER)
        self.write(
            "deploy/prod/renamed/kustomization.yaml",
            kustomization("namePrefix: p-", "resources: [db.yaml]", "transformers: [sealer.yaml]"),
        )
        # the Argo CD plugin's kind of app: plain kustomize (no plugins), sealed files as resources
        self.write("deploy/prod/argo/db.yaml", self.read("deploy/prod/app/db.yaml"))
        self.write("deploy/prod/argo/web.yaml", deployment("web", "db"))
        self.write("deploy/prod/argo/kustomization.yaml", kustomization("resources: [db.yaml, web.yaml]"))
        # a staging Secret copied into a prod kustomization: the directory's path rule refuses it
        self.seal("deploy/staging/db.yaml", secret("db", PLAIN["staging"]))
        self.write("deploy/prod/mixed/db.yaml", self.read("deploy/staging/db.yaml"))
        self.write("deploy/prod/mixed/sealer.yaml", TRANSFORMER)
        self.write(
            "deploy/prod/mixed/kustomization.yaml", kustomization("resources: [db.yaml]", "transformers: [sealer.yaml]")
        )

        # the failures: one sealed file each, under every convention
        self.seal("deploy/prod/tampered/src.yaml", secret("db", PLAIN["tampered"]))
        self.failure_files = {
            "tampered": ("deploy/prod/tampered", _tampered(self.read("deploy/prod/tampered/src.yaml")))
        }
        (self.root / "deploy/prod/tampered/src.yaml").unlink()
        self.seal("deploy/old/retired/src.yaml", secret("db", PLAIN["old"]))
        old_kid = self._active_kid("old")
        self.rotate("old")
        self.ok("keys", "retire", "old", old_kid, "--force")  # its values are now sealed only to a retired key
        self.failure_files["retired"] = ("deploy/old/retired", self.read("deploy/old/retired/src.yaml"))
        self.write("deploy/signed/unsigned/src.yaml", secret("db", PLAIN["signed"]))
        self.ok("seal", "deploy/signed/unsigned/src.yaml")  # sealed, but nobody signed it
        self.failure_files["unsigned"] = ("deploy/signed/unsigned", self.read("deploy/signed/unsigned/src.yaml"))
        for top, text in self.failure_files.values():
            (self.root / top / "src.yaml").unlink(missing_ok=True)
            for conv in ("transformer", "generator", "stdin"):
                self.write(f"{top}/{conv}/db.yaml", text)
            self.write(f"{top}/transformer/sealer.yaml", TRANSFORMER)
            self.write(
                f"{top}/transformer/kustomization.yaml",
                kustomization("resources: [db.yaml]", "transformers: [sealer.yaml]"),
            )
            self.write(f"{top}/generator/sealer.yaml", generator("db.yaml"))
            self.write(f"{top}/generator/kustomization.yaml", kustomization("generators: [sealer.yaml]"))

        # a signed Secret: its signature covers its path, which only the generator and kpt know
        self.write("deploy/signed/ok/db.yaml", secret("db", PLAIN["signed"]))
        self.ok("seal", "deploy/signed/ok/db.yaml", "--sign-with", str(self.alice))
        self.write("deploy/signed/ok/sealer.yaml", generator("db.yaml"))
        self.write("deploy/signed/ok/kustomization.yaml", kustomization("generators: [sealer.yaml]"))
        self.write("deploy/signed/stdin/db.yaml", self.read("deploy/signed/ok/db.yaml"))
        self.write("deploy/signed/stdin/sealer.yaml", TRANSFORMER)
        self.write(
            "deploy/signed/stdin/kustomization.yaml",
            kustomization("resources: [db.yaml]", "transformers: [sealer.yaml]"),
        )

        self.identities = tmp / "all-keys.txt"  # the deploy host's keys: every environment's, the retired one too
        self.identities.write_text("".join(p.read_text() for keys in self.all_keys.values() for p in keys))
        self.identities.chmod(0o600)

    def _active_kid(self, env: str) -> str:
        rows = json.loads(self.ok("keys", "list", "--env", env, "--output", "json").stdout)
        (kid,) = [r["kid"] for r in rows if r["state"] == "active"]
        return str(kid)

    def engine_env(self, **extra: str) -> dict[str, str]:
        """What kustomize, kpt and Argo CD pass on to the plugin: the identity, the plugin home."""
        tmp = self.tmp / "engine-tmp"  # kustomize leaves its plugin config files in TMPDIR
        tmp.mkdir(exist_ok=True)
        return self.env(
            {
                "SEALER_IDENTITY_FILE": str(self.identities),
                "KUSTOMIZE_PLUGIN_HOME": str(self.plugins),
                "TMPDIR": str(tmp),
                **extra,
            }
        )

    def kustomize(self, rel: str) -> subprocess.CompletedProcess[str]:
        kubectl = require_tool("kubectl")
        return subprocess.run(
            [kubectl, "kustomize", "--enable-alpha-plugins", rel],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self.engine_env(KUBECONFIG=os.devnull),
            timeout=180,
        )

    def kpt(self, rel: str, *krm_args: str) -> subprocess.CompletedProcess[str]:
        kpt = require_tool("kpt")
        exec_ = " ".join([SEALER, "krm", *krm_args])
        return subprocess.run(
            [kpt, "fn", "eval", rel, "-o", "stdout", "--exec", exec_],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self.engine_env(),
            timeout=180,
        )

    def krm(self, *args: str, stdin: str, cwd: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "krm", *args, stdin=stdin, cwd=self.root / cwd, env={"SEALER_IDENTITY_FILE": str(self.identities)}
        )


def _tampered(text: str) -> str:
    """One character in the middle of the first token's ciphertext changed (still base64url)."""
    start = text.index("ENC[sealer.v1,")
    blob = text.index(",", start + len("ENC[sealer.v1,")) + 1
    i = (blob + text.index("]", blob)) // 2
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]


def resource_list(*items: str, api: str = "config.kubernetes.io/v1", config: str | None = None) -> str:
    out = f"apiVersion: {api}\nkind: ResourceList\nitems:\n"
    for item in items:
        lines = item.rstrip("\n").split("\n")
        out += "".join(("- " if i == 0 else "  " if line else "") + line + "\n" for i, line in enumerate(lines))
    if config is not None:
        out += "functionConfig:\n" + "".join(f"  {line}\n" for line in config.rstrip("\n").split("\n"))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("krm"))


def assert_stamped(s: dict[str, Any], source: str) -> None:
    md = s["metadata"]
    assert md["labels"]["app.kubernetes.io/managed-by"] == "sealer"
    assert md["annotations"]["sealer.dev/source"] == source


# --- the shim ---------------------------------------------------------------------------------------


def test_install_plugin_writes_the_shim_kustomize_runs(world: World, tmp_path: Path) -> None:
    for kind in SHIM_KINDS:
        shim = world.plugins / "sealer.dev" / "v1alpha1" / kind.lower() / kind
        assert stat.S_IMODE(shim.stat().st_mode) == 0o755
        lines = shim.read_text().splitlines()
        assert lines[0] == "#!/bin/sh" and lines[-1] == f'exec {SEALER} krm "$@"'
    out = json.loads(world.ok("krm", "install-plugin", "--dir", str(world.plugins), "--output", "json").stdout)
    assert sorted(Path(p).name for p in out["shims"]) == sorted(SHIM_KINDS)  # again: brought up to date
    foreign = tmp_path / "home" / "sealer.dev" / "v1alpha1" / "sealertransformer" / "SealerTransformer"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("#!/bin/sh\necho mine\n")
    world.fail("krm", "install-plugin", "--dir", str(tmp_path / "home"), expect=["did not write", "--force"])
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"


# --- the legacy exec plugin under kubectl kustomize ---------------------------------------------------


def test_transformer_unseals_a_listed_secret_through_kustomize(world: World) -> None:
    r = world.kustomize("deploy/prod/app")
    assert r.returncode == 0, r.stderr
    assert "ENC[" not in r.stdout and "sealer:" not in r.stdout
    out = docs(r.stdout)
    (s,) = by_kind(out, "Secret")
    assert s["stringData"] == {"password": PLAIN["prod"]}
    assert base64.b64decode(s["data"]["tls.crt"]).decode() == PLAIN["crt"]
    assert "sealer" not in s
    assert_stamped(s, "deploy/prod/app")  # an item on stdin has no file: the kustomization's directory
    (web,) = by_kind(out, "Deployment")
    assert web == yaml.safe_load((world.root / "deploy/prod/app/web.yaml").read_text())  # passed through
    read = kubectl_read(r.stdout, world.tmp)
    (ks,) = by_kind(read, "Secret")
    assert ks["stringData"] == {"password": PLAIN["prod"]} and ks["metadata"]["name"] == "db"


def test_generator_hashes_the_name_and_pods_roll_on_rotation(world: World) -> None:
    r = world.kustomize("deploy/prod/gen")
    assert r.returncode == 0, r.stderr
    out = docs(r.stdout)
    (s,) = by_kind(out, "Secret")
    name = s["metadata"]["name"]
    assert name.startswith("api-") and len(name) > len("api-")  # kustomize's content hash
    assert s["stringData"] == {"password": PLAIN["api"]}
    assert_stamped(s, "deploy/prod/gen/api.yaml")
    assert "kustomize.config.k8s.io/needs-hash" not in s["metadata"]["annotations"]  # kustomize took it
    (web,) = by_kind(out, "Deployment")
    ref = web["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"]
    assert ref == name  # kustomize rewrote the reference

    original = world.read("deploy/prod/gen/api.yaml")
    try:
        world.ok("set", "deploy/prod/gen/api.yaml", "stringData.password", stdin=PLAIN["api2"])
        r2 = world.kustomize("deploy/prod/gen")
        assert r2.returncode == 0, r2.stderr
        out2 = docs(r2.stdout)
        (s2,) = by_kind(out2, "Secret")
        assert s2["stringData"] == {"password": PLAIN["api2"]} and s2["metadata"]["name"] != name
        (web2,) = by_kind(out2, "Deployment")
        assert (
            web2["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"]
            == s2["metadata"]["name"]
        )
    finally:
        world.write("deploy/prod/gen/api.yaml", original)


def test_rename_before_sealer_fails_loudly_and_an_overlay_renames_after(world: World) -> None:
    r = world.kustomize("deploy/prod/renamed")
    assert r.returncode != 0
    assert "kustomize renamed it from shop/db to shop/p-db" in r.stderr and "scope strict" in r.stderr
    assert not leaked(r.stdout + r.stderr)
    # The documented order: sealer in the base, the overlay renames what it built.
    r = world.kustomize("deploy/prod/overlay")
    assert r.returncode == 0, r.stderr
    (s,) = by_kind(docs(r.stdout), "Secret")
    assert s["metadata"]["name"] == "p-db" and s["stringData"] == {"password": PLAIN["prod"]}
    (web,) = by_kind(docs(r.stdout), "Deployment")
    assert web["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"] == "p-db"


def test_another_environments_secret_in_a_kustomization_is_refused(world: World) -> None:
    r = world.kustomize("deploy/prod/mixed")
    assert r.returncode != 0
    assert "sealed for environment 'staging'" in r.stderr and "deploy/prod/mixed" in r.stderr
    assert not leaked(r.stdout + r.stderr)


def test_signed_secret_opens_through_the_generator_and_kpt_not_from_stdin(world: World) -> None:
    r = world.kustomize("deploy/signed/ok")
    assert r.returncode == 0, r.stderr
    (s,) = by_kind(docs(r.stdout), "Secret")
    assert s["stringData"] == {"password": PLAIN["signed"]}
    # From stdin it has no file path, and its signature covers one: refused, not waved through.
    r = world.kustomize("deploy/signed/stdin")
    assert r.returncode != 0 and "is signed, but came on stdin without its file's path" in r.stderr
    assert not leaked(r.stdout + r.stderr)
    r = world.kpt("deploy/signed/stdin")
    assert r.returncode != 0 and "came on stdin without its file's path" in r.stderr
    # kpt names each item's file (and overwrites a path annotation a file carries): with --package
    # the signature is checked against that path, and holds.
    r = world.kpt("deploy/signed/stdin", "--package", "deploy/signed/stdin")
    assert r.returncode != 0 and "does not verify" in r.stderr  # signed for deploy/signed/ok/db.yaml
    assert not leaked(r.stdout + r.stderr)
    r = world.kpt("deploy/signed/ok", "--package", "deploy/signed/ok")
    assert r.returncode == 0, r.stderr
    (s,) = by_kind(yaml.safe_load(r.stdout)["items"], "Secret")
    assert s["stringData"] == {"password": PLAIN["signed"]}
    assert_stamped(s, "deploy/signed/ok/db.yaml")


# --- kpt and the KRM function ----------------------------------------------------------------------


def test_kpt_fn_eval_unseals_and_keeps_annotations(world: World) -> None:
    r = world.kpt("deploy/prod/app", "--package", "deploy/prod/app")
    assert r.returncode == 0, r.stderr
    rl = yaml.safe_load(r.stdout)
    assert rl["kind"] == "ResourceList"
    (s,) = by_kind(rl["items"], "Secret")
    assert s["stringData"] == {"password": PLAIN["prod"]} and "sealer" not in s
    assert s["metadata"]["annotations"]["config.kubernetes.io/path"] == "db.yaml"  # kpt's, kept
    assert_stamped(s, "deploy/prod/app/db.yaml")
    (web,) = by_kind(rl["items"], "Deployment")
    assert web["spec"] == yaml.safe_load(world.read("deploy/prod/app/web.yaml"))["spec"]


@pytest.mark.parametrize("api", ["config.kubernetes.io/v1", "config.kubernetes.io/v1alpha1"])
def test_resource_list_items_unsealed_others_untouched(world: World, api: str) -> None:
    sealed = world.read("deploy/prod/app/db.yaml").replace(
        "  namespace: shop\n",
        "  namespace: shop\n  annotations:\n    team: payments\n    config.kubernetes.io/index: '0'\n",
        1,
    )
    other = (
        "# a comment kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  port: '8080'\n  on: yes\n"
    )
    r = world.krm(stdin=resource_list(other, sealed, api=api), cwd="deploy/prod/app")
    assert r.returncode == 0, r.stderr
    rl = yaml.safe_load(r.stdout)
    assert rl["apiVersion"] == api and rl["kind"] == "ResourceList"
    cm, s = rl["items"]
    assert cm == yaml.safe_load(other)
    assert "  data:\n    port: '8080'\n    on: yes\n" in r.stdout  # byte for byte, as it came
    assert s["stringData"] == {"password": PLAIN["prod"]} and "sealer" not in s
    annotations = s["metadata"]["annotations"]
    assert annotations["team"] == "payments" and annotations["config.kubernetes.io/index"] == "0"
    assert_stamped(s, "deploy/prod/app")


def test_resource_list_generator_adds_the_files(world: World) -> None:
    r = world.krm(stdin=resource_list(config=generator("api.yaml", needs_hash=True)), cwd="deploy/prod/gen")
    assert r.returncode == 0, r.stderr
    (s,) = yaml.safe_load(r.stdout)["items"]
    assert s["stringData"] == {"password": PLAIN["api"]}
    assert s["metadata"]["annotations"]["kustomize.config.k8s.io/needs-hash"] == "true"
    assert_stamped(s, "deploy/prod/gen/api.yaml")


def test_resource_list_without_sealed_items_comes_back_as_it_came(world: World) -> None:
    text = resource_list("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    r = world.run("krm", stdin=text, cwd=world.root)  # no identity needed: nothing to open
    assert r.returncode == 0 and r.stdout == text, r.stderr


# --- the stream: a Helm post-renderer, a pipe after kustomize build ----------------------------------


def test_stream_is_a_post_renderer(world: World) -> None:
    cm = '# Source: chart/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: "1"\n'
    stream = f"---\n{cm}---\n# Source: chart/templates/db.yaml\n{world.read('deploy/prod/app/db.yaml')}"
    r = world.krm("--stream", stdin=stream, cwd="deploy/prod/app")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"---\n{cm}---\n")  # the other document, byte for byte
    out = docs(r.stdout)
    assert out[0] == yaml.safe_load(cm)
    assert out[1]["stringData"] == {"password": PLAIN["prod"]} and "sealer" not in out[1]
    assert by_kind(kubectl_read(r.stdout, world.tmp), "Secret")[0]["stringData"] == {"password": PLAIN["prod"]}
    plain = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
    assert world.run("krm", "--stream", stdin=plain, cwd=world.root).stdout == plain


# --- unseal --format k8s ---------------------------------------------------------------------------


def test_unseal_k8s_secrets_say_where_they_come_from(world: World) -> None:
    out = world.ok("unseal", "deploy/prod/app/db.yaml", "--format", "k8s", "-i", str(world.keys["prod"])).stdout
    (s,) = docs(out)
    assert_stamped(s, "deploy/prod/app/db.yaml")
    (k,) = kubectl_read(out, world.tmp)
    assert k["kind"] == "Secret" and k["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "sealer"}
    assert k["metadata"]["annotations"]["sealer.dev/source"] == "deploy/prod/app/db.yaml"


# --- the Argo CD config management plugin ----------------------------------------------------------


def _argocd_generate(world: World, app: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The plugin's generate command as the CMP server runs it: in the app's directory, with the
    ARGOCD_APP_* variables, the sidecar's PATH (sealer and kubectl) and its identity."""
    require_tool("kubectl")
    plugin = yaml.safe_load((ROOT / "examples/argocd/plugin.yaml").read_text())
    assert plugin["kind"] == "ConfigManagementPlugin"
    gen = plugin["spec"]["generate"]
    argv = [*gen["command"], *gen.get("args", [])]
    env = world.engine_env(
        PATH=f"{Path(SEALER).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        KUBECONFIG=os.devnull,
        ARGOCD_APP_NAME="shop-prod",
        ARGOCD_APP_NAMESPACE="shop",
        ARGOCD_APP_PROJECT_NAME="default",
        ARGOCD_APP_SOURCE_PATH=app,
        ARGOCD_APP_SOURCE_REPO_URL="https://git.example.com/shop/deploy.git",
        ARGOCD_APP_SOURCE_TARGET_REVISION="main",
        ARGOCD_APP_REVISION="0123456789abcdef0123456789abcdef01234567",
        ARGOCD_APP_REVISION_SHORT="0123456",
        **extra,
    )
    return subprocess.run(argv, cwd=world.root / app, capture_output=True, text=True, env=env, timeout=180)


def test_argocd_plugin_generate_renders_unsealed(world: World) -> None:
    plugin = yaml.safe_load((ROOT / "examples/argocd/plugin.yaml").read_text())
    assert "discover" not in plugin["spec"]  # applications name it; nothing is rendered by accident
    assert "pipefail" in " ".join(plugin["spec"]["generate"]["args"])
    r = _argocd_generate(world, "deploy/prod/argo")
    assert r.returncode == 0, r.stderr
    (s,) = by_kind(docs(r.stdout), "Secret")
    assert s["stringData"] == {"password": PLAIN["prod"]}
    assert_stamped(s, "deploy/prod/argo")
    audit = [json.loads(x) for x in (world.home / "audit.log").read_text().splitlines()]
    assert audit[-1]["event"] == "unseal" and audit[-1]["actor"] == "argocd:shop/shop-prod"


def test_argocd_plugin_generate_fails_closed(world: World) -> None:
    top, text = world.failure_files["tampered"]
    world.write(f"{top}/argo/db.yaml", text)
    world.write(f"{top}/argo/kustomization.yaml", kustomization("resources: [db.yaml]"))
    r = _argocd_generate(world, f"{top}/argo")
    assert r.returncode != 0 and "does not open" in r.stderr
    assert not leaked(r.stdout + r.stderr)


REPLACE_INTO_CONFIGMAP = """\
configMapGenerator:
- name: leak
  literals: [pw=x]
  options: {disableNameSuffixHash: true}
replacements:
- source: {kind: Secret, name: db, fieldPath: stringData.password}
  targets:
  - select: {kind: ConfigMap, name: leak}
    fieldPaths: [data.pw]"""


@pytest.mark.parametrize(
    ("app", "lines"),
    [
        ("sealer-in-build", ("resources: [../app]",)),  # lists sealer's transformer: plugins are off
        ("moved", ("resources: [../argo]", "namespace: attacker")),  # the Secret moved: its values refuse
        ("copied", ("resources: [../argo]", REPLACE_INTO_CONFIGMAP)),  # a token copied into a ConfigMap
        ("both", ("resources: [../argo]", "namespace: attacker", "namePrefix: x-", REPLACE_INTO_CONFIGMAP)),
    ],
)
def test_argocd_plugin_leaves_no_kustomization_a_way_to_route_plaintext(
    world: World, app: str, lines: tuple[str, ...]
) -> None:
    """Whoever can push a kustomization writes the build, so the plugin unseals only after it
    (--stream, the last stage): a moved or copied sealed value reaches sealer still sealed."""
    world.write(f"deploy/prod/{app}/kustomization.yaml", kustomization(*lines))
    r = _argocd_generate(world, f"deploy/prod/{app}")
    assert r.returncode != 0, r.stdout
    assert not leaked(r.stdout + r.stderr)


def test_krm_env_comes_from_sealer_env_too(world: World) -> None:
    """SEALER_ENV reaches the plugins kustomize starts, where no --env can be passed."""
    r = world.krm("--stream", stdin=world.read("deploy/prod/app/db.yaml"), cwd="deploy/prod/app")
    assert r.returncode == 0, r.stderr
    r = world.run(
        "krm",
        "--stream",
        stdin=world.read("deploy/prod/app/db.yaml"),
        cwd=world.root / "deploy/prod/app",
        env={"SEALER_IDENTITY_FILE": str(world.identities), "SEALER_ENV": "staging"},
    )
    assert r.returncode == 1 and "staging" in r.stderr and not leaked(r.stdout + r.stderr)


# --- every rule, at every convention ---------------------------------------------------------------

CASES = {"tampered": "does not open", "retired": "retired", "unsigned": "not signed"}
CONVENTIONS = ("resource-list", "kpt", "transformer", "generator", "stream")


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_value_fails_the_render_with_no_plaintext(world: World, case: str, convention: str) -> None:
    top, text = world.failure_files[case]
    if convention in ("transformer", "generator"):
        r = world.kustomize(f"{top}/{convention}")
        assert r.returncode != 0
        assert "sealer: error: " in r.stderr and CASES[case] in r.stderr, r.stderr
    elif convention == "kpt":
        r = world.kpt(f"{top}/stdin", "--package", f"{top}/stdin")
        assert r.returncode != 0
        assert "sealer: error: " in r.stderr and CASES[case] in r.stderr, r.stderr
    elif convention == "stream":
        r = world.krm("--stream", stdin=text, cwd=f"{top}/stdin")
        assert_clean_failure(r, CASES[case], code=None)
        assert r.stdout == ""
    else:
        r = world.krm(stdin=resource_list(text), cwd=f"{top}/stdin")
        line = assert_clean_failure(r, CASES[case], code=None)
        rl = yaml.safe_load(r.stdout)  # the KRM way to fail: a results entry, no items
        assert rl["kind"] == "ResourceList" and rl["items"] == []
        (result,) = rl["results"]
        assert result["severity"] == "error" and result["message"] == line.removeprefix("sealer: error: ")
    assert not leaked(r.stdout + r.stderr), leaked(r.stdout + r.stderr)


def test_krm_unseals_are_audited(world: World) -> None:
    log = world.home / "audit.log"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    assert world.kustomize("deploy/prod/app").returncode == 0
    lines = [json.loads(x) for x in log.read_text().splitlines()[before:]]
    assert [(e["event"], e["env"], e["result"], e["reason"]) for e in lines] == [("unseal", "prod", "ok", "krm")]
    assert lines[0]["kids"] == [world._active_kid("prod")]


def test_outside_a_repository_nothing_is_opened(world: World, tmp_path: Path) -> None:
    r = world.run("krm", "--stream", stdin=world.read("deploy/prod/app/db.yaml"), cwd=tmp_path)
    assert_clean_failure(r, "outside any sealer repository", code=None)


@pytest.mark.parametrize("convention", ["resource-list", "stream"])
def test_no_plaintext_without_its_audit_line(world: World, tmp_path: Path, convention: str) -> None:
    """An audit log that cannot be written stops the render before any plaintext leaves."""
    text = world.read("deploy/prod/app/db.yaml")
    stdin, args = (resource_list(text), ()) if convention == "resource-list" else (text, ("--stream",))
    r = world.run(
        "krm",
        *args,
        stdin=stdin,
        cwd=world.root / "deploy/prod/app",
        env={"SEALER_IDENTITY_FILE": str(world.identities), "SEALER_AUDIT_LOG": str(tmp_path)},  # a directory
    )
    assert_clean_failure(r, "nothing was rendered", code=None)
    assert not leaked(r.stdout + r.stderr)
    if convention == "resource-list":
        assert yaml.safe_load(r.stdout)["results"][0]["severity"] == "error"
    else:
        assert r.stdout == ""


def test_install_plugin_refuses_a_home_that_leads_elsewhere_or_others_can_write(tmp_path: Path) -> None:
    """kustomize runs what lies under the plugin home: a link out of it, or a directory another user
    may write, would let someone else choose what runs with the key."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "sealer.dev").symlink_to(elsewhere)
    r = subprocess.run([SEALER, "krm", "install-plugin", "--dir", str(home)], capture_output=True, text=True)
    assert_clean_failure(r, "symbolic link")
    assert list(elsewhere.iterdir()) == []
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    r = subprocess.run([SEALER, "krm", "install-plugin", "--dir", str(shared)], capture_output=True, text=True)
    assert_clean_failure(r, "writable by other users")
    assert list(shared.iterdir()) == []


def test_a_failed_items_audit_line_takes_no_environment_from_its_name(world: World) -> None:
    """A krm failure names the item by a label built from metadata.name; a name like `x/../../staging/y`
    must not turn that label into a path whose rule files the failure under another environment."""
    text = world.read("deploy/prod/app/db.yaml").replace("name: db", 'name: "x/../../../../staging/y"')
    r = world.krm("--stream", stdin=text, cwd="deploy/prod/app")
    assert r.returncode == 1 and not leaked(r.stdout + r.stderr)
    last = json.loads((world.home / "audit.log").read_text().splitlines()[-1])
    assert last["result"] == "fail" and last.get("env") != "staging"


def test_a_document_cannot_claim_its_source_or_commit(world: World) -> None:
    """sealer.dev/source and sealer.dev/commit say where a Secret came from: sealer writes them, so a
    sealed document that carries its own (anyone with the public key can write one) is overruled."""
    forged = world.read("deploy/prod/app/db.yaml").replace(
        "  namespace: shop\n",
        '  namespace: shop\n  annotations:\n    sealer.dev/source: "deploy/staging/x.yaml"\n'
        '    sealer.dev/commit: "0000000000000000000000000000000000000000"\n',
        1,
    )
    world.write("deploy/prod/forged/db.yaml", forged)
    out = world.ok("unseal", "deploy/prod/forged/db.yaml", "--format", "k8s", "-i", str(world.keys["prod"])).stdout
    r = world.krm("--stream", stdin=forged, cwd="deploy/prod/forged")
    assert r.returncode == 0, r.stderr
    for text, source in ((out, "deploy/prod/forged/db.yaml"), (r.stdout, "deploy/prod/forged")):
        (s,) = docs(text)
        assert s["metadata"]["annotations"]["sealer.dev/source"] == source
        assert "sealer.dev/commit" not in s["metadata"]["annotations"]
