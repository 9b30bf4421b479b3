"""kill -9 at random points: of `sealer reseal` on a 200-file repository, and of `sealer set`.

After every kill, every file must parse, be byte-for-byte the old file or differ from it only in
its tokens, name one key throughout (all old or all new: files are replaced whole), and open to the
same plaintext with the old or the new key. A final run must finish the job.

The kill is SIGKILL to the command's whole process group (the command and its worker processes),
as a crash, an OOM kill or a lost machine would do. Killing only the parent is a separate case
(test_kill_9_of_reseal_leaves_no_worker_processes). The random delays use a fixed seed; each
assertion message names the kill (number, delay) it follows.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sealer._document import load
from sealer._identities import read_identity_file
from sealer._keys import Identity
from sealer._unseal import UNCHECKED, unseal_file

SEALER = str(Path(sys.executable).parent / "sealer")
TOKEN_RE = re.compile(r"ENC\[sealer\.v1,([0-9a-f]{16}(?:\+[0-9a-f]{16})*),([A-Za-z0-9_-]+)\]")
SEED = 20261125
KILLS = 20
N_FILES = 200

SECRET = """\
# service {i}
apiVersion: v1
kind: Secret
metadata:
  name: svc-{i}
  namespace: team-{team}
type: Opaque
stringData:
  username: user-{i}     # sealed anyway
  password: "pw-{i}-{salt}"
  api.key: 'key-{i}'
data:
  tls.crt: {b64}
"""

VALUES = """\
# Helm values of service {i}
replicas: {i}
database:
  host: db-{i}.internal
  password: db-pw-{i}-{salt}
workers:
  - name: w{i}
    token: tok-{i}
  - name: x{i}
    enabled: true
"""


def tokens_of(text: str) -> list[str]:
    return [m.group(0) for m in TOKEN_RE.finditer(text)]


def kids_of(token: str) -> tuple[str, ...]:
    m = TOKEN_RE.fullmatch(token)
    assert m, token
    return tuple(m.group(1).split("+"))


def masked(text: str) -> str:
    return TOKEN_RE.sub("<TOKEN>", text)


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(d.name))
    return pids


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def kill_group(p: subprocess.Popen[Any]) -> None:
    """SIGKILL the command and everything it started, and wait until they are all gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    deadline = time.monotonic() + 30
    while group_alive(p.pid):
        assert time.monotonic() < deadline, f"process group {p.pid} survived SIGKILL"
        time.sleep(0.005)


@dataclass
class Fixture:
    root: Path
    env: dict[str, str]
    old_key: Path
    new_key: Path
    ids: dict[str, Identity]
    old_kid: str
    new_kid: str
    original: dict[str, str] = field(default_factory=dict)  # rel -> sealed text (old key)
    plain: dict[str, str] = field(default_factory=dict)  # rel -> unsealed text

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SEALER, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120, **kw
        )

    def restore(self) -> None:
        for rel, text in self.original.items():
            (self.root / rel).write_text(text)

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in (self.root / "deploy/prod").iterdir() if p.name.endswith(".tmp"))


def build(tmp_path: Path, n_files: int) -> Fixture:
    """A repository of `n_files` sealed files, built with the library; keys through the CLI; rotated."""
    from sealer._config import load_config
    from sealer._seal import seal_text

    root, keys = tmp_path / "repo", tmp_path / "keys"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    env["SEALER_CONFIG_DIR"] = str(tmp_path / "home")

    def cli(*args: str) -> None:
        r = subprocess.run([SEALER, *args], cwd=root, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    cli("init", "--env", "prod")
    cli("keys", "generate", "prod", "--out", str(keys / "old.txt"))
    recipients = load_config(root).registry("prod").recipients()
    rng = random.Random(SEED)
    original = {}
    (root / "deploy/prod").mkdir(parents=True)
    base = int(time.time()) - 86400
    for i in range(n_files):
        salt = f"{rng.getrandbits(64):016x}"
        if i % 2 == 0:
            b64 = base64.b64encode(rng.randbytes(24)).decode()
            text = SECRET.format(i=i, team=i % 7, salt=salt, b64=b64)
        else:
            text = VALUES.format(i=i, salt=salt)
        rel = f"deploy/prod/svc{i:03d}.yaml"
        sealed, _ = seal_text(text, rel, env="prod", recipients=recipients, now=base + i)
        (root / rel).write_text(sealed)
        original[rel] = sealed
    cli("keys", "rotate", "prod", "--out", str(keys / "new.txt"))
    ids = {i.kid: i for k in ("old.txt", "new.txt") for i in read_identity_file(keys / k)}
    old_kid = kids_of(tokens_of(original["deploy/prod/svc000.yaml"])[0])[0]
    (new_kid,) = set(ids) - {old_kid}
    fx = Fixture(root, env, keys / "old.txt", keys / "new.txt", ids, old_kid, new_kid, original)
    fx.plain = {
        rel: unseal_file(load(t, rel), ids.get, structured=False, rules=UNCHECKED).text for rel, t in original.items()
    }
    return fx


def check_repository(fx: Fixture, where: str) -> Counter[str]:
    """Every file: parses, old bytes or new tokens only, one key throughout, opens to its plaintext."""
    state: Counter[str] = Counter()
    for rel, original in fx.original.items():
        text = (fx.root / rel).read_text()
        assert masked(text) == masked(original), f"{where}: {rel} is torn or changed outside its tokens"
        kinds = {kids_of(t) for t in tokens_of(text)}
        assert len(tokens_of(text)) == len(tokens_of(original)), f"{where}: {rel} lost tokens"
        assert kinds in ({(fx.old_kid,)}, {(fx.new_kid,)}), f"{where}: {rel} names {kinds}: half re-sealed"
        if kinds == {(fx.old_kid,)}:
            assert text == original, f"{where}: {rel} is on the old key but not the old bytes"
        try:
            out = unseal_file(load(text, rel), fx.ids.get, structured=False, rules=UNCHECKED)
        except Exception as e:
            raise AssertionError(f"{where}: {rel} does not parse or open: {e}") from None
        assert out.text == fx.plain[rel], f"{where}: {rel} opens to other plaintext"
        state["new" if kinds == {(fx.new_kid,)} else "old"] += 1
    return state


def test_kill_9_during_reseal_leaves_every_file_old_or_new(tmp_path: Path) -> None:
    fx = build(tmp_path, N_FILES)
    cmd = [SEALER, "reseal", "-i", str(fx.old_key)]
    # The typical runtime of a full run: the median of three (the old files are put back after each).
    runs = []
    for n in range(3):
        started = time.monotonic()
        r = fx.cli("reseal", "-i", str(fx.old_key))
        runs.append(time.monotonic() - started)
        assert r.returncode == 0, r.stderr
        if n == 0:
            assert check_repository(fx, "uninterrupted run")["new"] == N_FILES
        fx.restore()
    runtime = sorted(runs)[1]

    rng = random.Random(SEED)
    log: list[str] = []
    outcome: Counter[str] = Counter()
    new_before = 0
    for i in range(KILLS):
        delay = rng.uniform(0, runtime)
        p = subprocess.Popen(
            cmd, cwd=fx.root, env=fx.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(delay)
        alive = p.poll() is None
        kill_group(p)
        where = f"kill {i + 1}/{KILLS} at {delay:.3f} s of a ~{runtime:.3f} s run; earlier kills: {log}"
        state = check_repository(fx, where)
        written = state["new"] - new_before
        kind = (
            "after the run ended"
            if not alive
            else "before any write"
            if written == 0
            else "after the last write"
            if state["old"] == 0
            else "mid-run"
        )
        outcome[kind] += 1
        log.append(f"#{i + 1} {delay:.3f}s {kind} ({written} files written, {state['new']} new)")
        new_before = state["new"]
        if state["old"] == 0:  # the run got through: start the next from the old files again
            fx.restore()
            new_before = 0
    # The re-run finishes the job from wherever the last kill left it.
    r = fx.cli("reseal", "-i", str(fx.old_key))
    assert r.returncode == 0, f"re-run after {log}: {r.stderr}"
    assert check_repository(fx, f"re-run after {log}")["new"] == N_FILES
    r = fx.cli("reseal", "-i", str(fx.old_key))
    assert r.returncode == 0 and "nothing to re-seal" in r.stderr
    print(
        f"\nreseal kill -9: runtime {runtime:.3f} s, {dict(outcome)}, {N_FILES} files checked after each of "
        f"{KILLS} kills, leftover temp files: {len(fx.leftovers())}\n  " + "\n  ".join(log)
    )
    assert outcome["mid-run"] >= 2, f"too few kills landed mid-run to prove anything: {log}"


def lock_holders(inode: int) -> set[int]:
    """Pids holding (not waiting for) an flock on `inode`, from /proc/locks."""
    out = set()
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "->" not in parts and "FLOCK" in parts:
            i = parts.index("FLOCK")
            if int(parts[i + 4].rsplit(":", 1)[1]) == inode:
                out.add(int(parts[i + 3]))
    return out


def test_kill_9_during_set_leaves_the_file_old_or_new(tmp_path: Path) -> None:
    """20 kills of `sealer set`: every other one at a random point of the whole run, the others at a
    random point after it took the file's lock (reads, seals, writes, renames: the part that matters)."""
    if not Path("/proc/locks").exists():
        pytest.skip("needs /proc/locks to see when sealer set holds the file lock")
    fx = build(tmp_path, 1)
    rel = "deploy/prod/svc000.yaml"
    path = fx.root / rel
    fx.cli("reseal", "-i", str(fx.old_key))  # onto the new key, so `set` writes the file's own kid
    fx.original[rel] = path.read_text()
    keys = ["username", "password", "api.key"]

    def values(text: str) -> dict[str, Any]:
        out = unseal_file(load(text, rel), fx.ids.get, rules=UNCHECKED)
        return dict(out.docs[0].content["stringData"])

    def start(key: str, value: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [SEALER, "set", rel, f'stringData["{key}"]'],
            cwd=fx.root,
            env=fx.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        assert p.stdin is not None
        p.stdin.write(value + "\n")
        p.stdin.close()
        return p

    def wait_for_lock(p: subprocess.Popen[str], inode: int) -> float:
        """Poll until `p` holds the file's lock; returns when (monotonic), or inf if it never did."""
        while p.poll() is None:
            if p.pid in lock_holders(inode):
                return time.monotonic()
        return float("inf")

    # Typical runtime (three plain runs), and how long the locked part lasts (three watched runs).
    runs, sections = [], []
    for n in range(6):
        started, inode = time.monotonic(), path.stat().st_ino
        p = start("username", f"measured-{n}")
        locked_at = wait_for_lock(p, inode) if n >= 3 else None
        p.wait(60)
        ended = time.monotonic()
        assert p.returncode == 0
        if locked_at is None:
            runs.append(ended - started)
        elif locked_at != float("inf"):
            sections.append(ended - locked_at)
    runtime = sorted(runs)[1]
    section = max(sorted(sections)[len(sections) // 2] if sections else 0.0, 0.002)

    rng = random.Random(SEED)
    prev_text = path.read_text()
    expected = values(prev_text)
    assert expected["username"] == "measured-5"
    log: list[str] = []
    outcome: Counter[str] = Counter()
    for i in range(KILLS):
        key, value = keys[i % 3], f"value-{i}-{rng.getrandbits(32):08x}"
        targeted = i % 2 == 1
        inode = path.stat().st_ino
        p = start(key, value)
        if targeted:
            wait_for_lock(p, inode)
            delay = rng.uniform(0, section)
        else:
            delay = rng.uniform(0, runtime)
        time.sleep(delay)
        alive = p.poll() is None
        kill_group(p)
        point = f"{delay * 1000:.1f} ms after {'taking the lock' if targeted else 'start'}"
        where = (
            f"set kill {i + 1}/{KILLS} at {point} (run ~{runtime:.3f} s, locked ~{section * 1000:.1f} ms); "
            f"earlier: {log}"
        )
        text = path.read_text()
        assert masked(text) == masked(prev_text), f"{where}: torn or changed outside its tokens"
        got = values(text)
        if text == prev_text:
            kind = "old"
        else:
            assert got == {**expected, key: value}, f"{where}: neither the old nor the new file"
            kind = "new"
            expected, prev_text = got, text
        assert got == expected, where
        phase = ("in the locked part" if targeted else "anywhere") + (", alive" if alive else ", had exited")
        outcome[f"{kind} ({phase})"] += 1
        log.append(f"#{i + 1} {point}: {kind}{'' if alive else ' (had exited)'}")
    assert not fx.leftovers() or all(n.startswith(".svc000.yaml.") for n in fx.leftovers())
    p = start("password", "final")
    p.wait(60)
    assert p.returncode == 0
    assert values(path.read_text()) == {**expected, "password": "final"}
    print(
        f"\nset kill -9: runtime {runtime:.3f} s, locked part {section * 1000:.1f} ms, {dict(outcome)}, "
        f"leftover temp files: {len(fx.leftovers())}\n  " + "\n  ".join(log)
    )
    assert sum(n for k, n in outcome.items() if "locked part, alive" in k) >= 1, log


def test_kill_9_of_reseal_leaves_no_worker_processes(tmp_path: Path) -> None:
    fx = build(tmp_path, N_FILES)
    p = subprocess.Popen(
        [SEALER, "reseal", "-j", "2", "-i", str(fx.old_key)],
        cwd=fx.root,
        env=fx.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    survivors: list[int] = []
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while not workers and p.poll() is None and time.monotonic() < deadline:
            workers = children_of(p.pid)
            time.sleep(0.001)
        assert workers, "reseal finished before its workers could be seen"
        os.kill(p.pid, signal.SIGKILL)  # kill -9 PID: the command only, as a person would
        p.wait(30)
        time.sleep(3)
        survivors = group_alive(p.pid)
        assert survivors == [], f"worker processes {survivors} outlived the killed reseal {p.pid}"
    finally:
        for pid in survivors or group_alive(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if p.poll() is None:
            kill_group(p)
