"""`sealer controller` end to end: real git repositories, the real CLI, the real HTTP server on
127.0.0.1, real processes and signals.

Repositories are set up as a team would (`sealer init`, `sealer keys generate`, `sealer seal`, git
commits through gitpython); bulk files (100 sealed Secrets) are sealed through the library, which
is what `sealer seal` runs, to keep the suite fast. Every fault must leave the last good output
byte-identical, say which file and why, and never put a value anywhere but the target.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SEALER, Repo, require_tool, snapshot
from prometheus_client.parser import text_string_to_metric_families

CANARY = "CANARY-5e1f-never-elsewhere"
CANARY_DATA = "CANARY-DATA-77aa"  # stored base64-encoded under data:, as Kubernetes does
METRICS = {
    "sealer_syncs_total",
    "sealer_sync_errors_total",
    "sealer_values_unsealed_total",
    "sealer_last_success_timestamp_seconds",
    "sealer_applied_commit_info",
    "sealer_oldest_secret_age_seconds",
    "sealer_key_age_seconds",
    "sealer_audit_entries",
    "sealer_audit_head_info",
}


def secret(name: str, namespace: str = "shop", **values: str) -> str:
    lines = [
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "stringData:",
    ]
    lines += [f'  {k}: "{v}"' for k, v in values.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    """Say plainly when the command is missing from the CLI instead of failing every test obscurely."""
    r = subprocess.run([SEALER, "controller", "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(
            f"`sealer controller` is not registered in sealer/cli/__init__.py: {r.stderr.strip()}", pytrace=False
        )


class GitOps(Repo):
    """A team's repository: sealer set up with the CLI, history in git; and the controller run on it."""

    def __init__(self, tmp: Path, template: GitOps | None = None) -> None:
        super().__init__(tmp)
        self.state = tmp / "state"
        self.out = tmp / "out" / "secrets"
        if template is not None:  # a copy of a repository set up once per module: same history
            for part in ("repo", "home", "keys"):
                if (template.tmp / part).exists():
                    shutil.copytree(template.tmp / part, tmp / part, symlinks=True)
            self.keys = {env: self.keydir / key.name for env, key in template.keys.items()}
            self.all_keys = {env: [self.keydir / k.name for k in keys] for env, keys in template.all_keys.items()}
            return
        self.init("prod", "staging", keys=("prod", "staging"))
        self.git_init(commit=None)
        self.seal(
            "deploy/prod/db.yaml",
            secret("db", username="app", password=CANARY)
            + f"data:\n  tls.crt: {base64.b64encode(CANARY_DATA.encode()).decode()}\n",
        )
        self.write("deploy/prod/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")
        self.seal("deploy/staging/db.yaml", secret("db", password="staging-pw"))
        self.commit("initial")

    def seal_many(self, n: int) -> None:
        """n sealed Secrets through the library (what `sealer seal` runs), for speed."""
        from sealer._config import load_config
        from sealer._seal import seal_text, target

        cfg = load_config(self.root)
        for i in range(n):
            rel = f"deploy/prod/s{i:03d}.yaml"
            t = target(cfg, rel, None)
            sealed, _ = seal_text(
                secret(f"s{i:03d}", a=f"value-{i}-a", b=f"value-{i}-b"), rel, env=t.env, recipients=t.recipients
            )
            self.write(rel, sealed)

    def controller_args(self, *extra: str, target: str | None = None, key: str | None = "prod") -> list[str]:
        args = [SEALER, "controller", "--repo", str(self.root), "--env", "prod"]
        args += ["--target", target or f"dir:{self.out}", "--state-dir", str(self.state)]
        if key is not None:
            args += ["-i", str(self.keys[key])]
        return [*args, *extra]

    def once(
        self, *extra: str, target: str | None = None, key: str | None = "prod", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.controller_args(*extra, "--once", target=target, key=key),
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=120,
        )

    def audit(self) -> list[dict[str, object]]:
        path = self.state / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Running:
    """A long-running `sealer controller` process: its log lines, its HTTP server, its signals."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.wait_line("event=listening")
        address = line.split("address=", 1)[1].split()[0]
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            self._new.put(line)

    def wait_line(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        seen = [ln for ln in self.lines if needle in ln]
        if seen:
            return seen[-1]
        while time.monotonic() < deadline:
            try:
                line = self._new.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if needle in line:
                return line
        raise AssertionError(f"no log line with {needle!r}:\n{''.join(self.lines)}")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.get("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body)
            for s in fam.samples
        }

    def until(self, what: str, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{''.join(self.lines)}")

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> GitOps:
    return GitOps(tmp_path_factory.mktemp("template"))


@pytest.fixture
def ops(tmp_path: Path, template: GitOps) -> GitOps:
    return GitOps(tmp_path, template)


@pytest.fixture
def running(ops: GitOps) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*extra: str, key: str | None = "prod", env: dict[str, str] | None = None) -> Running:
        args = ops.controller_args(
            "--interval", "0.2s", "--max-backoff", "0.5s", "--listen", "127.0.0.1:0", *extra, key=key
        )
        r = Running(args, ops.env(env))
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


def log_events(stderr: str, event: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if f" event={event} " in ln + " "]


def tamper(path: Path) -> None:
    """Change one character in the middle of the first token's ciphertext (still valid base64)."""
    text = path.read_text()
    start = text.index("ENC[sealer.v1,")
    blob_start = text.index(",", start + len("ENC[sealer.v1,")) + 1
    end = text.index("]", blob_start)
    i = (blob_start + end) // 2
    path.write_text(text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :])


# --- the happy path ------------------------------------------------------------------------------


def test_once_renders_dir_target_then_does_nothing_on_no_change(ops: GitOps) -> None:
    r = ops.once()
    assert r.returncode == 0, r.stderr
    head = ops.git_repo.head.commit.hexsha
    out = ops.out
    manifest = (out / "secret.shop.db.yaml").read_text()
    assert CANARY in manifest and "sealer:" not in manifest and "ENC[" not in manifest
    assert base64.b64encode(CANARY_DATA.encode()).decode() in manifest
    assert "kind: Deployment" not in "".join(snapshot(out).keys())  # plain files are not the controller's
    assert sorted(p.name for p in out.iterdir()) == [".sealer-output", "secret.shop.db.yaml"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    state = json.loads((ops.state / "state.json").read_text())
    assert state["commit"] == head and state["envs"] == ["prod"] and state["values"] == 3
    assert stat.S_IMODE((ops.state / "state.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(ops.state.stat().st_mode) == 0o700
    unseals = [e for e in ops.audit() if e["event"] == "unseal"]
    assert [(e["file"], e["env"], e["commit"], e["result"]) for e in unseals] == [
        ("deploy/prod/db.yaml", "prod", head, "ok")
    ]
    assert unseals[0]["kids"] and all(len(k) == 16 for k in unseals[0]["kids"])  # type: ignore[union-attr]
    assert len(log_events(r.stderr, "sync")) == 1 and "result=applied" in r.stderr

    before = snapshot(out)
    inode = out.stat().st_ino
    audit_before = (ops.state / "audit.log").read_bytes()
    r = ops.once()
    assert r.returncode == 0, r.stderr
    assert "result=unchanged" in r.stderr
    assert snapshot(out) == before and out.stat().st_ino == inode  # not even re-written
    assert (ops.state / "audit.log").read_bytes() == audit_before


def test_new_commit_is_swapped_in_whole(ops: GitOps) -> None:
    assert ops.once().returncode == 0
    parent = ops.out.parent
    ops.seal("deploy/prod/api.yaml", secret("api", token="tok-2"))
    (ops.root / "deploy/prod/db.yaml").unlink()
    head = ops.commit("replace db with api")
    r = ops.once()
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in ops.out.iterdir()) == [".sealer-output", "secret.shop.api.yaml"]
    assert json.loads((ops.out / ".sealer-output").read_text())["commit"] == head
    assert sorted(p.name for p in parent.iterdir()) == ["secrets"]  # no generation left behind
    assert json.loads((ops.state / "state.json").read_text())["commit"] == head


def test_files_target_is_laid_out_like_a_secret_volume(ops: GitOps) -> None:
    ops.seal("deploy/prod/values.yaml", "db:\n  password: hunter2-CANARY\n")
    ops.commit("values")
    out = ops.tmp / "files"
    r = ops.once(target=f"files:{out}")
    assert r.returncode == 0, r.stderr
    assert (out / "shop" / "db" / "password").read_text() == CANARY
    assert (out / "shop" / "db" / "username").read_text() == "app"
    assert (out / "shop" / "db" / "tls.crt").read_bytes() == CANARY_DATA.encode()  # data: decoded
    for p in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    assert "deploy/prod/values.yaml: document 0 is not a Secret" in r.stderr  # said, not silently dropped


def test_cmd_target_gets_manifests_on_stdin_and_no_key(ops: GitOps) -> None:
    got = ops.tmp / "applied.yaml"
    envfile = ops.tmp / "child-env"
    cmd = f"cmd:sh -c 'env > {envfile}; umask 077; cat > {got}'"
    key_text = ops.keys["prod"].read_text()
    r = ops.once(target=cmd, key=None, env={"SEALER_IDENTITY": key_text})
    assert r.returncode == 0, r.stderr
    text = got.read_text()
    assert text.startswith("---\n") and "name: db" in text and CANARY in text
    child_env = envfile.read_text()
    assert "SEALER_IDENTITY" not in child_env and "AGE-SECRET-KEY" not in child_env
    assert f"SEALER_COMMIT={ops.git_repo.head.commit.hexsha}" in child_env

    # Another target renders again (the state records for which target it applied); a failing
    # command fails the sync and records nothing.
    r = ops.once(target="cmd:false", env={"SEALER_IDENTITY": key_text}, key=None)
    assert r.returncode == 1 and "reason=apply" in r.stderr and "exited 1" in r.stderr
    assert json.loads((ops.state / "state.json").read_text())["target"] == cmd


def test_rendered_secrets_say_where_they_come_from(ops: GitOps) -> None:
    """Each rendered Secret carries app.kubernetes.io/managed-by: sealer, its repository path and
    the commit it was read from; PyYAML (YAML 1.1) and kubectl read them as Secrets."""
    import yaml

    head = ops.git_repo.head.commit.hexsha
    got = ops.tmp / "applied.yaml"
    for target in (f"dir:{ops.out}", f"cmd:sh -c 'umask 077; cat > {got}'"):
        r = ops.once(target=target)
        assert r.returncode == 0, r.stderr
    for text in ((ops.out / "secret.shop.db.yaml").read_text(), got.read_text()):
        (doc,) = [d for d in yaml.safe_load_all(text) if d is not None]
        assert doc["kind"] == "Secret" and doc["stringData"]["password"] == CANARY
        assert doc["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "sealer"}
        assert doc["metadata"]["annotations"] == {"sealer.dev/source": "deploy/prod/db.yaml", "sealer.dev/commit": head}
        kubectl = require_tool("kubectl")
        k = subprocess.run(
            [kubectl, "annotate", "--local", "-o", "json", "-f", "-", "sealer.test/read=1"],
            input=text,
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(ops.tmp), "KUBECONFIG": os.devnull},
            timeout=60,
        )
        assert k.returncode == 0, k.stderr
        read = json.loads(k.stdout)
        assert read["kind"] == "Secret" and read["metadata"]["annotations"]["sealer.dev/commit"] == head


def test_multiple_environments_and_their_own_keys(ops: GitOps) -> None:
    both = ["--env", "staging", "-i", str(ops.keys["staging"])]
    r = ops.once(*both)  # prod and staging both define shop/db: refused, never one over the other
    assert r.returncode == 1 and "reason=render" in r.stderr
    assert "defines secret.shop.db.yaml, which deploy/prod/db.yaml defines too" in r.stderr
    assert not ops.out.exists()
    ops.seal("deploy/staging/db.yaml", secret("db", namespace="shop-staging", password="s"))
    ops.commit("staging in its own namespace")
    r = ops.once(*both)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in ops.out.iterdir())
    assert names == [".sealer-output", "secret.shop-staging.db.yaml", "secret.shop.db.yaml"]
    envs = {e["file"]: e["env"] for e in ops.audit() if e["event"] == "unseal" and e["result"] == "ok"}
    assert envs == {"deploy/prod/db.yaml": "prod", "deploy/staging/db.yaml": "staging"}


# --- faults --------------------------------------------------------------------------------------


def test_one_tampered_file_among_100_applies_nothing(ops: GitOps, running: Callable[..., Running]) -> None:
    ops.seal_many(100)
    ops.commit("100 sealed files")
    ctl = running()
    ctl.until("ready", ctl.ready)
    good = snapshot(ops.out)
    assert len(good) == 102  # 100 + db + marker
    m = ctl.metrics()
    assert {name for name, _ in m} == METRICS
    assert m[("sealer_values_unsealed_total", ())] == 203
    head = ops.git_repo.head.commit.hexsha
    assert m[("sealer_applied_commit_info", (("commit", head),))] == 1
    assert 0 <= m[("sealer_oldest_secret_age_seconds", (("env", "prod"),))] < 600
    assert any(name == "sealer_key_age_seconds" and dict(labels)["env"] == "prod" for name, labels in m)
    assert ctl.host == "127.0.0.1"

    tamper(ops.root / "deploy/prod/s042.yaml")
    ops.seal_many(10)  # same values, new tokens: legitimate changes in the same commit
    bad = ops.commit("tampered")
    key = ("sealer_sync_errors_total", (("file", "deploy/prod/s042.yaml"), ("reason", "unseal")))
    ctl.until("the error metric", lambda: ctl.metrics().get(key, 0) >= 1)
    status, body = ctl.get("/readyz")
    assert status == 503 and "unseal" in body
    assert ctl.get("/healthz")[0] == 200
    assert snapshot(ops.out) == good  # not one byte of the new commit
    assert json.loads((ops.state / "state.json").read_text())["commit"] == head
    fails = [e for e in ops.audit() if e["result"] == "fail"]
    assert fails and fails[0]["file"] == "deploy/prod/s042.yaml" and fails[0]["commit"] == bad
    assert str(fails[0]["reason"]).startswith("unseal: deploy/prod/s042.yaml: value at stringData.a")
    ctl.wait_line("file=deploy/prod/s042.yaml")
    time.sleep(0.6)  # several retries: the same failure is audited once
    assert len([e for e in ops.audit() if e["result"] == "fail"]) == 1

    ops.seal_many(100)  # the fix: the file sealed afresh
    fixed = ops.commit("fixed")
    ctl.until("recovery", ctl.ready)
    assert json.loads((ops.out / ".sealer-output").read_text())["commit"] == fixed
    assert ctl.stop() == 0
    assert ops.ok("audit", "verify", str(ops.state / "audit.log")).returncode == 0


def test_missing_identity(ops: GitOps, running: Callable[..., Running]) -> None:
    r = ops.once(key=None, env={"SEALER_IDENTITY_FILE": str(ops.tmp / "nope.txt")})
    assert r.returncode == 1
    assert "reason=identity" in r.stderr and "identity file not found" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("sealer: error: sync failed (identity)")
    assert not ops.out.exists()
    assert [e["reason"] for e in ops.audit()] == [
        f"identity: cannot load the private keys: {ops.tmp / 'nope.txt'}: identity file not found"
    ]

    r = ops.once(key="staging")  # a key, but not prod's
    assert r.returncode == 1 and "reason=identity" in r.stderr and "file=deploy/prod/db.yaml" in r.stderr
    assert not ops.out.exists()

    late = ops.tmp / "late.txt"  # the Secret is mounted after the controller started
    ctl = running("-i", str(late), key=None)
    no_key = ("sealer_sync_errors_total", (("file", ""), ("reason", "identity")))
    ctl.until("an identity error", lambda: ctl.metrics().get(no_key, 0) >= 1)
    status, body = ctl.get("/readyz")
    assert status == 503 and "no private key" in body
    shutil.copy(ops.keys["prod"], late)
    late.chmod(0o600)
    ctl.until("ready once the key is there", ctl.ready)
    assert ctl.stop() == 0


def test_retired_key_revoked_values_and_missing_signatures_are_refused(ops: GitOps) -> None:
    """The commit's registry and policy decide, through the library's own rules."""
    reg = ops.root / "keys" / "prod.yaml"
    registry = reg.read_text()
    reg.write_text(registry.replace("state: active", "state: retired"))
    ops.commit("retire prod key")
    r = ops.once()
    assert r.returncode == 1 and "reason=unseal" in r.stderr and "file=deploy/prod/db.yaml" in r.stderr
    assert "sealed only to retired or unknown key" in r.stderr
    assert not ops.out.exists()

    reg.write_text(registry)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    ops.ok("keys", "revoke-before", "prod", later)  # a leak: everything sealed before is revoked
    ops.commit("revoke")
    r = ops.once()
    assert r.returncode == 1 and "reason=unseal" in r.stderr and "not_before and is revoked" in r.stderr
    assert not ops.out.exists()

    reg.write_text(registry)
    config = ops.root / ".sealer.yaml"
    config.write_text(config.read_text().replace("  prod:\n", "  prod:\n    policy:\n      require_signature: true\n"))
    ops.commit("prod requires signatures")
    r = ops.once()
    assert r.returncode == 1 and "reason=unseal" in r.stderr and "is not signed" in r.stderr
    assert not ops.out.exists()


def test_remote_gone_keeps_serving_the_last_good_output(ops: GitOps, running: Callable[..., Running]) -> None:
    ctl = running()
    ctl.until("ready", ctl.ready)
    good = snapshot(ops.out)
    second = ops.once()  # the state dir is taken: a second controller is told, not let in
    assert second.returncode == 1 and "another controller is using this state dir" in second.stderr

    gone = ops.tmp / "repo-moved"
    ops.root.rename(gone)
    key = ("sealer_sync_errors_total", (("file", ""), ("reason", "fetch")))
    ctl.until("fetch errors", lambda: ctl.metrics().get(key, 0) >= 2)
    assert ctl.get("/readyz")[0] == 503 and ctl.get("/healthz")[0] == 200
    assert snapshot(ops.out) == good
    ctl.wait_line("event=backoff")
    gone.rename(ops.root)
    ctl.until("ready again", ctl.ready)
    assert ctl.stop() == 0
    assert ctl.lines[-1].split(" event=")[1].startswith("stop")


def test_force_pushed_history_is_refused_unless_allowed(ops: GitOps) -> None:
    first = ops.git_repo.head.commit.hexsha
    ops.seal("deploy/prod/db.yaml", secret("db", password="pw-B"))
    ops.commit("B")
    assert ops.once().returncode == 0
    applied = snapshot(ops.out)
    ops.git_repo.git.reset("--hard", first)  # rewrite history: an old secret comes back
    ops.seal("deploy/prod/other.yaml", secret("other", password="pw-C"))
    rewritten = ops.commit("C on old history")

    r = ops.once()
    assert r.returncode == 1
    assert "reason=rollback" in r.stderr and "does not descend" in r.stderr
    assert snapshot(ops.out) == applied
    assert ops.audit()[-1]["event"] == "sync" and str(ops.audit()[-1]["reason"]).startswith("rollback:")

    r = ops.once("--allow-rollback")
    assert r.returncode == 0, r.stderr
    assert "event=rollback-allowed" in r.stderr
    assert json.loads((ops.state / "state.json").read_text())["commit"] == rewritten
    assert CANARY in (ops.out / "secret.shop.db.yaml").read_text()
    assert "(--allow-rollback)" in str(ops.audit()[-1]["reason"])


@pytest.mark.parametrize("link", ["file", "directory"])
def test_symlink_under_an_environment_is_refused(ops: GitOps, link: str) -> None:
    assert ops.once().returncode == 0
    good = snapshot(ops.out)
    outside = ops.tmp / "outside"
    outside.mkdir()
    (outside / "x.yaml").write_text(secret("x", password="outside"))
    if link == "file":
        rel = "deploy/prod/evil.yaml"
        (ops.root / rel).symlink_to("../../../outside/x.yaml")
    else:
        rel = "deploy/prod/linked"
        (ops.root / rel).symlink_to(outside)
    ops.commit("a link out of the repository")
    assert ops.git_repo.git.ls_tree("HEAD", rel).startswith("120000")
    r = ops.once()
    assert r.returncode == 1
    assert "reason=unsafe_path" in r.stderr and f"file={rel}" in r.stderr and "symbolic link" in r.stderr
    assert snapshot(ops.out) == good


def test_file_over_the_size_cap_is_refused(ops: GitOps) -> None:
    from sealer._fsio import MAX_FILE_BYTES

    big = ops.root / "deploy/prod/big.yaml"
    big.write_text(secret("big", a="x") + ("#" * 1023 + "\n") * (MAX_FILE_BYTES // 1024 + 1))
    ops.commit("big")
    r = ops.once()
    assert r.returncode == 1
    assert "reason=unsafe_path" in r.stderr and "file=deploy/prod/big.yaml" in r.stderr and "limit" in r.stderr
    assert not ops.out.exists()


def test_sigterm_mid_cycle_finishes_the_cycle_then_exits_0(ops: GitOps, tmp_path: Path) -> None:
    started, got = tmp_path / "started", tmp_path / "got.yaml"
    cmd = f"cmd:sh -c 'touch {started}; sleep 1; cat > {got}'"
    proc = subprocess.Popen(
        ops.controller_args("--interval", "1h", "--listen", "127.0.0.1:0", target=cmd),
        stderr=subprocess.PIPE,
        text=True,
        env=ops.env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # the command is still sleeping: the cycle is mid-way
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "name: db" in got.read_text()  # the command got its whole input
    assert json.loads((ops.state / "state.json").read_text())["commit"] == ops.git_repo.head.commit.hexsha
    events = [ln.split(" event=")[1].split()[0] for ln in err.splitlines() if " event=" in ln]
    assert events[-3:] == ["signal", "sync", "stop"]


def test_canary_appears_only_in_the_target(ops: GitOps, running: Callable[..., Running]) -> None:
    logs = []
    for target in (f"dir:{ops.out}", f"files:{ops.tmp / 'files'}", f"cmd:sh -c 'cat > {ops.tmp / 'cmd.yaml'}'"):
        state = ["--state-dir", str(ops.tmp / f"state-{target[:3]}")]
        r = subprocess.run(
            ops.controller_args(*state, "--once", target=target),
            capture_output=True,
            text=True,
            env=ops.env(),
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        logs.append(r.stderr)
    ctl = running()  # the default state dir of the fixture, with HTTP
    ctl.until("ready", ctl.ready)
    bodies = [ctl.get(p)[1] for p in ("/metrics", "/readyz", "/healthz")]
    tamper(ops.root / "deploy/prod/db.yaml")  # a failure path too
    ops.commit("tampered")
    ctl.until("failure", lambda: not ctl.ready())
    bodies.append(ctl.get("/metrics")[1])
    assert ctl.stop() == 0
    logs.append("".join(ctl.lines))

    needles = [CANARY.encode(), CANARY_DATA.encode(), base64.b64encode(CANARY_DATA.encode())]
    targets = [ops.out, ops.tmp / "files", ops.tmp / "cmd.yaml"]
    assert any(n in (ops.out / "secret.shop.db.yaml").read_bytes() for n in needles)
    assert (ops.tmp / "files/shop/db/password").read_bytes() == CANARY.encode()
    assert CANARY.encode() in (ops.tmp / "cmd.yaml").read_bytes()
    for blob in [*logs, *bodies]:
        assert not any(n.decode() in blob for n in needles)
    leaks = []
    for p in ops.tmp.rglob("*"):
        if p.is_file() and not p.is_symlink() and not any(p == t or t in p.parents for t in targets):
            data = p.read_bytes()
            if any(n in data for n in needles):
                leaks.append(str(p.relative_to(ops.tmp)))
    # The sealer repository and its git objects never held plaintext either (sealed before commit).
    assert leaks == []


def test_bad_config_and_malformed_files_fail_with_their_reason(ops: GitOps) -> None:
    r = ops.once("--env", "nope")
    assert r.returncode == 1 and "reason=config" in r.stderr and "'nope' is not in .sealer.yaml" in r.stderr
    ops.write("deploy/prod/broken.yaml", "sealer:\n  version: 1\n  env: prod\nstringData: [unclosed\n")
    ops.commit("malformed")
    r = ops.once()
    assert r.returncode == 1 and "reason=input" in r.stderr and "file=deploy/prod/broken.yaml" in r.stderr
    assert "malformed YAML" in r.stderr
    (ops.root / "deploy/prod/broken.yaml").unlink()
    (ops.root / ".sealer.yaml").write_text("environments: [not, a, mapping\n")
    ops.commit("broken config")
    r = ops.once()
    assert r.returncode == 1 and "reason=config" in r.stderr and "file=.sealer.yaml" in r.stderr
    assert str(ops.state / "checkout") not in r.stderr  # the repository's file is named, not our copy
    assert not ops.out.exists()


def test_target_that_sealer_did_not_write_is_refused(ops: GitOps) -> None:
    ops.out.mkdir(parents=True)
    (ops.out / "precious.txt").write_text("keep me")
    r = ops.once()
    assert r.returncode == 1 and "sealer did not write" in r.stderr
    assert (ops.out / "precious.txt").read_text() == "keep me"
    r = ops.once(target="nonsense:x")
    assert r.returncode == 2 and "unknown target kind" in r.stderr


# --- library level: properties the CLI cannot show -----------------------------------------------


def test_no_change_cycle_reads_no_yaml(ops: GitOps, monkeypatch: pytest.MonkeyPatch) -> None:
    import sealer._config
    import sealer._document
    from sealer._controller.log import EventLog
    from sealer._controller.sync import Controller, Settings
    from sealer._controller.targets import DirTarget

    settings = Settings(
        repo=str(ops.root),
        branch="main",
        envs=("prod",),
        target=DirTarget(f"dir:{ops.out}", ops.out),
        state_dir=ops.state,
        identity_files=(str(ops.keys["prod"]),),
    )
    ctl = Controller(settings, log=EventLog(open(os.devnull, "w")))  # noqa: SIM115
    try:
        assert ctl.cycle().changed

        def boom(*a: object, **k: object) -> None:
            raise AssertionError("YAML read on a no-change cycle")

        monkeypatch.setattr(sealer._document, "load", boom)
        monkeypatch.setattr(sealer._config, "load_yaml_mapping", boom)
        for _ in range(3):
            r = ctl.cycle()
            assert r.ok and not r.changed, r
        assert ctl.ready()[0]
    finally:
        ctl.close()


def test_backoff_is_exponential_capped_and_jittered() -> None:
    from sealer._controller.sync import next_delay

    assert next_delay(30, 0, 300) == 30
    for failures, base in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        assert 0.9 * base <= next_delay(1, failures, 10) <= 1.1 * base
    assert 270 <= next_delay(30, 50, 300) <= 330
    assert next_delay(600, 3, 300) <= 660  # never waits longer than the interval times 1.1 because of the cap
