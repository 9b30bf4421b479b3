#!/usr/bin/env python3
"""sealer, end to end: a plaintext GitOps repository adopts sealer, one step at a time.

Run it with `make demo` (or `.venv/bin/python examples/demo.py`). It copies examples/repo into a fresh
temporary directory, drives the real `sealer` command (the console script installed next to this
interpreter) through every step a team goes through, prints each command and its output, and checks
what each step must do. Any surprise exits non-zero, so the demo doubles as an end-to-end test
(tests/test_demo.py runs it).

Nothing outside the temporary directories is touched: private keys are written to a directory outside
the copied repository, and SEALER_CONFIG_DIR points at a temporary directory, so your own sealer keys
and configuration are neither read nor written. Every value in examples/repo is a fake demo value.

Standard library only. `--keep` leaves the temporary directories in place for a look around.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE_REPO = HERE / "repo"
RULES = HERE / "rules.yaml"
SEALER = Path(sys.executable).parent / "sealer"

ENVS = ("dev", "staging", "prod")
# Plain manifests with nothing secret in them: `sealer seal` leaves them as they are, `sealer check`
# passes them, and `sealer unseal DIR` leaves them out.
PLAIN_MANIFESTS = ("deploy/prod/deployment.yaml",)
# Every secret value in examples/repo says so ("...-not-real", "..._not_real"): none may survive sealing.
PLAINTEXT_MARKERS = ("not-real", "not_real")
NEW_PASSWORD = "demo-rotated-prod-password-2"  # noqa: S105 (a fake demo value)
TIMEOUT = 60  # seconds per command; a hung command is a failure, not a hang of the demo


class DemoFailure(Exception):
    """A step did not do what it must."""


class Demo:
    def __init__(self, repo: Path, identities: Path, config_dir: Path, empty_config_dir: Path) -> None:
        self.repo = repo
        self.identities = identities
        self.empty_config_dir = empty_config_dir
        self.step_no = 0
        self.step_title = ""
        self.checks = 0
        # The environment of every command: the caller's, minus any SEALER_* setting (a real
        # SEALER_IDENTITY of yours must not leak in), with a private config dir.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
        self.env["SEALER_CONFIG_DIR"] = str(config_dir)
        # Every command appends to one audit log (hash-chained, never a value); the last step verifies it.
        self.audit_log = config_dir.parent / "audit.log"
        self.env["SEALER_AUDIT_LOG"] = str(self.audit_log)

    # --- output -----------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        self.step_title = title
        heading = f"{self.step_no}. {title}"
        print(f"\n== {heading} {'=' * max(3, 96 - len(heading))}", flush=True)

    @staticmethod
    def say(text: str) -> None:
        print(textwrap.indent(text.rstrip("\n"), "   ") if text.strip() else "", flush=True)

    @staticmethod
    def show_output(text: str) -> None:
        for line in text.splitlines():
            print(f"    {line}".rstrip())
        sys.stdout.flush()

    def shown(self, argv: Sequence[str]) -> str:
        """The command line as a person would type it in the repository."""
        words = []
        for a in argv:
            if a == str(SEALER):
                a = "sealer"
            elif a == sys.executable:
                a = "python"
            words.append(a)
        return shlex.join(words)

    # --- running and checking ---------------------------------------------------------------------

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        expect_rc: int | None = 0,
        show: bool = True,
        prefix: str = "",
    ) -> subprocess.CompletedProcess[str]:
        """Run `sealer ARGS…` in the repository; print the command line and (unless show=False) its output."""
        argv = [str(SEALER), *args]
        line = self.shown(argv)
        if stdin is not None:
            line = f"printf '%s\\n' {shlex.quote(stdin)} | {prefix}{line}"
        elif prefix:
            line = prefix + line
        print(f"$ {line}", flush=True)
        try:
            result = subprocess.run(
                argv,
                cwd=self.repo,
                env=dict(env if env is not None else self.env),
                input=None if stdin is None else stdin + "\n",
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DemoFailure(f"{line}: no answer after {TIMEOUT} s") from None
        if show:
            self.show_output(result.stdout)
            self.show_output(result.stderr)
        if expect_rc == 0 and result.returncode != 0:
            if not show:
                self.show_output(result.stderr)
            raise DemoFailure(f"{line}: exit status {result.returncode}, expected 0")
        if expect_rc is None and result.returncode == 0:
            raise DemoFailure(f"{line}: succeeded, but it must fail")
        return result

    def expect(self, condition: bool, what: str) -> None:
        """One checked expectation: what the step must have done."""
        if not condition:
            raise DemoFailure(what)
        self.checks += 1

    # --- files ------------------------------------------------------------------------------------

    def all_files_of(self, env: str) -> list[str]:
        """Every YAML file of ENV (what `sealer seal deploy/ENV/*.yaml` names), repository-relative."""
        d = self.repo / "deploy" / env
        return [p.relative_to(self.repo).as_posix() for p in sorted(d.glob("*.yaml"))]

    def files_of(self, env: str) -> list[str]:
        """The files of ENV that hold secrets, repository-relative."""
        return [f for f in self.all_files_of(env) if f not in PLAIN_MANIFESTS]

    def read(self, rel: str) -> str:
        return (self.repo / rel).read_text(encoding="utf-8")

    def snapshot(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.repo).as_posix(): p.read_bytes()
            for p in sorted((self.repo / "deploy").rglob("*"))
            if p.is_file()
        }


def run_demo(demo: Demo) -> dict[str, int]:
    """Every step, in order. Returns a few numbers for the summary."""
    repo = demo.repo
    original = demo.snapshot()
    stats = {"files": 0, "values": 0}

    # 1 -------------------------------------------------------------------------------------------
    demo.step("A plaintext GitOps repository adopts sealer")
    demo.say(
        "The team's repository before sealer: Secrets and Helm values in plaintext, one directory per environment."
    )
    demo.show_output("\n".join(sorted(original)))
    demo.run("init", *(a for e in ENVS for a in ("--env", e)))
    config = repo / ".sealer.yaml"
    demo.expect(config.is_file(), "sealer init wrote no .sealer.yaml")
    for e in ENVS:
        demo.expect((repo / "keys" / f"{e}.yaml").is_file(), f"sealer init wrote no keys/{e}.yaml")
        demo.expect(
            f'"deploy/{e}/**"' in config.read_text(encoding="utf-8"),
            f".sealer.yaml does not give deploy/{e}/** to environment {e}",
        )
    rules = RULES.read_text(encoding="utf-8")
    with config.open("a", encoding="utf-8") as fh:
        fh.write(rules)
    demo.say(
        "\nIn Helm values only the secret-looking values get sealed: the demo appends "
        "examples/rules.yaml to .sealer.yaml:"
    )
    demo.show_output(rules)

    # 2 -------------------------------------------------------------------------------------------
    demo.step("The key custodian makes one key pair per environment")
    demo.say(f"Private keys go to {demo.identities}, outside the repository; public keys to keys/ENV.yaml.")
    recipients = {}
    for e in ENVS:
        out = demo.identities / f"{e}.txt"
        r = demo.run("keys", "generate", e, "--out", str(out))
        recipient = r.stdout.strip()
        demo.expect(recipient.startswith("age1"), f"keys generate {e} printed no age1… recipient")
        demo.expect(out.is_file(), f"keys generate {e} wrote no identity file")
        demo.expect(stat.S_IMODE(out.stat().st_mode) == 0o600, f"{out} is not mode 0600")
        demo.expect("AGE-SECRET-KEY-1" in out.read_text(encoding="utf-8"), f"{out} holds no age identity")
        demo.expect(recipient in demo.read(f"keys/{e}.yaml"), f"keys/{e}.yaml does not list the new key")
        recipients[e] = recipient
    leaked = [p for p in repo.rglob("*") if p.is_file() and b"AGE-SECRET-KEY-" in p.read_bytes()]
    demo.expect(not leaked, f"a private key landed in the repository: {leaked}")

    # 3 -------------------------------------------------------------------------------------------
    demo.step("Everyone can list the public keys (they are committed)")
    r = demo.run("keys", "list")
    rows = r.stdout.splitlines()
    demo.expect(len(rows) == len(ENVS), f"keys list shows {len(rows)} keys, expected {len(ENVS)}")
    for e in ENVS:
        demo.expect(
            any(row.split()[0] == e and "active" in row and recipients[e] in row for row in rows),
            f"keys list has no active key for {e}",
        )
    listed = json.loads(demo.run("keys", "list", "--output", "json", show=False).stdout)
    demo.say("(--output json gives the same for scripts)")
    kid = {row["env"]: row["kid"] for row in listed}
    demo.expect(set(kid) == set(ENVS), "keys list --output json does not name every environment")

    # 4 -------------------------------------------------------------------------------------------
    demo.step("A developer seals every environment's files (public keys only)")
    demo.say(
        f"{', '.join(PLAIN_MANIFESTS)} is a plain Deployment: in a Kubernetes manifest other than a Secret"
        " nothing is sealed unless a rule in .sealer.yaml says so, so it stays as it is."
    )
    for e in ENVS:
        files = demo.files_of(e)
        r = demo.run("seal", *demo.all_files_of(e))
        sealed = sum(int(n) for n in re.findall(r"sealed (\d+) value", r.stderr))
        demo.expect(sealed > 0, f"sealing {e} sealed nothing")
        stats["files"] += len(files)
        stats["values"] += sealed
        for f in files:
            text = demo.read(f)
            demo.expect("ENC[sealer.v1," in text, f"{f} holds no sealed value")
            demo.expect(f"\nsealer:\n  version: 1\n  env: {e}\n" in text, f"{f} has no sealer: block for {e}")
            left = [m for m in PLAINTEXT_MARKERS if m in text]
            demo.expect(not left, f"{f} still holds a plaintext secret ({left})")
            tokens = re.findall(r"ENC\[sealer\.v1,([0-9a-f]+),", text)
            demo.expect(
                bool(tokens) and set(tokens) == {kid[e]}, f"{f}: values are not all sealed to {e}'s key {kid[e]}"
            )
    for f in PLAIN_MANIFESTS:
        demo.expect((repo / f).read_bytes() == original[f], f"{f} changed, but it holds nothing to seal")
        demo.expect(f"{f}: nothing new to seal" in r.stderr, f"sealer seal did not say it left {f} alone")
    values = demo.read("deploy/prod/values.yaml")
    for kept in (
        "replicaCount: 3",
        "  port: 5432",
        "  enabled: true",
        "timeoutSeconds: 2.5",
        "repository: registry.example.com/orders",
    ):
        demo.expect(f"{kept}\n" in values, f"deploy/prod/values.yaml: {kept!r} should stay plaintext")
    for path in ("  password: ENC[", "  apiKey: ENC[", '    token: "ENC[', "    token: ENC["):
        demo.expect(path in values, f"deploy/prod/values.yaml: {path.strip()}… should be sealed")

    # 5 -------------------------------------------------------------------------------------------
    demo.step("The result is diff-friendly: the sealed prod Secret as committed")
    print("$ cat deploy/prod/db.yaml")
    db = demo.read("deploy/prod/db.yaml")
    demo.show_output(db)
    demo.expect(db.startswith("# Database credentials"), "the file's leading comments are gone")
    for kept in (
        "  name: orders-db\n",
        "  namespace: orders\n",
        "type: Opaque\n",
        "# single-quoted\n",
        "  # a multi-line value",
    ):
        demo.expect(kept in db, f"deploy/prod/db.yaml lost {kept.strip()!r}")
    demo.expect(db.count("ENC[sealer.v1,") == 5, "deploy/prod/db.yaml should hold 5 sealed values")
    print("$ cat deploy/prod/values.yaml   # Helm values: only the paths the rule selects are sealed")
    demo.show_output(demo.read("deploy/prod/values.yaml"))

    # 6 -------------------------------------------------------------------------------------------
    demo.step("Sealing again changes no byte")
    before = demo.snapshot()
    demo.run("seal", *(f for e in ENVS for f in demo.all_files_of(e)))
    after = demo.snapshot()
    demo.expect(set(before) == set(after), "sealing again added or removed files")
    for f in sorted(before):
        same = before[f] == after[f]
        print(f"    {f}: {'unchanged' if same else 'CHANGED'} ({len(after[f])} bytes)")
        demo.expect(same, f"sealing again changed {f}")

    # 7 -------------------------------------------------------------------------------------------
    demo.step("A developer changes one value without any private key")
    demo.say("No SEALER_IDENTITY*, and a config dir without keys: `set` only needs the public key.")
    dev_env = {k: v for k, v in demo.env.items() if not k.startswith("SEALER_IDENTITY")}
    dev_env["SEALER_CONFIG_DIR"] = str(demo.empty_config_dir)
    old = demo.read("deploy/prod/db.yaml")
    demo.run(
        "set",
        "deploy/prod/db.yaml",
        "stringData.DB_PASSWORD",
        env=dev_env,
        stdin=NEW_PASSWORD,
        prefix="SEALER_CONFIG_DIR=<empty dir> ",
    )
    new = demo.read("deploy/prod/db.yaml")
    diff = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), "a/deploy/prod/db.yaml", "b/deploy/prod/db.yaml", lineterm=""
        )
    )
    print("$ git diff deploy/prod/db.yaml   # as difflib shows it")
    demo.show_output("\n".join(diff))
    removed = [x for x in diff if x.startswith("-") and not x.startswith("---")]
    added = [x for x in diff if x.startswith("+") and not x.startswith("+++")]
    demo.expect(len(removed) == 1 and len(added) == 1, f"set changed {len(removed)} line(s), expected 1")
    demo.expect(
        removed[0].startswith("-  DB_PASSWORD: ") and added[0].startswith("+  DB_PASSWORD: "),
        "set changed another line than DB_PASSWORD's",
    )
    demo.expect(NEW_PASSWORD not in new, "the new value is in the file in plaintext")
    written = [p for p in demo.empty_config_dir.rglob("*") if p.is_file()]
    demo.expect(
        not [p for p in written if p.parent.name == "identities" or b"SECRET-KEY" in p.read_bytes()],
        "sealer set wrote a key into the config dir",
    )

    # 8 -------------------------------------------------------------------------------------------
    demo.step("CI gates the pull request with `sealer check` (no private key)")
    demo.say("Every YAML file under an environment's paths, the plain Deployment included, must pass.")
    r = demo.run("check", env=dev_env, prefix="SEALER_CONFIG_DIR=<empty dir> ")
    n_files = sum(len(demo.all_files_of(e)) for e in ENVS)
    demo.expect(f"checked {n_files} file(s)" in r.stderr and "no problems" in r.stderr, "sealer check found problems")
    report = json.loads(demo.run("check", "--output", "json", env=dev_env, show=False).stdout)
    demo.expect(report["ok"] and report["files"] == n_files, f"sealer check --output json: {report}")
    sample = repo / "deploy/prod/values.yaml"
    kept = sample.read_bytes()
    sample.write_text(demo.read("deploy/prod/values.yaml") + "extra_token: plain-not-real\n", encoding="utf-8")
    r = demo.run("check", env=dev_env, expect_rc=None, prefix="SEALER_CONFIG_DIR=<empty dir> ")
    demo.expect(
        r.stdout.startswith("deploy/prod/values.yaml: extra_token: not sealed"),
        "sealer check did not name a plaintext value left in values.yaml",
    )
    sample.write_bytes(kept)
    demo.say("(a plaintext value slipped into values.yaml fails the gate, naming the file and the value)")

    # 9 -------------------------------------------------------------------------------------------
    demo.step("Deploy tooling unseals prod to Kubernetes manifests (prod private key)")
    prod_id = str(demo.identities / "prod.txt")
    r = demo.run("unseal", "deploy/prod", "--format", "k8s", "-i", prod_id)
    out = r.stdout
    demo.expect(out.count("kind: Secret") == 2, "expected the two prod Secrets in the output")
    demo.expect("name: orders-db" in out and "name: orders-tls" in out, "a prod Secret is missing")
    demo.expect(f"DB_PASSWORD: {NEW_PASSWORD}" in out, "the output does not carry the value set in step 7")
    demo.expect("Deployment" not in out, "the plain Deployment should not be in the unsealed output")
    demo.expect("ENC[" not in out and "sealer:" not in out, "the output still holds sealed values or sealer:")
    demo.expect("values.yaml" in r.stderr, "sealer should say it skipped values.yaml (not a manifest)")
    # The same, as JSON, to check every value and its type precisely (without printing it all again).
    r = demo.run("unseal", "deploy/prod", "--format", "json", "-i", prod_id, show=False)
    docs = {Path(d["file"]).name: d["content"] for d in json.loads(r.stdout)}
    demo.expect(set(docs) == {"db.yaml", "tls.yaml", "values.yaml"}, f"unsealed {sorted(docs)}")
    db_doc, tls_doc, values_doc = docs["db.yaml"], docs["tls.yaml"], docs["values.yaml"]
    demo.expect(db_doc["stringData"]["DB_PASSWORD"] == NEW_PASSWORD, "DB_PASSWORD is not the new value")
    demo.expect(
        db_doc["stringData"]["PGSSLROOTCERT"].endswith("-----END CERTIFICATE-----\n"),
        "the multi-line PGSSLROOTCERT did not come back whole",
    )
    demo.expect(base64.b64decode(db_doc["data"]["DB_PORT"]) == b"5432", "data.DB_PORT did not come back")
    crt = base64.b64decode(tls_doc["data"]["tls.crt"]).decode()
    demo.expect(
        crt.startswith("-----BEGIN CERTIFICATE-----\nFAKE DEMO CERTIFICATE FOR PROD"),
        'data["tls.crt"] did not come back',
    )
    demo.expect(
        values_doc["replicaCount"] == 3
        and values_doc["ingress"]["enabled"] is True
        and values_doc["payments"]["webhook"]["timeoutSeconds"] == 2.5,
        "values.yaml lost an int, a bool or a float",
    )
    demo.expect(
        values_doc["database"]["password"] == "demo-values-password-not-real"  # noqa: S105 (fake)
        and values_doc["notifications"][0]["token"] == "demo-chat-token-not-real",  # noqa: S105
        "values.yaml's sealed values did not come back",
    )
    demo.say(
        "checked with --format json: every value and its type came back (str, base64 data incl. "
        'data["tls.crt"], multi-line, int, bool, float, list items)'
    )

    # 10 ------------------------------------------------------------------------------------------
    demo.step("The staging key cannot open prod")
    r = demo.run("unseal", "deploy/prod", "--format", "k8s", "-i", str(demo.identities / "staging.txt"), expect_rc=None)
    print(f"    (exit status {r.returncode})")
    demo.expect(r.returncode == 1, f"exit status {r.returncode}, expected 1")
    demo.expect(r.stdout == "", "a failed unseal printed something on stdout")
    err = r.stderr.strip().splitlines()
    demo.expect(len(err) == 1 and err[0].startswith("sealer: error: "), "expected one `sealer: error:` line")
    demo.expect(kid["prod"] in err[0], "the error should name the prod key id it needs")
    demo.expect("Traceback" not in r.stderr, "sealer printed a traceback")

    # 11 ------------------------------------------------------------------------------------------
    demo.step("`sealer exec`: the values reach a process's environment, and nothing else")
    code = 'import os; print(len(os.environ["DB_PASSWORD"]))'
    r = demo.run("exec", "deploy/prod/db.yaml", "-i", prod_id, "--", sys.executable, "-c", code)
    demo.expect(
        r.stdout.strip() == str(len(NEW_PASSWORD)),
        f"the child saw a DB_PASSWORD of length {r.stdout.strip()}, expected {len(NEW_PASSWORD)}",
    )
    demo.say(f"the child saw DB_PASSWORD ({len(NEW_PASSWORD)} characters); it printed only the length")

    # 12 ------------------------------------------------------------------------------------------
    demo.step("kustomize renders prod with sealer's plugin (`sealer krm`), under prod's rules")
    render_with_kustomize(demo, prod_id)

    # 13 ------------------------------------------------------------------------------------------
    demo.step("The custodian rotates prod's key and re-seals the repository")
    old_prod = demo.read("deploy/prod/db.yaml")
    demo.run("keys", "rotate", "prod", "--out", str(demo.identities / "prod-2.txt"))
    demo.run("reseal", "--env", "prod", "--dry-run")
    demo.run("reseal", "--env", "prod", "-i", prod_id)
    new_prod = demo.read("deploy/prod/db.yaml")
    strip = re.compile(r"ENC\[[^\]]*\]")
    demo.expect(strip.sub("T", old_prod) == strip.sub("T", new_prod), "reseal changed more than the tokens")
    demo.expect(kid["prod"] not in new_prod, "a prod value is still on the old key after reseal")
    r = demo.run(
        "unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(demo.identities / "prod-2.txt"), show=False
    )
    demo.expect(f"DB_PASSWORD={NEW_PASSWORD}" in r.stdout, "the new key does not open the re-sealed value")
    demo.say("only the tokens changed; the new key opens every value (the old one still would, until retired)")
    demo.run("keys", "retire", "prod", kid["prod"])
    demo.run("status", "--env", "prod")

    # 14 ------------------------------------------------------------------------------------------
    demo.step("Every command left a line in the audit log, and the chain verifies")
    demo.run("audit", "verify", str(demo.audit_log))
    log = demo.audit_log.read_text()
    events = [json.loads(line)["event"] for line in log.splitlines()]
    demo.say(f"{len(events)} events: {', '.join(sorted(set(events)))}")
    demo.expect({"seal", "set", "unseal", "rotate", "reseal", "retire"} <= set(events), "an event is missing")
    demo.expect(NEW_PASSWORD not in log, "a value reached the audit log")
    run_references(demo)
    return stats


APP_KUSTOMIZATION = """\
# The orders app for prod, rendered by kustomize. sealer's generator reads the sealed files itself
# (their paths, path rules and signatures all apply) and kustomize adds a content hash to each
# Secret's name, so the pods roll when a value is rotated.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
generators:
  - sealer.yaml
resources:
  - deployment.yaml
"""
APP_GENERATOR = """\
apiVersion: sealer.dev/v1alpha1
kind: SealerGenerator
metadata:
  name: orders-secrets
files:
  - ../../deploy/prod/db.yaml
  - ../../deploy/prod/tls.yaml
needsHash: true
"""


def render_with_kustomize(demo: Demo, prod_id: str) -> None:
    """`sealer krm install-plugin`, then `kubectl kustomize --enable-alpha-plugins` over an app that
    generates prod's Secrets; the Deployment's references follow the hashed names."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        demo.say("(skipped: kubectl is not installed; `kubectl kustomize` runs sealer's plugin here)")
        return
    top = demo.repo.parent
    plugins, tmp = top / "kustomize-plugins", top / "kustomize-tmp"
    tmp.mkdir()
    demo.run("krm", "install-plugin", "--dir", str(plugins))
    app = demo.repo / "apps" / "orders"
    app.mkdir(parents=True)
    (app / "kustomization.yaml").write_text(APP_KUSTOMIZATION)
    (app / "sealer.yaml").write_text(APP_GENERATOR)
    shutil.copy(demo.repo / "deploy/prod/deployment.yaml", app / "deployment.yaml")
    print("$ cat apps/orders/sealer.yaml")
    demo.show_output(APP_GENERATOR)
    env = {**demo.env, "KUSTOMIZE_PLUGIN_HOME": str(plugins), "SEALER_IDENTITY_FILE": prod_id, "TMPDIR": str(tmp)}
    print(
        "$ SEALER_IDENTITY_FILE=prod.txt KUSTOMIZE_PLUGIN_HOME=… kubectl kustomize --enable-alpha-plugins apps/orders"
    )
    try:
        r = subprocess.run(
            [kubectl, "kustomize", "--enable-alpha-plugins", "apps/orders"],
            cwd=demo.repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DemoFailure(f"kubectl kustomize: no answer after {TIMEOUT} s") from None
    if r.returncode != 0:
        demo.show_output(r.stderr)
        raise DemoFailure(f"kubectl kustomize: exit status {r.returncode}, expected 0")
    out = r.stdout
    names = re.findall(r"^  name: (orders-(?:db|tls)-[a-z0-9]+)$", out, re.M)
    shown = [
        line for line in out.splitlines() if re.match(r"^(kind|  name|  DB_USER|    app\.kubernetes|    sealer)", line)
    ]
    demo.show_output("\n".join(shown) + "\n(…)")
    demo.expect(out.count("kind: Secret") == 2 and len(names) == 2, "expected two Secrets with hashed names")
    demo.expect(f"DB_PASSWORD: {NEW_PASSWORD}" in out, "the rendered Secret does not carry the unsealed value")
    demo.expect("ENC[" not in out and "sealer:\n" not in out, "the render still holds sealed values")
    demo.expect("app.kubernetes.io/managed-by: sealer" in out, "the Secret does not say sealer manages it")
    demo.expect(
        f"name: {names[0]}" in out.split("kind: Deployment", 1)[1], "the Deployment does not follow the hashed name"
    )
    shutil.rmtree(demo.repo / "apps")  # the rest of the demo works on the environments' files
    demo.say(
        "the Secrets came out unsealed, named with a content hash the Deployment follows; the same door as"
        " unseal (docs/krm.md)"
    )


# --- references: what workloads consume (issue 12) -------------------------------------------------
# A section of its own, after the adoption above: it adds two files to prod and checks what
# `sealer check` and `sealer refs` say about the references between workloads and Secret keys.

PAYMENTS_SECRET = """\
# The payments provider's credentials (prod). Fake demo values.
apiVersion: v1
kind: Secret
metadata:
  name: payments
  namespace: orders
stringData:
  PAYMENTS_API_KEY: demo-payments-key-not-real
  PAYMENTS_OLD_API_KEY: demo-payments-old-key-not-real   # the key before last year's migration
"""  # noqa: S105 (fake demo values)

SETTLE_CRONJOB = """\
# Nightly settlement: a CronJob reading the database and the payments provider's key.
apiVersion: batch/v1
kind: CronJob
metadata:
  name: settle
  namespace: orders
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: settle
              image: registry.example.com/settle:2.0.1
              env:
                - name: DB_PASSWORD
                  valueFrom:
                    secretKeyRef: {name: orders-db, key: DB_PASSWORD}
                - name: PAYMENTS_API_KEY
                  valueFrom:
                    secretKeyRef: {name: payments, key: PAYMENTS_APIKEY}
"""


def run_references(demo: Demo) -> None:
    """check fails on a reference to a key nobody provides; refs finds the key nobody uses."""
    demo.step("References resolve before deploy: `sealer check` catches a key nobody provides")
    demo.say(
        "A developer adds a nightly CronJob and seals the payments Secret it reads. The CronJob asks for"
        " PAYMENTS_APIKEY; the Secret has PAYMENTS_API_KEY. Kubernetes would only say so when the job"
        " first runs, at 2 a.m.; `sealer check` says so in the pull request, without any private key."
    )
    (demo.repo / "deploy/prod/payments.yaml").write_text(PAYMENTS_SECRET, encoding="utf-8")
    demo.run("seal", "deploy/prod/payments.yaml")
    cronjob = demo.repo / "deploy/prod/settle.yaml"
    cronjob.write_text(SETTLE_CRONJOB, encoding="utf-8")
    r = demo.run("check", expect_rc=None)
    want = (
        "deploy/prod/settle.yaml: CronJob orders/settle, container settle: env PAYMENTS_API_KEY: Secret"
        " orders/payments in prod has no key 'PAYMENTS_APIKEY' (its keys: PAYMENTS_API_KEY, PAYMENTS_OLD_API_KEY)"
    )
    demo.expect(r.returncode == 1 and r.stdout.splitlines() == [want], "sealer check did not name the missing key")
    rows = json.loads(demo.run("check", "--output", "json", expect_rc=None, show=False).stdout)["problems"]
    demo.expect(
        [(p["code"], p["workload"], p["containers"], p["secret"], p["key"]) for p in rows]
        == [("missing-key", "CronJob/settle", ["settle"], "payments", "PAYMENTS_APIKEY")],
        f"sealer check --output json: {rows}",
    )
    cronjob.write_text(SETTLE_CRONJOB.replace("key: PAYMENTS_APIKEY", "key: PAYMENTS_API_KEY"), encoding="utf-8")
    r = demo.run("check")
    demo.expect("no problems" in r.stderr, "sealer check still fails after the fix")
    demo.say("(fixed: the reference names the key the Secret has, and the gate passes)")

    demo.step("`sealer refs`: who consumes which key, and which key nobody does")
    r = demo.run("refs", "--env", "prod")
    lines = r.stdout.splitlines()
    at = next((i for i, x in enumerate(lines) if x.startswith("    PAYMENTS_OLD_API_KEY  key ")), None)
    demo.expect(
        at is not None and lines[at + 1] == "      unused: no workload consumes it",
        "sealer refs did not mark PAYMENTS_OLD_API_KEY unused",
    )
    demo.expect(
        any(x.startswith("      <- CronJob orders/settle, container settle: env PAYMENTS_API_KEY") for x in lines),
        "sealer refs did not show the CronJob consuming PAYMENTS_API_KEY",
    )
    (prod,) = json.loads(demo.run("refs", "--env", "prod", "--output", "json", show=False).stdout)
    unused = [(u["name"], u["key"]) for u in prod["unused"]]
    demo.expect(unused == [("payments", "PAYMENTS_OLD_API_KEY")], f"unused keys in prod: {unused}")
    demo.say(
        "PAYMENTS_OLD_API_KEY is a dormant credential: nothing deployed reads it, so it can be revoked at the"
        " provider and removed. The same map as a graph for the pull request:"
    )
    graph = demo.run("refs", "--env", "prod", "--output", "mermaid").stdout
    demo.expect(graph.startswith("graph LR\n") and "-->" in graph, "sealer refs --output mermaid gave no graph")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if not SEALER.is_file():
        print(
            f"demo: no sealer command at {SEALER}; install the package (make demo does) and run this "
            "file with the virtualenv's python",
            file=sys.stderr,
        )
        return 2
    start = time.monotonic()
    top = Path(tempfile.mkdtemp(prefix="sealer-demo-"))
    demo = None
    try:
        repo = top / "repo"
        shutil.copytree(EXAMPLE_REPO, repo)
        identities = top / "identities"  # outside the repository, as private keys must be
        config_dir = top / "config"
        empty = top / "developer-config"
        for d in (identities, config_dir, empty):
            d.mkdir(mode=0o700)
        demo = Demo(repo, identities, config_dir, empty)
        print(f"sealer demo: a copy of examples/repo in {repo}", flush=True)
        stats = run_demo(demo)
    except DemoFailure as e:
        where = f"step {demo.step_no} ({demo.step_title})" if demo else "setup"
        print(f"\nDEMO FAILED at {where}: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"\n(kept {top})")
        else:
            shutil.rmtree(top, ignore_errors=True)
    elapsed = time.monotonic() - start
    print(f"\n== Summary {'=' * 88}")
    print(
        textwrap.dedent(f"""\
        - {len(ENVS)} environments ({", ".join(ENVS)}), one key pair each; private keys never in the repo
        - {stats["files"]} files sealed, {stats["values"]} values; the Deployment left alone
        - sealing again: no byte changed; `sealer set` without a private key: one line changed
        - `sealer check` (the CI gate, no private key) passed every file, the plain Deployment included
        - prod unsealed to Kubernetes manifests with the prod key; the staging key was refused
        - `sealer exec` handed the values to a child process without writing them anywhere
        - kustomize rendered prod through sealer's plugin: Secrets unsealed, names hashed
        - prod's key rotated, every value re-sealed (only tokens changed), the old key retired
        - every command left a line in the hash-chained audit log, and `sealer audit verify` passed
        - `sealer check` caught a CronJob asking for a key its Secret lacks; `sealer refs` found a dormant key
        demo finished: all {demo.checks if demo else 0} checks passed in {elapsed:.1f} s""")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
