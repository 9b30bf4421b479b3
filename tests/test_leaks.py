"""Leak canaries (DESIGN.md §10, issue 7): a canary secret is sealed and taken through every command,
the failure paths (wrong key, tampered token, moved value), SEALER_DEBUG=1, the controller (dir: and
cmd: targets, SEALER_IDENTITY_COMMAND) and the audit log. It must never appear in stdout or stderr
(except where the user asked for plaintext: unseal, exec's child, the controller's target), in log
files, the audit log, the temp directory (TMPDIR is private and scanned after every command), files
left in the repository, or the argv of any child process (checked from /proc by the child itself).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo

CANARY = "CANARY-lk31c9-pw"  # stringData
CANARY_DATA = "CANARY-lk31c9-data"  # stored base64-encoded under data:
CANARY_SET = "CANARY-lk31c9-set"  # given to `sealer set` on stdin
CANARY_FILE = "CANARY-lk31c9-file"  # given to `sealer set --from-file`
NEEDLES = [
    CANARY,
    CANARY_DATA,
    CANARY_SET,
    CANARY_FILE,
    "CANARY-lk31c9",
    base64.b64encode(CANARY_DATA.encode()).decode(),
]

SECRET = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
stringData:
  username: app
  password: "{CANARY}"
data:
  blob: {base64.b64encode(CANARY_DATA.encode()).decode()}
"""

# A child that records its argv, its parent's argv and its environment's *keys* (never values), plus
# whether any environment value holds the canary. With --key it prints that identity file (an
# identity command); otherwise it drains stdin (a cmd: target) without echoing it.
SPY = r"""
import json, os, sys
args = sys.argv[1:]
report = args[args.index("--report") + 1]
def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
data = sys.stdin.buffer.read() if "--stdin" in args else b""
rec = {
    "argv": cmdline(os.getpid()),
    "parent_argv": cmdline(os.getppid()),
    "env_keys": sorted(os.environ),
    "env_has_canary": any("CANARY-lk31c9" in v for v in os.environ.values()),
    "stdin_has_canary": b"CANARY-lk31c9" in data,
}
with open(report, "a") as f:
    f.write(json.dumps(rec) + "\n")
if "--key" in args:
    sys.stdout.write(open(args[args.index("--key") + 1]).read())
"""


class World(Repo):
    """The harness with a private TMPDIR and audit log, a spy script, and canary checks on every run."""

    def __init__(self, tmp: Path) -> None:
        self.tmpdir = tmp / "tmpdir"
        self.audit = tmp / "audit.log"
        super().__init__(tmp, env={"SEALER_AUDIT_LOG": str(self.audit), "TMPDIR": str(self.tmpdir)})
        self.reports = tmp / "spy.jsonl"
        self.spy = tmp / "spy.py"
        self.allowed_files: set[Path] = set()
        self.tmpdir.mkdir(parents=True)
        self.spy.write_text(SPY)
        self.init("prod", "staging", keys=("prod", "staging"))
        self.key, self.wrong = self.keys["prod"], self.keys["staging"]
        self.git_init(commit=None)

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        plaintext_out: bool = False,
        code: int | None = 0,
    ) -> subprocess.CompletedProcess[str]:
        r = super().run(*args, stdin=stdin, env=env)
        what = " ".join(args)
        if code is not None:
            assert r.returncode == code, (what, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, (what, r.stderr)
        for n in NEEDLES:
            assert n not in r.stderr, (what, "stderr", r.stderr)
            if not plaintext_out:
                assert n not in r.stdout, (what, "stdout", r.stdout)
        self.scan_disk(what)
        return r

    def scan_disk(self, what: str) -> None:
        """The private TMPDIR, the repository (temp files of atomic_write included), the config dir
        and the audit log hold no canary; only the outputs the user asked for may."""
        for top in (self.tmpdir, self.root, self.home, self.audit.parent):
            for p in top.rglob("*") if top.is_dir() else []:
                if ".git" in p.parts or not p.is_file() or p in self.allowed_files or p == self.spy:
                    continue
                if top == self.audit.parent and p.parent != top:
                    continue  # the repository and others are scanned on their own
                data = p.read_bytes()
                for n in NEEDLES:
                    assert n.encode() not in data, (what, str(p))
                assert not re.search(rb"AGE-SECRET-KEY-", data) or p.suffix == ".txt", (what, str(p))
        leftovers = [p for p in self.root.rglob(".*.tmp")] + list(self.tmpdir.iterdir())
        assert not [p for p in leftovers if "CANARY" in p.name], leftovers

    def spied(self) -> list[dict[str, Any]]:
        if not self.reports.exists():
            return []
        rows = [json.loads(line) for line in self.reports.read_text().splitlines()]
        self.reports.unlink()
        return rows


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_canary_never_leaks_through_the_cli(world: World) -> None:
    w = world
    db = w.root / "deploy/prod/db.yaml"
    db.parent.mkdir(parents=True)
    db.write_text(SECRET)
    w.ok("seal", "deploy/prod/db.yaml")
    w.ok("seal", "-", "--env", "prod", stdin=SECRET)  # stdin to stdout: stdout is sealed
    w.ok("set", "deploy/prod/db.yaml", "stringData.extra", stdin=CANARY_SET)
    value_file = w.tmp / "value.txt"
    value_file.write_text(CANARY_FILE)
    w.allowed_files.add(value_file)
    w.ok("set", "deploy/prod/db.yaml", 'data["f.txt"]', "--from-file", str(value_file))
    sealed = db.read_text()

    # Asked for plaintext: allowed on stdout, or in the 0600 file named by -o.
    for fmt in ("yaml", "k8s", "dotenv", "json"):
        r = w.ok("unseal", "deploy/prod/db.yaml", "--format", fmt, "-i", str(w.key), plaintext_out=True)
        assert CANARY in r.stdout or fmt == "k8s"
    out = w.tmp / "plain.yaml"
    w.allowed_files.add(out)
    w.ok("unseal", "deploy/prod/db.yaml", "-o", str(out), "-i", str(w.key))
    assert CANARY in out.read_text() and out.stat().st_mode & 0o077 == 0

    # Reading without a key, and CI commands.
    for args in (
        ["check"],
        ["check", "-i", str(w.key)],
        ["check", "--output", "json", "-i", str(w.key)],
        ["status"],
        ["status", "--output", "json"],
        ["keys", "list"],
        ["scan", "deploy/prod/db.yaml"],
    ):
        w.run(*args, code=None)

    # Failure paths, plain and with SEALER_DEBUG=1.
    tok = re.search(r"password: \"?(ENC\[[^\]]+\])", sealed)
    assert tok is not None
    token = tok.group(1)
    i = len(token) - 10
    tampered = sealed.replace(token, token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :])
    moved = sealed.replace("name: db", "name: other")
    cases = {"wrong-key": sealed, "tampered": tampered, "moved": moved}
    for debug in ({}, {"SEALER_DEBUG": "1"}):
        for name, text in cases.items():
            db.write_text(text)
            key = w.wrong if name == "wrong-key" else w.key
            w.run("unseal", "deploy/prod/db.yaml", "--format", "json", "-i", str(key), env=debug, code=1)
            w.run("check", "deploy/prod/db.yaml", "-i", str(key), env=debug, code=1)
            w.run("exec", "deploy/prod/db.yaml", "-i", str(key), "--", "true", env=debug, code=1)
            w.run("set", "deploy/prod/db.yaml", "stringData.password", stdin=CANARY_SET, env=debug, code=None)
            w.run("seal", "deploy/prod/db.yaml", env=debug, code=None)
        db.write_text(sealed)

    # exec: the child gets the values in its environment (asked for), never in argv.
    py = sys.executable
    w.ok("exec", "deploy/prod/db.yaml", "-i", str(w.key), "--", py, str(w.spy), "--report", str(w.reports))
    (child,) = w.spied()
    assert child["env_has_canary"]  # that is exec's job
    assert "CANARY" not in child["argv"] + child["parent_argv"]
    assert not [k for k in child["env_keys"] if k.startswith("SEALER_IDENTITY")]

    # SEALER_IDENTITY_COMMAND: the command prints the key; no canary or key material in any argv.
    cmd = f"{py} {w.spy} --report {w.reports} --key {w.key}"
    w.ok("unseal", "deploy/prod/db.yaml", "--format", "json", env={"SEALER_IDENTITY_COMMAND": cmd}, plaintext_out=True)
    (child,) = w.spied()
    assert "CANARY" not in child["argv"] + child["parent_argv"] and "AGE-SECRET" not in child["argv"]

    # Interop: export to SOPS (ciphertext on stdout and in -o), import it back; and a wrong key.
    recipient = next(ln.split(": ", 1)[1] for ln in w.key.read_text().splitlines() if "public key:" in ln)
    sops = w.tmp / "db.sops.yaml"
    w.ok("export", "sops", "deploy/prod/db.yaml", "--age", recipient, "-i", str(w.key))
    w.ok("export", "sops", "deploy/prod/db.yaml", "--age", recipient, "-i", str(w.key), "-o", str(sops))
    w.ok("import", "sops", str(sops), "--env", "prod", "-i", str(w.key), "-o", "deploy/prod/imported.yaml")
    w.run("import", "sops", str(sops), "--env", "prod", "-i", str(w.wrong), code=1)
    w.run("export", "sops", "deploy/prod/db.yaml", "--age", recipient, "-i", str(w.wrong), code=1)

    # Rotation: reseal (needs the old key), its dry run, and retire.
    new_key = w.tmp / "keys" / "prod2.txt"
    w.ok("keys", "rotate", "prod", "--out", str(new_key))
    w.ok("reseal", "--env", "prod", "--dry-run")
    w.ok("reseal", "--env", "prod", "-i", str(w.key))
    w.ok("unseal", "deploy/prod/db.yaml", "--format", "json", "-i", str(new_key), plaintext_out=True)
    w.run("audit", "verify", code=None)
    assert w.audit.exists() and w.audit.stat().st_size > 0
    w.key = new_key


def test_canary_never_leaks_through_the_controller(world: World) -> None:
    w = world
    db = w.root / "deploy/prod/db.yaml"
    db.parent.mkdir(parents=True)
    db.write_text(SECRET)
    w.ok("seal", "deploy/prod/db.yaml")
    w.commit("sealed")
    state, out = w.tmp / "state", w.tmp / "out"
    base = ["controller", "--once", "--repo", str(w.root), "--env", "prod", "--state-dir", str(state)]

    # dir: target; the rendered Secrets are the one place plaintext belongs.
    w.ok(*base, "--target", f"dir:{out}", "-i", str(w.key))
    rendered = [p for p in out.rglob("*") if p.is_file()]
    assert rendered, "the controller rendered nothing"
    _scan_state(state)

    # cmd: target, with the key from SEALER_IDENTITY_COMMAND: plaintext on the child's stdin only.
    py = sys.executable
    spy_cmd = f"cmd:{py} {w.spy} --report {w.reports} --stdin"
    idcmd = f"{py} {w.spy} --report {w.reports} --key {w.key}"
    state2 = w.tmp / "state2"
    base2 = [*base[:-1], str(state2)]
    w.ok(*base2, "--target", spy_cmd, env={"SEALER_IDENTITY_COMMAND": idcmd})
    rows = w.spied()
    assert len(rows) == 2, rows  # the identity command, then the target
    for row in rows:
        assert "CANARY" not in row["argv"] + row["parent_argv"], row
        assert not row["env_has_canary"], row
        assert "AGE-SECRET" not in row["argv"], row
    assert rows[1]["stdin_has_canary"]
    assert not [k for k in rows[1]["env_keys"] if k.startswith("SEALER_IDENTITY")]
    _scan_state(state2)

    # Failure: a tampered token, and the wrong key. Logs, state and audit log stay clean.
    text = db.read_text()
    tok = re.search(r"password: \"?(ENC\[[^\]]+\])", text)
    assert tok is not None
    t = tok.group(1)
    db.write_text(text.replace(t, t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:]))
    w.git("commit", "-q", "-am", "tampered")
    for debug in ({}, {"SEALER_DEBUG": "1"}):
        w.run(*base, "--target", f"dir:{out}", "-i", str(w.key), env=debug, code=1)
        w.run(*base, "--target", f"dir:{w.tmp / 'out3'}", "-i", str(w.wrong), env=debug, code=1)
    _scan_state(state)


def _scan_state(state: Path) -> None:
    for p in state.rglob("*"):
        if p.is_file() and ".git" not in p.parts and "mirror" not in p.name:
            data = p.read_bytes()
            assert not any(n.encode() in data for n in NEEDLES), str(p)
