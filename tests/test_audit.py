"""The audit log: a hash chain that names the first edited, removed, reordered or truncated line.

Tampering is done the way a person would: editing bytes in the file, deleting or swapping lines,
cutting the file. Concurrency uses real processes. `sealer audit verify` runs as the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sealer._audit import GENESIS, AuditLog, Event, git_head, kids_in, verify

SEALER = str(Path(sys.executable).parent / "sealer")
KID = "928922e6866de97f"


@pytest.fixture(scope="module")
def registered() -> None:
    """Say plainly when the command is missing from the CLI instead of failing every test obscurely."""
    r = subprocess.run([SEALER, "audit", "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"`sealer audit` is not registered in sealer/cli/__init__.py: {r.stderr.strip()}", pytrace=False)


def write_log(path: Path, n: int) -> list[bytes]:
    log = AuditLog(path, actor="alice@laptop")
    for i in range(n):
        log.append(Event("unseal", env="prod", file=f"deploy/prod/f{i}.yaml", kids=[KID], commit="c0ffee" * 6 + "abcd"))
    return path.read_bytes().splitlines(keepends=True)


def sealer(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    return subprocess.run([SEALER, *args], capture_output=True, text=True, env=env, timeout=60)


def test_lines_chain_from_genesis_and_hash_themselves(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = write_log(log, 3)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    prev = GENESIS
    for n, raw in enumerate(lines, start=1):
        obj = json.loads(raw)
        assert list(obj) == [
            "seq",
            "time",
            "actor",
            "event",
            "env",
            "file",
            "kids",
            "commit",
            "result",
            "reason",
            "prev",
            "hash",
        ]
        assert obj["seq"] == n and obj["prev"] == prev and obj["actor"] == "alice@laptop"
        assert obj["kids"] == [KID] and obj["result"] == "ok" and obj["time"].endswith("Z")
        # The documented rule: hash = SHA-256 of the line without its hash member.
        body = raw.rstrip(b"\n")
        cut = body.rindex(b',"hash":"')
        assert hashlib.sha256(body[:cut] + b"}").hexdigest() == obj["hash"]
        prev = obj["hash"]
    result = verify(log)
    assert result.ok and result.lines == 3 and result.head == prev


@pytest.mark.parametrize(
    ("tamper", "bad_line"),
    [
        ("edit-middle", 3),
        ("edit-last", 5),
        ("edit-first-recomputed", 2),  # a forger who fixes the line's own hash breaks the next link
        ("delete-middle", 3),
        ("delete-first", 1),
        ("swap", 2),
        ("truncate-mid-line", 5),
        ("insert-copy", 3),
    ],
)
def test_verify_names_the_first_bad_line(registered: None, tmp_path: Path, tamper: str, bad_line: int) -> None:
    log = tmp_path / "audit.log"
    lines = write_log(log, 5)
    if tamper == "edit-middle":
        lines[2] = lines[2].replace(b'"result":"ok"', b'"result":"fail"')
    elif tamper == "edit-last":
        lines[4] = lines[4].replace(b"f4.yaml", b"f9.yaml")
    elif tamper == "edit-first-recomputed":
        obj = json.loads(lines[0])
        obj["file"] = "deploy/prod/other.yaml"
        del obj["hash"]
        body = json.dumps(obj, separators=(",", ":")).encode()
        lines[0] = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'
    elif tamper == "delete-middle":
        del lines[2]
    elif tamper == "delete-first":
        del lines[0]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif tamper == "truncate-mid-line":
        lines[4] = lines[4][:40]
    elif tamper == "insert-copy":
        lines.insert(2, lines[1])
    log.write_bytes(b"".join(lines))
    result = verify(log)
    assert not result.ok
    assert result.line == bad_line, result.error
    assert result.error is not None and result.error.startswith(f"line {bad_line}:")

    r = sealer("audit", "verify", str(log))
    assert r.returncode == 1
    assert r.stderr.startswith("sealer: error: ") and f"line {bad_line}:" in r.stderr
    assert "Traceback" not in r.stderr
    r = sealer("audit", "verify", str(log), "--output", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["line"] == bad_line and out["file"] == str(log)


def test_cut_off_tail_is_caught_with_the_noted_head(registered: None, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    write_log(log, 4)
    r = sealer("audit", "verify", str(log), "--output", "json")
    assert r.returncode == 0, r.stderr
    head = json.loads(r.stdout)["head"]
    text = sealer("audit", "verify", str(log))
    assert text.returncode == 0 and head in text.stdout and "4 entries" in text.stdout
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:3]))  # whole lines removed from the end: the chain is still whole
    assert verify(log).ok
    r = sealer("audit", "verify", str(log), "--head", head)
    assert r.returncode == 1 and "cut off" in r.stderr
    AuditLog(log).append(Event("seal"))  # even a later append does not bring the entry back
    assert not verify(log, head=head).ok


def test_torn_tail_stays_visible_after_the_next_append(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = write_log(log, 3)
    log.write_bytes(b"".join(lines[:2]) + lines[2][:30])  # a crash mid-write
    AuditLog(log).append(Event("seal", env="prod"))
    stored = log.read_bytes().splitlines()
    assert len(stored) == 4 and json.loads(stored[3])["event"] == "seal"
    result = verify(log)
    assert result.ok and result.torn == [3] and result.lines == 4  # reported, and checked through


def _writer(path: str, who: int, n: int) -> None:
    log = AuditLog(path, actor=f"writer{who}@test")
    for i in range(n):
        log.append(Event("set", env="prod", file=f"w{who}/{i}.yaml"))


def test_concurrent_writers_interleave_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(log), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    result = verify(log)
    assert result.ok, result.error
    assert result.lines == 160
    files = {json.loads(line)["file"] for line in log.read_text().splitlines()}
    assert len(files) == 160


def test_fields_are_one_line_names_never_more(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    AuditLog(log, actor="bob@ci").append(
        Event("unseal", result="fail", file="deploy/prod/x.yaml", reason="bad\nforged line\r\n" + "x" * 2000)
    )
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    reason = json.loads(lines[0])["reason"]
    assert "\n" not in reason and len(reason) <= 500
    with pytest.raises(ValueError):
        AuditLog(log).append(Event("Not An Event"))
    with pytest.raises(ValueError):
        AuditLog(log).append(Event("seal", result="maybe"))
    assert verify(log).ok


def test_kids_in_and_git_head(tmp_path: Path) -> None:
    text = f"a: ENC[sealer.v1,{KID},AAAA]\nb: ENC[sealer.v1,{KID}+0123456789abcdef,BBBB]\n"
    assert kids_in(text) == ("0123456789abcdef", KID)
    assert git_head(tmp_path) is None
    import git

    repo = git.Repo.init(tmp_path / "r", initial_branch="main")
    (tmp_path / "r" / "f").write_text("x")
    repo.index.add(["f"])
    commit = repo.index.commit("c", author=git.Actor("a", "a@b"), committer=git.Actor("a", "a@b"))
    assert git_head(tmp_path / "r" / "f") == commit.hexsha
    repo.git.pack_refs("--all")
    assert git_head(tmp_path / "r") == commit.hexsha


def test_verify_missing_file_is_one_line(registered: None, tmp_path: Path) -> None:
    r = sealer("audit", "verify", str(tmp_path / "nope.log"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"sealer: error: {tmp_path / 'nope.log'}: no such audit log"]


def test_cli_helpers_default_path_off_switch_and_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealer._audit import default_path, try_record, try_record_events

    monkeypatch.delenv("SEALER_AUDIT_LOG", raising=False)
    monkeypatch.setenv("SEALER_CONFIG_DIR", str(tmp_path / "cfg"))
    assert default_path() == tmp_path / "cfg" / "audit.log"
    monkeypatch.setenv("SEALER_AUDIT_LOG", "off")
    assert default_path() is None
    assert try_record("seal", env="prod") is None  # off: nothing written, nothing said
    assert not (tmp_path / "cfg" / "audit.log").exists()

    log = tmp_path / "audit.log"
    monkeypatch.setenv("SEALER_AUDIT_LOG", str(log))
    monkeypatch.setenv("SEALER_ACTOR", "release-bot")
    import git

    repo = git.Repo.init(tmp_path / "r", initial_branch="main")
    (tmp_path / "r" / "f").write_text("x")
    repo.index.add(["f"])
    head = repo.index.commit("c", author=git.Actor("a", "a@b"), committer=git.Actor("a", "a@b")).hexsha
    assert try_record("rotate", env="prod", kids=[KID], repo=tmp_path / "r") is None
    assert try_record_events([Event("reseal", file=f"deploy/prod/{i}.yaml") for i in range(3)]) is None
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["rotate", "reseal", "reseal", "reseal"]
    assert entries[0]["commit"] == head and entries[0]["actor"] == "release-bot"
    assert verify(log).ok

    monkeypatch.setenv("SEALER_AUDIT_LOG", str(tmp_path / "a-dir"))
    (tmp_path / "a-dir").mkdir()
    warning = try_record("seal", env="prod")
    assert warning is not None and warning.startswith("warning: ") and "audit log" in warning


def _torn_log(path: Path) -> list[bytes]:
    """Lines 1-2, line 3 torn by a crash mid-write, then three appends (lines 4-6) chaining to it."""
    lines = write_log(path, 3)
    path.write_bytes(b"".join(lines[:2]) + lines[2][:50])
    log = AuditLog(path, actor="bob@ci")
    for i in range(3):
        log.append(Event("seal", env="prod", file=f"deploy/prod/after{i}.yaml"))
    return path.read_bytes().splitlines(keepends=True)


def test_verify_checks_through_a_torn_line_and_reports_it(registered: None, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = _torn_log(log)
    assert len(lines) == 6
    result = verify(log)
    assert result.ok, result.error
    assert result.torn == [3] and result.lines == 6 and result.head == json.loads(lines[5])["hash"]
    r = sealer("audit", "verify", str(log))
    assert r.returncode == 0 and "ok, 5 entries, 1 torn line" in r.stdout
    warned = f"warning: {log}: line 3: torn (a write was cut short); the entry after it chains to its bytes"
    assert r.stderr.strip() == warned
    out = json.loads(sealer("audit", "verify", str(log), "--output", "json").stdout)
    assert out["ok"] is True and out["torn"] == [3]

    # The lines after the torn one are still checked: an edit there is named, not hidden behind it.
    edited = [*lines[:4], lines[4].replace(b"after1.yaml", b"other.yaml"), *lines[5:]]
    log.write_bytes(b"".join(edited))
    result = verify(log)
    assert not result.ok and result.line == 5, result.error
    r = sealer("audit", "verify", str(log))
    assert r.returncode == 1 and "line 5: its hash does not match" in r.stderr


@pytest.mark.parametrize(
    ("damage", "bad_line"),
    [
        ("replace-torn-bytes", 3),  # the next line chains to the torn bytes: other bytes do not fit
        ("second-torn-line", 3),  # two damaged lines in a row: the first is confirmed by nothing
        ("drop-line-after", 3),  # nothing left that chains to the torn bytes
    ],
)
def test_a_torn_line_is_only_passed_when_the_next_line_chains_to_its_bytes(
    tmp_path: Path, damage: str, bad_line: int
) -> None:
    log = tmp_path / "audit.log"
    lines = _torn_log(log)
    if damage == "replace-torn-bytes":
        lines[2] = b'{"seq":3,"time":"1999\n'
    elif damage == "second-torn-line":
        lines[3] = lines[3][:30] + b"\n"
    elif damage == "drop-line-after":
        lines = lines[:3]
    log.write_bytes(b"".join(lines))
    result = verify(log)
    assert not result.ok and result.line == bad_line, result.error
    assert result.error == f"line {bad_line}: is not an audit entry (truncated or edited)"


def test_a_last_line_cut_only_before_its_newline_is_chained_as_it_is(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = write_log(log, 3)
    log.write_bytes(b"".join(lines)[:-1])  # the entry is whole; only its newline was lost
    AuditLog(log).append(Event("seal"))
    result = verify(log)
    assert result.ok and result.torn == [] and result.lines == 4, result.error
