"""The controller anchors its audit log outside the file: the head (entry count and hash) is on
/metrics and in its log, and `sealer audit verify --head` checks the log against it.

The real controller on a real git repository: `--once` as a process, and a long-running one whose
/metrics is scraped over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure
from prometheus_client.parser import text_string_to_metric_families

from sealer._audit import verify


class Deployed(Repo):
    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def log(self) -> Path:
        return self.state / "audit.log"

    def args(self, *extra: str) -> list[str]:
        return [
            SEALER,
            "controller",
            "--repo",
            str(self.root),
            "--env",
            "prod",
            "--target",
            f"dir:{self.tmp / 'out'}",
            "--state-dir",
            str(self.state),
            "-i",
            str(self.keys["prod"]),
            *extra,
        ]

    def once(self) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(self.args("--once"), capture_output=True, text=True, env=self.env(), timeout=120)
        assert r.returncode == 0, r.stderr
        return r


@pytest.fixture
def deployed(tmp_path: Path) -> Deployed:
    d = Deployed.create(tmp_path, "prod", keys=("prod",))
    d.git_init(commit=None)
    d.seal("deploy/prod/db.yaml", SECRET)
    d.commit("db")
    return d


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def events(stderr: str, name: str) -> list[dict[str, str]]:
    return [fields(ln) for ln in stderr.splitlines() if f" event={name} " in ln + " "]


def test_once_logs_the_head_it_wrote_and_verify_checks_the_log_against_it(deployed: Deployed) -> None:
    r = deployed.once()
    (sync,) = events(r.stderr, "sync")
    result = verify(deployed.log)
    assert result.ok and result.lines == 2  # the unseal and the apply
    assert sync["audit_entries"] == "2" and sync["audit_head"] == result.head

    r = deployed.once()  # nothing changed: nothing appended, and the start line names the head
    (start,) = events(r.stderr, "start")
    assert start["audit_entries"] == "2" and start["audit_head"] == result.head
    assert "audit_head" not in events(r.stderr, "sync")[0]

    head = sync["audit_head"]
    deployed.ok("audit", "verify", str(deployed.log), "--head", head)
    lines = deployed.log.read_bytes().splitlines(keepends=True)
    deployed.log.write_bytes(b"".join(lines[:-1]))  # the last entry cut off: still a whole chain
    assert verify(deployed.log).ok
    assert_clean_failure(deployed.run("audit", "verify", str(deployed.log), "--head", head), "is not in the log")


class Running:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.lines.get(timeout=60)
            if " event=listening " in line:
                self.address = fields(line)["address"]
                return
        raise AssertionError("the controller did not start listening")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def audit_metrics(self) -> tuple[float | None, list[str]]:
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=5) as r:
            body = r.read().decode()
        entries, hashes = None, []
        for fam in text_string_to_metric_families(body):
            for s in fam.samples:
                if s.name == "sealer_audit_entries":
                    entries = s.value
                elif s.name == "sealer_audit_head_info":
                    assert s.value == 1
                    hashes.append(s.labels["hash"])
        return entries, hashes

    def until(self, check: object, timeout: float = 60) -> tuple[float | None, list[str]]:
        assert callable(check)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.audit_metrics()
            if check(*got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"metrics never matched: {self.audit_metrics()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def test_metrics_export_the_head_as_one_series_that_follows_each_append(deployed: Deployed) -> None:
    deployed.once()
    first = verify(deployed.log).head
    ctl = Running(deployed.args("--interval", "0.2s", "--listen", "127.0.0.1:0"), deployed.env())
    try:
        assert ctl.address.startswith("127.0.0.1:")
        entries, hashes = ctl.audit_metrics()  # exported from the start, before any append
        assert entries == 2 and hashes == [first]

        deployed.seal("deploy/prod/api.yaml", SECRET.replace("name: db", "name: api"))
        deployed.commit("api")
        entries, hashes = ctl.until(lambda n, hs: n == 5)  # two unseals and an apply more
        result = verify(deployed.log)
        assert result.ok and result.lines == 5
        assert hashes == [result.head]  # one series: the old head's was removed
    finally:
        ctl.stop()
