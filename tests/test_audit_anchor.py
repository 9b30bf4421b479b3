"""The audit log's head, anchored outside the file.

A hash chain cannot show what was cut off its end, nor a file emptied, swapped for an older copy or
deleted and created again: each of those is a whole chain. So every write of the CLI keeps an
anchor (the entry it wrote last, its hash and place) in the user's config dir, and `sealer audit
verify` compares the log with it without being told a head. A writer that finds its anchored
entry gone still appends but leaves the anchor there, so the loss stays visible until a person
runs `--reanchor`. Everything runs through the real CLI (the `Repo` harness); the tampering is
what a person or a restore job would do to the file.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from conftest import SECRET, Repo, assert_clean_failure

from sealer._audit import verify


class Audited(Repo):
    """A repository whose CLI writes the default audit log (in its config dir)."""

    @property
    def log(self) -> Path:
        return self.home / "audit.log"

    def unseal(self) -> None:
        self.ok("unseal", "deploy/prod/db.yaml", "-i", str(self.keys["prod"]))

    def entries(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def anchors(self) -> list[Path]:
        d = self.home / "audit-anchors"
        return sorted(d.iterdir()) if d.is_dir() else []


@pytest.fixture
def audited(tmp_path: Path) -> Audited:
    r = Audited.create(tmp_path, "prod", keys=("prod",))
    r.seal("deploy/prod/db.yaml", SECRET)
    r.unseal()
    r.unseal()
    return r


def test_every_write_moves_the_anchor_and_verify_finds_it_by_itself(audited: Audited) -> None:
    n = len(audited.entries())
    r = audited.ok("audit", "verify")  # no FILE, no --head: the default log and its anchor
    assert r.stdout.startswith(f"{audited.log}: ok, {n} entries") and f"anchored entry {n} in place" in r.stdout
    (anchor,) = audited.anchors()
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    kept = json.loads(anchor.read_text())
    assert kept["entry"] == n and kept["hash"] == audited.entries()[-1]["hash"] and kept["log"] == str(audited.log)
    assert "CANARY" not in anchor.read_text()
    out = json.loads(audited.ok("audit", "verify", str(audited.log), "--output", "json").stdout)
    assert out["ok"] is True and out["anchor"]["entry"] == n and out["anchor"]["file"] == str(anchor)


def _older_copy(a: Audited) -> None:
    old = a.log.read_bytes()
    a.unseal()
    a.log.write_bytes(old)  # a backup restored over the newer log


def _cut(a: Audited) -> None:
    a.log.write_bytes(b"".join(a.log.read_bytes().splitlines(keepends=True)[:-2]))


def _emptied(a: Audited) -> None:
    a.log.write_bytes(b"")


def _recreated(a: Audited) -> None:
    a.log.unlink()


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (_cut, "lines were cut off its end"),
        (_emptied, "the log is empty"),
        (_older_copy, "or it is an older copy"),
        (_recreated, "no such audit log, but sealer wrote entry"),
    ],
)
def test_a_whole_chain_that_lost_its_anchored_entry_fails(audited: Audited, tamper: object, needle: str) -> None:
    assert callable(tamper)
    tamper(audited)
    if audited.log.exists():
        assert verify(audited.log).ok  # the chain alone is whole: only the anchor can tell
    line = audited.fail("audit", "verify", expect=[str(audited.log), needle, "--reanchor"])
    assert "CANARY" not in line


@pytest.mark.parametrize("tamper", [_cut, _emptied, _older_copy, _recreated])
def test_later_writes_do_not_paper_over_the_loss(audited: Audited, tamper: object) -> None:
    """The next commands still write their lines (to the damaged log), say so, and leave the
    anchor on the lost entry, so verify keeps failing until a person re-anchors."""
    assert callable(tamper)
    tamper(audited)
    anchor = audited.anchors()[0].read_bytes()
    for _ in range(3):
        r = audited.run("unseal", "deploy/prod/db.yaml", "-i", str(audited.keys["prod"]))
        assert r.returncode == 0 and "pw-CANARY-7f3a9" in r.stdout  # the log can record: no refusal
        (warning,) = r.stderr.strip().splitlines()
        assert warning.startswith(f"warning: {audited.log}: the audit log no longer holds entry ")
    assert audited.anchors()[0].read_bytes() == anchor
    assert verify(audited.log).ok
    out = audited.run("audit", "verify", "--output", "json")
    assert out.returncode == 1 and json.loads(out.stdout)["ok"] is False

    r = audited.ok("audit", "verify", "--reanchor")
    assert "anchored at entry" in r.stdout
    last = audited.entries()[-1]
    assert last["event"] == "anchor" and str(last["reason"]).startswith("anchor moved from entry ")
    assert audited.ok("audit", "verify").stdout.count("in place") == 1
    r = audited.ok("unseal", "deploy/prod/db.yaml", "-i", str(audited.keys["prod"]))
    assert r.stderr == ""


def test_a_broken_chain_is_not_reanchored(audited: Audited) -> None:
    n = next(i for i, e in enumerate(audited.entries(), start=1) if e["event"] == "seal")
    audited.log.write_text(audited.log.read_text().replace('"event":"seal"', '"event":"sael"'))
    audited.fail("audit", "verify", "--reanchor", expect=[f"line {n}:", "is not re-anchored", "move it aside"])


def test_a_shared_log_keeps_each_writers_anchor(audited: Audited) -> None:
    """Another user (another config dir) appending to the same log moves nobody else's anchor."""
    other = Repo(audited.tmp, root=audited.root, env={"SEALER_CONFIG_DIR": str(audited.tmp / "other-home")})
    (audited.tmp / "other-home").mkdir()
    shared = {"SEALER_AUDIT_LOG": str(audited.log)}
    for _ in range(2):
        r = other.ok("unseal", "deploy/prod/db.yaml", "-i", str(audited.keys["prod"]), env=shared)
        assert r.stderr == ""
    audited.unseal()
    assert "in place" in audited.ok("audit", "verify").stdout
    assert "in place" in other.ok("audit", "verify", env=shared).stdout


def test_a_crash_after_the_anchor_is_a_torn_line_but_a_torn_anchored_entry_is_a_loss(audited: Audited) -> None:
    lines = audited.log.read_bytes().splitlines(keepends=True)
    n = len(lines)
    # A write that was cut short after the last anchored one: no loss, the next append repairs it.
    audited.log.write_bytes(b"".join(lines) + b'{"seq":%d,"time":"2025' % (n + 1))
    r = audited.ok("unseal", "deploy/prod/db.yaml", "-i", str(audited.keys["prod"]))
    assert r.stderr == ""
    r = audited.ok("audit", "verify")
    assert "1 torn line" in r.stdout and "in place" in r.stdout
    assert f"line {n + 1}: torn" in r.stderr

    # The anchored entry itself cut short (someone hiding what it says): caught, even after the
    # next append chained to the torn bytes.
    audited.unseal()
    lines = audited.log.read_bytes().splitlines(keepends=True)
    audited.log.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])
    r = audited.run("unseal", "deploy/prod/db.yaml", "-i", str(audited.keys["prod"]))
    assert "no longer holds entry" in r.stderr
    assert_clean_failure(audited.run("audit", "verify"), f"line {len(lines)} is not the entry sealer wrote there")


def test_a_damaged_anchor_file_is_reported_not_trusted(audited: Audited) -> None:
    (anchor,) = audited.anchors()
    anchor.write_text("{}")
    audited.fail("audit", "verify", expect=[str(anchor), "the audit anchor is not one"])
    r = audited.ok("unseal", "deploy/prod/db.yaml", "-i", str(audited.keys["prod"]))
    assert "cannot be checked against its anchor" in r.stderr
    audited.ok("audit", "verify", "--reanchor")
    assert "in place" in audited.ok("audit", "verify").stdout


def test_verify_of_a_log_nobody_here_anchored_says_so(audited: Audited) -> None:
    copy = audited.tmp / "elsewhere.log"
    shutil.copy(audited.log, copy)
    r = audited.ok("audit", "verify", str(copy))
    assert "no anchor" in r.stdout and "--head" in r.stdout
    audited.fail("audit", "verify", env={"SEALER_AUDIT_LOG": "off"}, expect=["SEALER_AUDIT_LOG is off"], code=2)
