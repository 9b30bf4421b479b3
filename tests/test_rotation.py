"""Key rotation end to end, as a custodian does it: real processes, real keys, real files, real git.

rotate → reseal (dry run, commit) → retire; recovery recipients; revocation; status and its policy;
corrupt registries; a file edited during a reseal; concurrent writers.

Expected values never come from the code under test: kids are computed from the recipient as
docs/format.md §1 defines them (and recipients from identity files with the real `age-keygen -y`),
tokens are found with the grammar of docs/format.md §5, plaintexts are what the test wrote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure, require_tool

from sealer._format import parse_token

TOKEN_RE = re.compile(r"ENC\[sealer\.v1,([0-9a-f]{16}(?:\+[0-9a-f]{16})*),([A-Za-z0-9_-]+)\]")
DAY = 86400

VALUES = """\
# app settings (Helm values)
replicas: 2
image:
  repository: registry.example/app   # sealed too: every scalar of a non-Secret
  tag: "1.4.2"
database:
  password: 'db-CANARY-1'
  port: 5432
features:
  - name: billing
    token: tok-CANARY-1
  - name: search
    token: tok-CANARY-2
debug: false
"""

MULTI = """\
apiVersion: v1
kind: Secret
metadata:
  name: api
  namespace: shop
stringData:
  key: api-CANARY-1
---
apiVersion: v1
kind: Secret
metadata:
  name: cache
  namespace: shop
stringData:
  key: cache-CANARY-2
"""


def secret_with(name: str, values: dict[str, str]) -> str:
    lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {name}", "  namespace: shop", "stringData:"]
    lines += [f"  {k}: {v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


# --- helpers --------------------------------------------------------------------------------------


def kid_of(recipient: str) -> str:
    """docs/format.md §1: hex(SHA-256(ascii(recipient)))[0:16]."""
    return hashlib.sha256(recipient.encode()).hexdigest()[:16]


def recipient_of(identity_file: Path) -> str:
    """The public key of an identity file, as the real age tool derives it."""
    keygen = require_tool("age-keygen")
    out = subprocess.run([keygen, "-y", str(identity_file)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def tokens_of(text: str) -> list[str]:
    return [m.group(0) for m in TOKEN_RE.finditer(text)]


def kids_of(token: str) -> tuple[str, ...]:
    m = TOKEN_RE.fullmatch(token)
    assert m, token
    return tuple(m.group(1).split("+"))


def masked(text: str) -> str:
    """The file with every token replaced by a placeholder: what a reseal must never touch."""
    return TOKEN_RE.sub("<TOKEN>", text)


def wait_for_lock_waiter(path: Path, inode: int, pids: set[int] | None = None, timeout: float = 30) -> set[int]:
    """Block until processes wait for an flock on `inode` (seen in /proc/locks); returns their pids.

    A waiter there has necessarily read the file already (sealer reads, then locks to write)."""
    locks = Path("/proc/locks")
    if not locks.exists():
        pytest.skip("needs /proc/locks to see who waits for a file lock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = set()
        for line in locks.read_text().splitlines():
            parts = line.split()
            if "->" in parts and "FLOCK" in parts:
                i = parts.index("->")
                pid, dev_ino = int(parts[i + 4]), parts[i + 5]
                if int(dev_ino.rsplit(":", 1)[1]) == inode:
                    waiting.add(pid)
        if waiting and (pids is None or pids <= waiting):
            return waiting
        time.sleep(0.005)
    raise AssertionError(f"nobody waited for the lock on {path} within {timeout} s")


class KeyRepo(Repo):
    """The harness, with what rotation tests read: kids, key rows, values sealed at a chosen time."""

    def kid(self, env: str, n: int = -1) -> str:
        return kid_of(recipient_of(self.all_keys[env][n]))

    def key_rows(self, env: str) -> list[dict[str, Any]]:
        rows = json.loads(self.ok("keys", "list", "--output", "json").stdout)
        return [r for r in rows if r["env"] == env]

    def seal_at(self, rel: str, text: str, when: int, env: str = "prod") -> str:
        """Seal through the library with a chosen seal time (to test ages without waiting)."""
        from sealer._config import load_config
        from sealer._seal import seal_text

        recipients = load_config(self.root).registry(env).recipients()
        sealed, _ = seal_text(text, rel, env=env, recipients=recipients, now=when)
        self.write(rel, sealed)
        return sealed

    def unseal(self, *paths: str, keys: list[Path]) -> dict[tuple[str, int], Any]:
        args = [a for k in keys for a in ("-i", str(k))]
        out = self.ok("unseal", *paths, "--format", "json", *args).stdout
        return {(d["file"], d["document"]): d["content"] for d in json.loads(out)}


@pytest.fixture
def repo(tmp_path: Path) -> KeyRepo:
    return KeyRepo.create(tmp_path, "dev", "staging", "prod", keys=("staging", "prod"))


def now() -> int:
    return int(time.time())


# --- rotate ---------------------------------------------------------------------------------------


def test_rotate_makes_new_active_key_and_previous_retiring(repo: KeyRepo) -> None:
    first = repo.kid("prod")
    staging_before = repo.key_rows("staging")
    r = repo.ok("keys", "rotate", "prod", "--out", str(repo.keydir / "prod-2.txt"))
    repo.all_keys["prod"].append(repo.keydir / "prod-2.txt")
    new_key = repo.all_keys["prod"][-1]
    assert stat.S_IMODE(new_key.stat().st_mode) == 0o600
    assert r.stdout.strip() == recipient_of(new_key)
    second = repo.kid("prod")
    assert second != first
    assert {r["kid"]: r["state"] for r in repo.key_rows("prod")} == {first: "retiring", second: "active"}
    assert repo.key_rows("staging") == staging_before
    # Rotating again: the previous active key becomes retiring, earlier ones stay as they were.
    out = json.loads(repo.ok("keys", "rotate", "prod", "--out", str(repo.keydir / "p3.txt"), "--output", "json").stdout)
    third = kid_of(recipient_of(repo.keydir / "p3.txt"))
    assert out["kid"] == third and out["retiring"] == [second]
    assert stat.S_IMODE((repo.keydir / "p3.txt").stat().st_mode) == 0o600
    states = {r["kid"]: r["state"] for r in repo.key_rows("prod")}
    assert states == {first: "retiring", second: "retiring", third: "active"}


def test_rotate_refuses_a_private_key_inside_the_repository(repo: KeyRepo) -> None:
    before = repo.snapshot()
    r = repo.run("keys", "rotate", "prod", "--out", str(repo.root / "prod.key"))
    assert_clean_failure(r, "inside the repository", code=1)
    assert repo.snapshot() == before


# --- reseal ---------------------------------------------------------------------------------------


def prod_files(repo: KeyRepo) -> dict[str, int]:
    """Three prod files sealed long ago (distinct seal times) and one staging file; returns seal times."""
    times = {
        "deploy/prod/db.yaml": now() - 30 * DAY,
        "deploy/prod/values.yaml": now() - 5 * DAY,
        "deploy/prod/multi.yaml": now() - 400 * DAY,
    }
    for rel, text in (
        ("deploy/prod/db.yaml", SECRET),
        ("deploy/prod/values.yaml", VALUES),
        ("deploy/prod/multi.yaml", MULTI),
    ):
        repo.seal_at(rel, text, times[rel])
    repo.seal_at("deploy/staging/db.yaml", SECRET, now() - 10 * DAY, env="staging")
    return times


def test_reseal_moves_stale_values_and_keeps_everything_else(repo: KeyRepo) -> None:
    prod_files(repo)
    old_kid = repo.kid("prod")
    plain_before = repo.unseal("deploy/prod", keys=repo.all_keys["prod"])
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    # A value set after the rotation is already current: reseal must keep its exact bytes.
    repo.ok("set", "deploy/prod/values.yaml", "database.password", stdin="db-CANARY-2\n")
    plain_before[("deploy/prod/values.yaml", 0)]["database"]["password"] = "db-CANARY-2"
    before = repo.snapshot()
    files = [rel for rel in before if rel.startswith("deploy/prod/")]
    stale = sum(1 for rel in files for t in tokens_of(before[rel].decode()) if kids_of(t) == (old_kid,))
    current = [t for t in tokens_of(before["deploy/prod/values.yaml"].decode()) if kids_of(t) == (new_kid,)]
    assert stale > 10 and len(current) == 1

    r = repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]), "--output", "json")
    summary = json.loads(r.stdout)
    assert summary["values"] == stale and summary["files"] == len(files)
    assert summary["by_kid"] == {old_kid: stale} and summary["failed"] == []

    after = repo.snapshot()
    assert {k: v for k, v in after.items() if not k.startswith("deploy/prod/")} == {
        k: v for k, v in before.items() if not k.startswith("deploy/prod/")
    }, "files of other environments (and everything else) must not change"
    for rel in files:
        old_text, new_text = before[rel].decode(), after[rel].decode()
        assert masked(new_text) == masked(old_text), f"{rel}: bytes outside tokens changed"
        pairs = list(zip(tokens_of(old_text), tokens_of(new_text), strict=True))
        for old_tok, new_tok in pairs:
            assert kids_of(new_tok) == (new_kid,), rel
            if kids_of(old_tok) == (new_kid,):
                assert new_tok == old_tok, f"{rel}: an already-current token changed"
            else:
                assert new_tok != old_tok
            o, n = parse_token(old_tok), parse_token(new_tok)
            assert (n.sealed_at, n.vtype) == (o.sealed_at, o.vtype), f"{rel}: seal time or type changed"
    assert current[0] in after["deploy/prod/values.yaml"].decode()

    # The same plaintext, with the new key alone; the old key alone opens nothing any more.
    assert repo.unseal("deploy/prod", keys=[repo.all_keys["prod"][1]]) == plain_before
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.all_keys["prod"][0]))
    assert_clean_failure(r, "deploy/prod/db.yaml", code=None)

    # Again: nothing to do, no byte and no mtime changes.
    mtimes = {rel: (repo.root / rel).stat().st_mtime_ns for rel in files}
    r = repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]))
    assert "nothing to re-seal" in r.stderr
    assert repo.snapshot() == after
    assert {rel: (repo.root / rel).stat().st_mtime_ns for rel in files} == mtimes


def test_reseal_text_summary_counts_values_files_and_kids(repo: KeyRepo) -> None:
    prod_files(repo)
    old_kid = repo.kid("prod")
    repo.rotate("prod")
    n = sum(len(tokens_of(repo.read(f"deploy/prod/{f}"))) for f in ("db.yaml", "values.yaml", "multi.yaml"))
    r = repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]))
    assert "CANARY" not in r.stdout + r.stderr
    assert re.search(rf"\b{n} value\(s\) in 3 file\(s\)", r.stderr), r.stderr
    assert re.search(rf"{old_kid}\D+{n}\b", r.stderr), r.stderr
    assert re.search(r"[0-9.]+ ?s\b", r.stderr), r.stderr


def test_reseal_only_the_given_environment_or_path(repo: KeyRepo) -> None:
    prod_files(repo)
    repo.rotate("prod")
    repo.rotate("staging")
    before = repo.snapshot()
    repo.ok("reseal", "--env", "staging", "-i", str(repo.all_keys["staging"][0]))
    after = repo.snapshot()
    assert {k for k in before if before[k] != after[k]} == {"deploy/staging/db.yaml"}
    repo.ok("reseal", "deploy/prod/db.yaml", "-i", str(repo.all_keys["prod"][0]))
    again = repo.snapshot()
    assert {k for k in after if after[k] != again[k]} == {"deploy/prod/db.yaml"}
    assert {kids_of(t) for t in tokens_of(repo.read("deploy/prod/db.yaml"))} == {(repo.kid("prod"),)}


def test_reseal_dry_run_needs_no_identity_and_writes_nothing(repo: KeyRepo) -> None:
    prod_files(repo)
    old_kid = repo.kid("prod")
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    repo.write("deploy/prod/later.yaml", secret_with("later", {"a": "x"}))
    repo.ok("seal", "deploy/prod/later.yaml")  # sealed after the rotation: current, not in the plan
    before = repo.snapshot()
    counts = {
        rel: len(tokens_of(before[rel].decode()))
        for rel in ("deploy/prod/db.yaml", "deploy/prod/values.yaml", "deploy/prod/multi.yaml")
    }

    r = repo.ok("reseal", "--dry-run")  # no identity anywhere: empty config dir, no SEALER_* variables
    assert repo.snapshot() == before
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3, r.stdout
    for rel, n in counts.items():
        (line,) = [x for x in lines if rel in x]
        assert old_kid in line and new_kid in line and re.search(rf"\b{n}\b", line), line
        assert line.index(old_kid) < line.index(new_kid), line
    assert "later.yaml" not in r.stdout and "staging" not in r.stdout
    assert str(sum(counts.values())) in r.stderr

    plan = json.loads(repo.ok("reseal", "--dry-run", "--output", "json").stdout)
    assert repo.snapshot() == before
    assert {f["file"]: f["values"] for f in plan["files"]} == counts
    for f in plan["files"]:
        assert f["moves"] == [{"from": [old_kid], "to": [new_kid], "values": counts[f["file"]]}]

    # Without --dry-run the same run needs the old key: it refuses, and writes nothing.
    r = repo.run("reseal")
    assert_clean_failure(r, code=None)
    assert repo.snapshot() == before


def test_reseal_commit_makes_one_commit_of_exactly_the_resealed_files(repo: KeyRepo) -> None:
    import git

    prod_files(repo)
    old_kid = repo.kid("prod")
    repo.write("README.md", "# deploy repo\n")
    repo.write("docs/notes.md", "notes\n")
    g = repo.git_init()
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    repo.write("deploy/prod/later.yaml", secret_with("later", {"a": "x"}))
    repo.ok("seal", "deploy/prod/later.yaml")  # current: not re-sealed, not committed
    repo.commit("rotate prod")
    # Unrelated work in progress: a modified file, a staged change, an untracked file.
    repo.write("README.md", "# deploy repo, edited\n")
    repo.write("docs/notes.md", "notes, staged\n")
    g.git.add("docs/notes.md")
    repo.write("scratch.txt", "scratch\n")
    head = g.head.commit

    r = repo.ok("reseal", "--commit", "-i", str(repo.all_keys["prod"][0]))
    g = git.Repo(repo.root)
    commit = g.head.commit
    assert commit != head and commit.parents == (head,), "exactly one new commit"
    resealed = {"deploy/prod/db.yaml", "deploy/prod/values.yaml", "deploy/prod/multi.yaml"}
    assert set(commit.stats.files) == resealed
    for rel in resealed:
        assert (commit.tree / rel).data_stream.read() == (repo.root / rel).read_bytes()
        (line,) = [x for x in commit.message.splitlines() if rel in x]
        assert old_kid in line and new_kid in line and line.index(old_kid) < line.index(new_kid), line
    assert "later.yaml" not in commit.message
    assert commit.hexsha[:12] in r.stderr
    # The unrelated changes are where they were, uncommitted.
    assert {d.a_path for d in g.index.diff(None)} == {"README.md"}
    assert {d.a_path for d in g.index.diff("HEAD")} == {"docs/notes.md"}
    assert g.untracked_files == ["scratch.txt"]
    assert (repo.root / "README.md").read_text() == "# deploy repo, edited\n"


@pytest.mark.parametrize("how", ["unstaged", "staged"])
def test_reseal_commit_refuses_when_a_resealed_file_has_uncommitted_changes(repo: KeyRepo, how: str) -> None:
    prod_files(repo)
    g = repo.git_init()
    repo.rotate("prod")
    repo.commit("rotate prod")
    with (repo.root / "deploy/prod/values.yaml").open("a") as f:
        f.write("# a change in progress\n")
    if how == "staged":
        g.git.add("deploy/prod/values.yaml")
    before, head = repo.snapshot(), g.head.commit.hexsha
    r = repo.run("reseal", "--commit", "-i", str(repo.all_keys["prod"][0]))
    assert_clean_failure(r, "deploy/prod/values.yaml", "uncommitted", code=None)
    assert repo.snapshot() == before
    assert g.head.commit.hexsha == head


def test_reseal_commit_in_a_repository_without_commits(repo: KeyRepo) -> None:
    prod_files(repo)
    repo.git_init(commit=None)
    repo.rotate("prod")
    r = repo.run("reseal", "--commit", "-i", str(repo.all_keys["prod"][0]))
    assert "internal error" not in r.stderr, r.stderr
    if r.returncode != 0:
        assert_clean_failure(r, code=None)


def test_reseal_missing_identity_names_the_kid_and_files(repo: KeyRepo) -> None:
    k1 = repo.kid("prod")
    for i in range(5):
        repo.seal_at(f"deploy/prod/app{i}.yaml", secret_with(f"app{i}", {"token": f"t{i}"}), now() - DAY)
    repo.rotate("prod")
    k2 = repo.kid("prod")
    repo.seal("deploy/prod/later.yaml", secret_with("later", {"token": "t"}))  # sealed to k2
    repo.rotate("prod")
    k3 = repo.kid("prod")
    before = repo.snapshot()
    # Only the newest key: both old kids are missing.
    r = repo.run("reseal", "-i", str(repo.all_keys["prod"][2]))
    line = assert_clean_failure(
        r, k1, "deploy/prod/app0.yaml", "deploy/prod/app1.yaml", "deploy/prod/app2.yaml", "2 more", code=None
    )
    assert k2 in line and k3 not in line
    # k2's key but not k1's: names k1 and its files, not the file k2 can open.
    r = repo.run("reseal", "-i", str(repo.all_keys["prod"][1]))
    line = assert_clean_failure(r, k1, "deploy/prod/app0.yaml", code=None)
    assert "later.yaml" not in line and k2 not in line
    # k1's key but not k2's: names k2 and later.yaml.
    r = repo.run("reseal", "-i", str(repo.all_keys["prod"][0]))
    line = assert_clean_failure(r, k2, "deploy/prod/later.yaml", code=None)
    assert "app0" not in line
    assert repo.snapshot() == before


def test_reseal_without_any_identity_names_the_kid_and_files(repo: KeyRepo) -> None:
    repo.seal("deploy/prod/db.yaml", SECRET)
    old_kid = repo.kid("prod")
    repo.rotate("prod")
    before = repo.snapshot()
    r = repo.run("reseal")
    assert repo.snapshot() == before
    assert_clean_failure(r, old_kid, "deploy/prod/db.yaml", code=None)


# --- recovery recipients --------------------------------------------------------------------------


def test_recovery_recipient_from_age_keygen(repo: KeyRepo, tmp_path: Path) -> None:
    keygen = require_tool("age-keygen")
    rec_key = tmp_path / "recovery.txt"
    subprocess.run([keygen, "-o", str(rec_key)], check=True, capture_output=True)
    rec = recipient_of(rec_key)
    rec_kid = kid_of(rec)
    prod_kid = repo.kid("prod")
    repo.seal("deploy/prod/db.yaml", SECRET)  # before the recovery key exists: prod only
    assert {kids_of(t) for t in tokens_of(repo.read("deploy/prod/db.yaml"))} == {(prod_kid,)}

    repo.ok("keys", "add", "prod", rec, "--recovery", "--label", "security team safe")
    (row,) = [r for r in repo.key_rows("prod") if r["kid"] == rec_kid]
    assert row["state"] == "active" and row.get("role") == "recovery" and row["recipient"] == rec

    # New values name both kids: seal and set.
    repo.seal("deploy/prod/values.yaml", VALUES)
    assert {kids_of(t) for t in tokens_of(repo.read("deploy/prod/values.yaml"))} == {(prod_kid, rec_kid)}
    repo.ok("set", "deploy/prod/db.yaml", "stringData.extra", stdin="extra-CANARY\n")
    kinds = [kids_of(t) for t in tokens_of(repo.read("deploy/prod/db.yaml"))]
    assert kinds.count((prod_kid, rec_kid)) == 1 and kinds.count((prod_kid,)) == 3

    # reseal brings the older values to both kids; the recovery key alone then opens everything.
    plain = repo.unseal("deploy/prod", keys=[repo.all_keys["prod"][0]])
    repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]))
    for rel in ("deploy/prod/db.yaml", "deploy/prod/values.yaml"):
        assert {kids_of(t) for t in tokens_of(repo.read(rel))} == {(prod_kid, rec_kid)}
    assert repo.unseal("deploy/prod", keys=[rec_key]) == plain
    assert plain[("deploy/prod/db.yaml", 0)]["stringData"]["extra"] == "extra-CANARY"

    # After a rotation: the new key and the recovery key.
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]))
    for rel in ("deploy/prod/db.yaml", "deploy/prod/values.yaml"):
        assert {kids_of(t) for t in tokens_of(repo.read(rel))} == {(new_kid, rec_kid)}
    assert repo.unseal("deploy/prod", keys=[rec_key]) == plain
    assert repo.unseal("deploy/prod", keys=[repo.all_keys["prod"][1]]) == plain


# --- retire ---------------------------------------------------------------------------------------


def test_retire_refuses_while_values_name_the_key_then_force(repo: KeyRepo) -> None:
    old_kid = repo.kid("prod")
    repo.seal("deploy/prod/a.yaml", secret_with("a", {f"k{i}": f"a-CANARY-{i}" for i in range(7)}))
    repo.seal("deploy/prod/b.yaml", secret_with("b", {f"k{i}": f"b-CANARY-{i}" for i in range(5)}))
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    repo.ok("set", "deploy/prod/a.yaml", "stringData.fresh", stdin="fresh-CANARY\n")  # new key: not counted
    registry = (repo.root / "keys/prod.yaml").read_bytes()

    r = repo.run("keys", "retire", "prod", old_kid)
    line = assert_clean_failure(r, old_kid, "12", code=None)
    assert line.count("deploy/prod/") == 10, line  # ten values listed …
    assert re.search(r"\b2 more\b", line), line  # … and a count of the rest
    assert "fresh" not in line
    assert (repo.root / "keys/prod.yaml").read_bytes() == registry

    r = repo.ok("keys", "retire", "prod", old_kid, "--force")
    assert "12" in r.stderr and "unseal" in r.stderr, r.stderr  # says what becomes unreadable
    assert {r["kid"]: r["state"] for r in repo.key_rows("prod")} == {old_kid: "retired", new_kid: "active"}

    # The retired key's values are refused even with its private key at hand, naming file and path.
    r = repo.run(
        "unseal", "deploy/prod/b.yaml", "-i", str(repo.all_keys["prod"][0]), "-i", str(repo.all_keys["prod"][1])
    )
    assert_clean_failure(r, "deploy/prod/b.yaml", "stringData.k0", "retired", old_kid, code=None)
    # A file on the active key still opens.
    repo.seal("deploy/prod/c.yaml", secret_with("c", {"k": "c-CANARY"}))
    assert repo.unseal("deploy/prod/c.yaml", keys=[repo.all_keys["prod"][1]])[("deploy/prod/c.yaml", 0)][
        "stringData"
    ] == {"k": "c-CANARY"}


def test_active_and_retiring_keys_both_unseal_then_retire_cleanly(repo: KeyRepo) -> None:
    old_kid = repo.kid("prod")
    repo.seal("deploy/prod/old.yaml", secret_with("old", {"k": "old-CANARY"}))
    repo.rotate("prod")
    repo.seal("deploy/prod/new.yaml", secret_with("new", {"k": "new-CANARY"}))
    old_key, new_key = repo.all_keys["prod"]
    assert repo.unseal("deploy/prod/old.yaml", keys=[old_key])[("deploy/prod/old.yaml", 0)]["stringData"] == {
        "k": "old-CANARY"
    }
    assert repo.unseal("deploy/prod/new.yaml", keys=[new_key])[("deploy/prod/new.yaml", 0)]["stringData"] == {
        "k": "new-CANARY"
    }
    both = repo.unseal("deploy/prod", keys=[old_key, new_key])
    assert len(both) == 2
    repo.ok("reseal", "-i", str(old_key))
    r = repo.ok("keys", "retire", "prod", old_kid)
    assert "unseal" not in r.stderr  # nothing becomes unreadable
    assert repo.unseal("deploy/prod", keys=[new_key]) == both


# --- revocation -----------------------------------------------------------------------------------


def test_revoke_before_refuses_older_values_until_set_afresh(repo: KeyRepo) -> None:
    an_hour_ago = now() - 3600
    repo.seal_at("deploy/prod/a.yaml", secret_with("a", {"password": "a-CANARY"}), an_hour_ago)
    repo.seal_at("deploy/prod/b.yaml", secret_with("b", {"user": "b-CANARY-1", "password": "b-CANARY-2"}), an_hour_ago)
    key = repo.all_keys["prod"][0]
    repo.unseal("deploy/prod", keys=[key])  # fine before the revocation

    repo.ok("keys", "revoke-before", "prod", "now")
    assert "not_before" in repo.read("keys/prod.yaml")
    r = repo.run("unseal", "deploy/prod/a.yaml", "-i", str(key))
    line = assert_clean_failure(r, "deploy/prod/a.yaml", "stringData.password", code=None)
    assert "fresh value" in line and "sealer set" in line, line

    # reseal refuses them too (after a rotation they would otherwise be moved), and writes nothing.
    repo.rotate("prod")
    before = repo.snapshot()
    r = repo.run("reseal", "-i", str(key))
    assert r.returncode != 0 and "Traceback" not in r.stderr and "CANARY" not in r.stderr
    for rel, path in (("deploy/prod/a.yaml", "stringData.password"), ("deploy/prod/b.yaml", "stringData.")):
        (line,) = [x for x in r.stderr.splitlines() if rel in x and "fresh value" in x]
        assert path in line, line
    assert repo.snapshot() == before

    # A value set afterwards opens; the untouched file stays refused.
    repo.ok("set", "deploy/prod/a.yaml", "stringData.password", stdin="a-CANARY-new\n")
    out = repo.unseal("deploy/prod/a.yaml", keys=[repo.all_keys["prod"][1]])
    assert out[("deploy/prod/a.yaml", 0)]["stringData"] == {"password": "a-CANARY-new"}
    r = repo.run("unseal", "deploy/prod/b.yaml", "-i", str(key), "-i", str(repo.all_keys["prod"][1]))
    assert_clean_failure(r, "deploy/prod/b.yaml", "fresh value", code=None)
    r = repo.run("status", "--env", "prod", "--output", "json")
    assert r.returncode == 1
    assert {(v["file"], v["path"]) for v in json.loads(r.stdout)[0]["revoked_values"]} == {
        ("deploy/prod/b.yaml", "stringData.user"),
        ("deploy/prod/b.yaml", "stringData.password"),
    }
    # Once every revoked value is set afresh, status passes (the runbook's CI gate).
    for k in ("user", "password"):
        repo.ok("set", "deploy/prod/b.yaml", f"stringData.{k}", stdin="b-new\n")
    r = repo.run("status", "--env", "prod", "--output", "json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)[0]["revoked_values"] == []


def test_reseal_failure_line_names_the_file_once(repo: KeyRepo) -> None:
    repo.seal_at("deploy/prod/a.yaml", secret_with("a", {"password": "a-CANARY"}), now() - 3600)
    repo.ok("keys", "revoke-before", "prod", "now")
    repo.rotate("prod")
    r = repo.run("reseal", "-i", str(repo.all_keys["prod"][0]))
    (line,) = [x for x in r.stderr.splitlines() if "stringData.password" in x]
    assert not line.startswith("deploy/prod/a.yaml: deploy/prod/a.yaml:"), line


# --- status ---------------------------------------------------------------------------------------

POLICY_CONFIG = """\
version: 1
environments:
  dev:
    paths: ["deploy/dev/**"]
  staging:
    paths: ["deploy/staging/**"]
  prod:
    paths: ["deploy/prod/**"]
    policy:
      max_secret_age: {age}
      key_rotation_period: {period}
"""


def set_created(repo: KeyRepo, env: str, kid: str, when: dt.datetime) -> None:
    """Backdate a key in keys/ENV.yaml, as if it had been made `when`."""
    path = repo.root / "keys" / f"{env}.yaml"
    text = path.read_text()
    pattern = re.compile(rf"(- kid: {kid}\n(?:  .*\n)*?  created: ).*\n")
    new, n = pattern.subn(lambda m: m.group(1) + "'" + when.strftime("%Y-%m-%dT%H:%M:%SZ") + "'\n", text)
    assert n == 1, text
    path.write_text(new)


def status_json(repo: KeyRepo, code: int) -> dict[str, dict[str, Any]]:
    r = repo.run("status", "--output", "json")  # no identity anywhere
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return {s["env"]: s for s in json.loads(r.stdout)}


def test_status_reports_keys_values_ages_and_breaches(repo: KeyRepo) -> None:
    repo.write(".sealer.yaml", POLICY_CONFIG.format(age="90d", period="180d"))
    old_kid = repo.kid("prod")
    set_created(repo, "prod", old_kid, dt.datetime.now(dt.UTC) - dt.timedelta(days=200))
    repo.seal_at("deploy/prod/old.yaml", secret_with("old", {"a": "x", "b": "y"}), now() - 100 * DAY)
    repo.seal_at("deploy/prod/edge.yaml", secret_with("edge", {"a": "x"}), now() - 89 * DAY)
    repo.seal_at("deploy/prod/fresh.yaml", secret_with("fresh", {"a": "x", "b": "y"}), now())
    repo.seal_at("deploy/staging/ancient.yaml", secret_with("ancient", {"a": "x"}), now() - 400 * DAY, env="staging")

    st = status_json(repo, 1)
    prod = st["prod"]
    assert prod["values_per_kid"] == {old_kid: 5}
    assert {(v["file"], v["path"]) for v in prod["old_values"]} == {
        ("deploy/prod/old.yaml", "stringData.a"),
        ("deploy/prod/old.yaml", "stringData.b"),
    }
    assert prod["overdue_keys"] == [old_kid]
    assert prod["files_on_retiring_keys"] == {}
    assert {k["kid"]: k["state"] for k in prod["keys"]} == {old_kid: "active"}
    assert 199 < prod["keys"][0]["age_days"] < 201
    assert prod["breaches"]
    assert st["staging"]["breaches"] == [] and st["staging"]["values_per_kid"] == {repo.kid("staging"): 1}

    r = repo.run("status")
    assert r.returncode == 1 and "POLICY BREACH" in r.stdout and "old.yaml" in r.stdout, r.stdout
    assert_clean_failure(r, "policy", code=None)

    # Rotate: the new key is young; every prod file is still on the retiring key.
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    prod = status_json(repo, 1)["prod"]
    assert prod["overdue_keys"] == []
    assert {k: sorted(v) for k, v in prod["files_on_retiring_keys"].items()} == {
        old_kid: ["deploy/prod/edge.yaml", "deploy/prod/fresh.yaml", "deploy/prod/old.yaml"]
    }
    assert prod["values_per_kid"] == {old_kid: 5}

    # Fresh values for the old secrets, everything re-sealed: within policy, exit 0.
    for k in ("a", "b"):
        repo.ok("set", "deploy/prod/old.yaml", f"stringData.{k}", stdin="new\n")
    repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]))
    prod = status_json(repo, 0)["prod"]
    assert prod["values_per_kid"] == {new_kid: 5}
    assert prod["old_values"] == [] and prod["files_on_retiring_keys"] == {} and prod["breaches"] == []
    assert repo.run("status").returncode == 0


def test_status_without_policy_exits_zero(repo: KeyRepo) -> None:
    repo.seal_at("deploy/prod/a.yaml", secret_with("a", {"a": "x"}), now() - 1000 * DAY)
    st = status_json(repo, 0)
    assert st["prod"]["values_per_kid"] == {repo.kid("prod"): 1}
    assert st["prod"]["old_values"] == []


@pytest.mark.parametrize("setting", ["max_secret_age", "key_rotation_period"])
@pytest.mark.parametrize("bad", ["90", "ninety", "1.5d", "-3d", "90d30", "P90D", "''", "[90d]"])
def test_status_malformed_duration_is_a_config_error(repo: KeyRepo, setting: str, bad: str) -> None:
    values = {"age": "90d", "period": "180d"}
    values["age" if setting == "max_secret_age" else "period"] = bad
    repo.write(".sealer.yaml", POLICY_CONFIG.format(**values))
    assert_clean_failure(repo.run("status"), ".sealer.yaml", setting, code=None)


# --- corrupt registry -----------------------------------------------------------------------------


def corrupt(text: str, how: str) -> str:
    if how == "bad-yaml":
        return text + "keys: [unclosed\n"
    if how == "kid-mismatch":
        return re.sub(r"kid: ([0-9a-f])", lambda m: "kid: " + ("0" if m.group(1) != "0" else "1"), text, count=1)
    if how == "unknown-state":
        return text.replace("state: active", "state: compromised", 1)
    if how == "bad-recipient":
        return re.sub(
            r"recipient: age1(\w)", lambda m: "recipient: age1" + ("q" if m.group(1) != "q" else "p"), text, count=1
        )
    raise AssertionError(how)


COMMANDS = [("status",), ("keys", "list"), ("reseal", "--dry-run"), ("seal", "deploy/prod/db.yaml")]


@pytest.mark.parametrize("how", ["bad-yaml", "kid-mismatch", "unknown-state"])
def test_corrupt_registry_is_a_one_line_error_naming_it(repo: KeyRepo, how: str) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    path = repo.root / "keys/prod.yaml"
    path.write_text(corrupt(path.read_text(), how))
    before = repo.snapshot()
    for cmd in COMMANDS:
        assert_clean_failure(repo.run(*cmd), "keys/prod.yaml", code=None)
    assert repo.snapshot() == before


def test_corrupt_registry_recipient_names_the_file(repo: KeyRepo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    path = repo.root / "keys/prod.yaml"
    path.write_text(corrupt(path.read_text(), "bad-recipient"))
    for cmd in COMMANDS:
        assert_clean_failure(repo.run(*cmd), "keys/prod.yaml", code=None)


# --- a file that changes during a reseal ----------------------------------------------------------


def test_reseal_leaves_a_file_changed_during_the_reseal_library(repo: KeyRepo) -> None:
    """The library, in this process: the test holds the file's lock (as a cooperating writer would),
    waits until reseal has read the file and queues for the lock, edits it, and lets go."""
    from sealer._config import load_config
    from sealer._fsio import locked
    from sealer._identities import find_identities
    from sealer._rotation import make_plan, reseal

    repo.seal("deploy/prod/a.yaml", SECRET)
    repo.seal("deploy/prod/b.yaml", VALUES)
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    cfg = load_config(repo.root)
    plan = make_plan(cfg, env="prod")
    assert {f.rel for f in plan.files} == {"deploy/prod/a.yaml", "deploy/prod/b.yaml"}
    ids = find_identities([repo.all_keys["prod"][0]])
    target = repo.root / "deploy/prod/a.yaml"
    edited = target.read_text().replace("# prod database", "# prod database (edited meanwhile)")
    done: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: done.setdefault("summary", reseal(cfg, plan, ids.for_kid, workers=1)))
    with locked(target):
        worker.start()
        wait_for_lock_waiter(target, target.stat().st_ino)
        target.write_text(edited)
    worker.join(60)
    summary = done["summary"]
    assert [(r.rel, r.changed_on_disk) for r in summary.failed] == [("deploy/prod/a.yaml", True)]
    assert target.read_text() == edited, "the edit is kept; the file is left alone"
    assert summary.files == 1
    assert {kids_of(t) for t in tokens_of(repo.read("deploy/prod/b.yaml"))} == {(new_kid,)}


def test_reseal_reports_a_file_replaced_during_the_reseal_cli(repo: KeyRepo) -> None:
    """The CLI: the file is replaced by rename (as editors save) while reseal waits to write it."""
    repo.seal("deploy/prod/a.yaml", SECRET)
    repo.seal("deploy/prod/b.yaml", VALUES)
    repo.rotate("prod")
    new_kid = repo.kid("prod")
    from sealer._fsio import locked

    target = repo.root / "deploy/prod/a.yaml"
    edited = target.read_text() + "# appended by someone else\n"
    with locked(target):
        proc = subprocess.Popen(
            [SEALER, "reseal", "-j", "1", "-i", str(repo.all_keys["prod"][0])],
            cwd=repo.root,
            env=repo.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_lock_waiter(target, target.stat().st_ino, {proc.pid})
        tmp = target.with_name("a.yaml.editor-swap")
        tmp.write_text(edited)
        os.replace(tmp, target)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err and "CANARY" not in err
    (line,) = [x for x in err.splitlines() if "deploy/prod/a.yaml" in x]
    assert "changed" in line, err
    assert target.read_text() == edited
    assert {kids_of(t) for t in tokens_of(repo.read("deploy/prod/b.yaml"))} == {(new_kid,)}
    # Run again: it finishes, keeping the edit.
    repo.ok("reseal", "-i", str(repo.all_keys["prod"][0]))
    text = target.read_text()
    assert masked(text) == masked(edited)
    assert {kids_of(t) for t in tokens_of(text)} == {(new_kid,)}


# --- concurrent writers ---------------------------------------------------------------------------


def test_concurrent_sets_on_one_file_both_land(repo: KeyRepo) -> None:
    """Two `sealer set` at once on one file, ten times: both values land, the file is never corrupt.
    Every other round, the test holds the file's lock until both are queued for it, so they
    certainly contend (and the second one finds the file replaced under its lock)."""
    from sealer._document import load
    from sealer._fsio import locked
    from sealer._identities import read_identity_file
    from sealer._unseal import UNCHECKED, unseal_file

    rel = "deploy/prod/db.yaml"
    target = repo.root / rel
    repo.seal(rel, SECRET)
    ids = {i.kid: i for i in read_identity_file(repo.all_keys["prod"][0])}
    expected = {"username": "app", "password": "pw-CANARY-7f3a9"}
    for round_ in range(10):
        values = {f"r{round_}a": f"value-{round_}-a", f"r{round_}b": f"value-{round_}-b"}

        def start(key: str, value: str) -> subprocess.Popen[str]:
            p = subprocess.Popen(
                [SEALER, "set", rel, f"stringData.{key}"],
                cwd=repo.root,
                env=repo.env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert p.stdin is not None
            p.stdin.write(value + "\n")
            p.stdin.close()
            return p

        if round_ % 2 == 0:
            with locked(target):
                procs = [start(k, v) for k, v in values.items()]
                wait_for_lock_waiter(target, target.stat().st_ino, {p.pid for p in procs})
        else:
            procs = [start(k, v) for k, v in values.items()]
        for p in procs:
            p.wait(60)
            assert p.stderr is not None
            assert p.returncode == 0, (round_, p.stderr.read())
        expected.update(values)
        text = target.read_text()
        out = unseal_file(load(text, rel), ids.get, rules=UNCHECKED)
        assert out.docs[0].content["stringData"] == expected, (round_, text)
        assert out.docs[0].content["data"] == {"tls.crt": "aGVsbG8gd29ybGQ="}
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]


# --- the fast locator's blind spot, end to end ----------------------------------------------------


def test_reseal_a_secret_with_inline_metadata(repo: KeyRepo) -> None:
    from test_tokens import colliding_namespace

    text = (
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {colliding_namespace()}}}\n"
        "stringData:\n  password: pw-CANARY\n"
    )
    repo.write("deploy/prod/db.yaml", text)
    repo.ok("seal", "deploy/prod/db.yaml", "--scope", "namespace")
    repo.rotate("prod")
    r = repo.run("reseal", "-i", str(repo.all_keys["prod"][0]))
    assert r.returncode == 0, r.stderr
    assert {kids_of(t) for t in tokens_of(repo.read("deploy/prod/db.yaml"))} == {(repo.kid("prod"),)}
