"""`sealer audit stats` and `sealer audit review` (issue 12, item 4): figures and flags from a real
audit log written by real CLI runs, and secret ages from real sealed files.

Past events are real CLI runs on a clock set back (`Clocked.run_at`, as a machine whose clock is
off): a rotation ten days ago, its retirement two days ago, values sealed 100, 40 and 3 days ago.
Expected figures come from what the test ran, from the log's own lines and from `sealer show`,
never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Repo, assert_clean_failure
from test_ci_gate import Clocked

DAY = 86400


def secret(name: str, **values: str) -> str:
    body = "".join(f'  {k}: "{v}"\n' for k, v in values.items())
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: shop\nstringData:\n{body}"


def log_lines(repo: Repo) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (repo.home / "audit.log").read_text().splitlines()]


def log_time(entry: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00")).timestamp()


def by_env(data: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {e["env"]: e for e in data["envs"]}


# --- stats ----------------------------------------------------------------------------------------


class History:
    """A repository with a history: the figures `stats` must find, as the test made them."""

    def __init__(self, tmp: Path) -> None:
        repo = Clocked.create(tmp, "staging", "prod", keys=("staging", "prod"))
        repo.configure("    policy:\n      max_secret_age: 30d\n")
        self.repo = repo
        old_prod, old_staging = repo.keys["prod"], repo.keys["staging"]
        self.old_kids = {env: self.active_kid(env) for env in ("prod", "staging")}
        repo.seal_at(-100 * DAY, "deploy/prod/old.yaml", secret("old", a="old-CANARY-a", b="old-CANARY-b"))
        repo.seal_at(-40 * DAY, "deploy/prod/mid.yaml", secret("mid", a="mid-CANARY"))
        new_prod = repo.keydir / "prod-2.txt"
        self.clocked(-10 * DAY, "keys", "rotate", "prod", "--out", str(new_prod))
        self.clocked(-9 * DAY, "reseal", "--env", "prod", "-i", str(old_prod))
        repo.seal_at(-3 * DAY, "deploy/prod/db.yaml", SECRET)
        self.clocked(-2 * DAY, "keys", "retire", "prod", self.old_kids["prod"])
        self.clocked(-1 * DAY, "keys", "rotate", "staging", "--out", str(repo.keydir / "staging-2.txt"))
        repo.seal("deploy/staging/db.yaml", secret("db", password="staging-CANARY"))
        # Unseals now: by actor, and one actor named without a host.
        key = str(new_prod)
        for _ in range(2):
            repo.ok("--actor", "alice@laptop", "unseal", "deploy/prod/db.yaml", "-i", key)
        repo.ok("--actor", "ci@runner", "unseal", "deploy/prod", "-i", key)  # three files: three lines
        repo.ok("--actor", "bob", "unseal", "deploy/prod/mid.yaml", "-i", key)
        repo.ok("--actor", "alice@laptop", "unseal", "deploy/staging/db.yaml", "-i", str(repo.keydir / "staging-2.txt"))
        # Failed attempts: two without the right key (one of them exec), two of bad input, one outside
        # the repository (no environment).
        repo.run("unseal", "deploy/prod/db.yaml", "-i", str(old_staging))
        repo.run("exec", "deploy/prod/db.yaml", "-i", str(old_staging), "--", sys.executable, "-c", "print(1)")
        repo.run("unseal", "deploy/prod/db.yaml", "--env", "staging", "-i", key)
        repo.run("unseal", "deploy/prod/nope.yaml", "-i", key)
        outside = tmp / "outside.yaml"
        outside.write_text(secret("x", a="y"))
        repo.run("unseal", str(outside), "-i", key)

    def clocked(self, offset: int, *args: str) -> None:
        r = self.repo.run_at(offset, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)

    def active_kid(self, env: str) -> str:
        keys = json.loads(self.repo.ok("keys", "list", "--env", env, "--output", "json").stdout)
        return str(next(k["kid"] for k in keys if k["state"] == "active"))

    def stats(self, *args: str) -> dict[str, Any]:
        r = self.repo.run("audit", "stats", "--output", "json", *args)
        assert r.returncode == 0, (r.stdout, r.stderr)
        return dict(json.loads(r.stdout))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return History(tmp_path_factory.mktemp("history"))


def test_rotations_and_the_time_from_rotate_to_retire(history: History) -> None:
    lines = log_lines(history.repo)
    rotate = next(e for e in lines if e["event"] == "rotate" and e["env"] == "prod")
    retire = next(e for e in lines if e["event"] == "retire" and e["env"] == "prod")
    assert retire["kids"] == [history.old_kids["prod"]] and history.old_kids["prod"] in rotate["kids"]
    took = log_time(retire) - log_time(rotate)
    assert 8 * DAY - 60 < took < 8 * DAY + 60  # the clocks the test ran them on

    envs = by_env(history.stats())
    prod = envs["prod"]["keys"]
    assert (prod["rotations"], prod["retired"], prod["retiring"]) == (1, 1, [])
    assert prod["rotate_to_retire"]["count"] == 1
    assert prod["rotate_to_retire"]["mean_seconds"] == pytest.approx(took, abs=0.01)
    assert prod["rotate_to_retire"]["max_seconds"] == pytest.approx(took, abs=0.01)
    staging = envs["staging"]["keys"]
    assert (staging["rotations"], staging["retired"], staging["rotate_to_retire"]["count"]) == (1, 0, 0)
    [pending] = staging["retiring"]  # rotated out a day ago, not retired yet
    assert pending["kid"] == history.old_kids["staging"] and DAY - 120 < pending["seconds"] < DAY + 600


def test_the_window_counts_what_happened_in_it(history: History) -> None:
    """--since 5d: the rotation (ten days ago) is outside, its retirement (two days ago) inside,
    and still measured from that rotation."""
    envs = by_env(history.stats("--since", "5d"))
    prod = envs["prod"]["keys"]
    assert (prod["rotations"], prod["retired"], prod["rotate_to_retire"]["count"]) == (0, 1, 1)
    assert prod["rotate_to_retire"]["max_seconds"] > 8 * DAY - 60
    assert envs["staging"]["keys"]["rotations"] == 1
    assert envs["prod"]["unseals"]["total"] == 6  # all today
    recent = by_env(history.stats("--since", "1h"))
    assert recent["prod"]["keys"]["retired"] == 0 and recent["staging"]["keys"]["rotations"] == 0


def test_unseals_by_actor_and_host_and_failures_by_reason(history: History) -> None:
    envs = by_env(history.stats())
    unseals = envs["prod"]["unseals"]
    assert unseals["total"] == 6
    assert unseals["by_actor"] == {"ci@runner": 3, "alice@laptop": 2, "bob": 1}
    assert unseals["by_host"] == {"runner": 3, "laptop": 2, "(unknown)": 1}
    assert envs["staging"]["unseals"] == {"total": 1, "by_actor": {"alice@laptop": 1}, "by_host": {"laptop": 1}}
    failed = envs["prod"]["failed_unseals"]
    assert failed == {"total": 4, "by_reason": {"identity": 2, "input": 2}}
    assert envs[None]["failed_unseals"] == {"total": 1, "by_reason": {"input": 1}}  # outside any repository
    # Every failed line names its reason word first, and the environment of the file.
    fails = [e for e in log_lines(history.repo) if e["result"] == "fail"]
    assert [str(e["reason"]).split(": ")[0] for e in fails] == ["identity", "identity", "input", "input", "input"]
    assert [e["env"] for e in fails] == ["prod", "prod", "prod", "prod", None]


def test_secret_ages_come_from_the_sealed_files(history: History) -> None:
    data = history.stats()
    now = dt.datetime.fromisoformat(data["now"].replace("Z", "+00:00")).timestamp()
    files = ["deploy/prod/old.yaml", "deploy/prod/mid.yaml", "deploy/prod/db.yaml"]
    shown = json.loads(history.repo.ok("show", *files, "--output", "json").stdout)
    sealed = [
        dt.datetime.fromisoformat(v["sealed_at"].replace("Z", "+00:00")).timestamp()
        for f in shown
        for d in f["documents"]
        for v in d["values"]
    ]
    ages = sorted(now - t for t in sealed)
    assert len(ages) == 6  # 2 + 1 + 3 values
    got = by_env(data)["prod"]["secret_ages"]
    assert got["values"] == 6
    assert got["buckets"] == {"<7d": 3, "7d-30d": 0, "30d-90d": 1, "90d-365d": 2, ">=365d": 0}
    assert got["min_seconds"] == pytest.approx(ages[0], abs=1.5)
    assert got["median_seconds"] == pytest.approx(ages[2], abs=1.5)  # nearest rank: the 3rd of 6
    assert got["p90_seconds"] == pytest.approx(ages[5], abs=1.5)
    assert got["max_seconds"] == pytest.approx(ages[5], abs=1.5) and got["max_seconds"] > 100 * DAY - 120
    assert got["mean_seconds"] == pytest.approx(sum(ages) / 6, abs=1.5)
    assert (got["max_secret_age_seconds"], got["over_max_secret_age"]) == (30 * DAY, 3)
    assert by_env(data)["staging"]["secret_ages"]["values"] == 1


def test_stats_as_text_and_no_value_anywhere(history: History) -> None:
    r = history.repo.ok("audit", "stats", "--env", "prod")
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(history.repo.home / "audit.log") + ": verified (")
    assert "anchored entry" in lines[0]
    assert lines[2] == "prod:" and "staging:" not in lines
    assert lines[3].startswith("  keys: 1 rotation(s), 1 retired; rotate to retire: mean 8d")
    assert lines[4] == (
        "  unseals: 6; by actor: ci@runner 3, alice@laptop 2, bob 1; by host: runner 3, laptop 2, (unknown) 1"
    )
    assert lines[5] == "  failed unseals: 4; by reason: identity 2, input 2"
    assert lines[6].startswith("  secret ages: 6 value(s): min 3d") and "3 over max_secret_age (30d)" in lines[6]
    assert lines[7] == "    <7d 3, 7d-30d 0, 30d-90d 1, 90d-365d 2, >=365d 0"
    everything = r.stdout + history.repo.run("audit", "stats", "--output", "json").stdout
    assert "CANARY" not in everything and "CANARY" not in (history.repo.home / "audit.log").read_text()


def test_stats_of_a_log_that_does_not_verify_say_so(history: History, tmp_path: Path) -> None:
    copy = tmp_path / "edited.log"
    copy.write_text((history.repo.home / "audit.log").read_text().replace('"actor":"bob"', '"actor":"eve"'))
    r = history.repo.run("audit", "stats", str(copy), "--output", "json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["verified"] is False and "its hash does not match its content" in data["verification"]["error"]
    assert "does not verify" in r.stderr and "the figures may be forged" in r.stderr
    text = history.repo.run("audit", "stats", str(copy))
    assert text.returncode == 1 and ": NOT VERIFIED, the figures below may be forged: line " in text.stdout


def test_stats_outside_a_repository_and_bad_windows(history: History, tmp_path: Path) -> None:
    log = str(history.repo.home / "audit.log")
    r = history.repo.run("audit", "stats", log, "--output", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert all(e["secret_ages"] is None for e in data["envs"]) and "secret ages are not reported" in r.stderr
    assert by_env(data)["prod"]["unseals"]["total"] == 6
    for bad in ("30 days", "yesterday", "-5d"):
        r = history.repo.run("audit", "stats", "--since", bad)
        assert_clean_failure(r, "is neither a duration nor a time", code=2)
    assert_clean_failure(history.repo.run("audit", "stats", str(tmp_path / "none.log")), "no such audit log")


# --- review ---------------------------------------------------------------------------------------


class Reviewed(Clocked):
    """A repository whose prod was unsealed before the window by alice@laptop."""

    def setup(self) -> None:
        self.seal("deploy/prod/db.yaml", SECRET)
        self.seal("deploy/staging/db.yaml", secret("db", password="staging-CANARY"))
        self.unseal("alice@laptop")
        self.boundary = mark()

    def unseal(self, actor: str, rel: str = "deploy/prod/db.yaml", env: str = "prod") -> None:
        self.ok("--actor", actor, "unseal", rel, "-i", str(self.keys[env]))

    def review(self, code: int, *args: str) -> dict[str, Any]:
        r = self.run("audit", "review", "--since", self.boundary, "--output", "json", *args)
        assert r.returncode == code, (r.stdout, r.stderr)
        return dict(json.loads(r.stdout))

    def configure_review(self, review: str) -> None:
        self.configure()
        with (self.root / ".sealer.yaml").open("a") as f:
            f.write(f"audit:\n  review:\n{review}")


def mark() -> str:
    """Now, as a --since TIME; entries written after it are in the window."""
    now = dt.datetime.now(dt.UTC)
    time.sleep(0.01)  # the log's times have milliseconds
    return now.isoformat()


@pytest.fixture
def reviewed(tmp_path: Path) -> Reviewed:
    r = Reviewed.create(tmp_path, "staging", "prod", keys=("staging", "prod"))
    r.setup()
    return r


def kinds(data: dict[str, Any]) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(f["kind"], f["env"], f["actor"], f["host"]) for f in data["flags"]]


def test_review_passes_what_was_seen_before(reviewed: Reviewed) -> None:
    reviewed.unseal("alice@laptop")
    data = reviewed.review(0)
    assert data["ok"] is True and data["flags"] == [] and data["verified"] is True
    r = reviewed.run("audit", "review", "--since", reviewed.boundary)
    assert r.returncode == 0 and r.stdout.strip().endswith(": 0 flag(s) since " + reviewed.boundary[:19] + "Z")


def test_review_flags_a_new_actor_and_a_new_host(reviewed: Reviewed) -> None:
    reviewed.unseal("alice@laptop")
    reviewed.unseal("carol@laptop")  # a new actor on a known host
    reviewed.unseal("eve@kiosk")
    reviewed.unseal("eve@kiosk")
    reviewed.unseal("alice@laptop", "deploy/staging/db.yaml", "staging")  # staging has no history: not judged
    data = reviewed.review(1)
    assert kinds(data) == [
        ("new-actor", "prod", "carol@laptop", None),
        ("new-actor", "prod", "eve@kiosk", None),
        ("new-host", "prod", None, "kiosk"),
    ]
    eve = data["flags"][1]
    assert eve["count"] == 2 and "had not unsealed prod before" in eve["message"]
    seqs = [e["seq"] for e in log_lines(reviewed) if e["actor"] == "eve@kiosk"]
    assert eve["seq"] == seqs[0]
    assert data["unjudged"] == ["staging"]
    text = reviewed.run("audit", "review", "--since", reviewed.boundary)
    assert text.returncode == 1
    assert "prod: new-host: 2 file(s) unsealed from kiosk, which had not unsealed prod before" in text.stdout
    assert "new actors and hosts there are not judged" in text.stdout
    # The whole log as the window: nothing came before it, so no environment is judged.
    whole = json.loads(reviewed.run("audit", "review", "--since", "30d", "--output", "json").stdout)
    assert whole["flags"] == [] and whole["unjudged"] == ["prod", "staging"]


def test_review_flags_unseals_outside_the_configured_hours(reviewed: Reviewed) -> None:
    zone = "Asia/Tokyo"
    hour = dt.datetime.now(zoneinfo.ZoneInfo(zone)).hour
    reviewed.configure_review(f'    hours: "{(hour + 2) % 24:02d}:00-{(hour + 4) % 24:02d}:00"\n    timezone: {zone}\n')
    reviewed.unseal("alice@laptop")
    reviewed.unseal("alice@laptop")
    data = reviewed.review(1)
    assert kinds(data) == [("outside-hours", "prod", "alice@laptop", None)]
    assert data["flags"][0]["count"] == 2 and data["timezone"] == zone
    assert f"outside {(hour + 2) % 24:02d}:00-{(hour + 4) % 24:02d}:00 {zone}" in data["flags"][0]["message"]
    reviewed.configure_review(f'    hours: "{hour:02d}:00-{(hour + 2) % 24:02d}:00"\n    timezone: {zone}\n')
    assert reviewed.review(0)["flags"] == []


def test_review_flags_a_burst_of_failures(reviewed: Reviewed) -> None:
    reviewed.configure_review("    burst:\n      failures: 3\n      within: 10m\n")
    wrong = str(reviewed.keys["staging"])
    for _ in range(2):
        reviewed.run("unseal", "deploy/prod/db.yaml", "-i", wrong)
    assert reviewed.review(0)["flags"] == []  # two: not a burst
    reviewed.run("exec", "deploy/prod/db.yaml", "-i", wrong, "--", sys.executable, "-c", "print(1)")
    reviewed.run("unseal", "deploy/prod/nope.yaml", "-i", str(reviewed.keys["prod"]))
    data = reviewed.review(1)
    assert kinds(data) == [("failure-burst", "prod", None, None)]
    burst = data["flags"][0]
    assert burst["count"] == 4 and "(identity 3, input 1)" in burst["message"]
    assert data["burst"] == {"failures": 3, "within_seconds": 600}
    assert reviewed.review(0, "--env", "staging")["flags"] == []


def test_review_flags_a_log_that_does_not_verify(reviewed: Reviewed, tmp_path: Path) -> None:
    copy = tmp_path / "cut.log"
    lines = (reviewed.home / "audit.log").read_text().splitlines(keepends=True)
    copy.write_text("".join(lines[:1] + lines[2:]))  # a line removed
    r = reviewed.run("audit", "review", str(copy), "--since", "1d")
    assert r.returncode == 1 and "-: unverified: the log does not verify: line 2:" in r.stdout


@pytest.mark.parametrize(
    ("review", "needle"),
    [
        ('    hours: "7-19"\n', "audit.review.hours: '7-19' is not a span of hours"),
        ('    hours: "09:00-09:00"\n', "is not a span of hours"),
        ("    timezone: Mars/Olympus\n", "audit.review.timezone: 'Mars/Olympus' is not a time zone"),
        ("    burst:\n      failures: 0\n", "audit.review.burst.failures: 0 is not a count of 1 or more"),
        ("    burst:\n      within: 10 minutes\n", "audit.review.burst.within: '10 minutes' is not a duration"),
        ("    burst: 5\n", "audit.review.burst must be a mapping"),
        ("    days: [mon]\n", "audit.review: unknown setting 'days'"),
    ],
)
def test_review_settings_are_checked(reviewed: Reviewed, review: str, needle: str) -> None:
    reviewed.configure_review(review)
    line = assert_clean_failure(reviewed.run("audit", "review"), needle, ".sealer.yaml")
    assert "Traceback" not in line


def test_failure_lines_written_before_reasons_were_tagged_still_count(tmp_path: Path) -> None:
    """A log of the older shape (a CLI failure line holding the message alone) verifies as it did,
    and its failures count as `unclassified`, not under a reason they do not name."""
    from sealer._audit import AuditLog, Event

    log = tmp_path / "old.log"
    writer = AuditLog(log, actor="ops@bastion")
    writer.append(Event("unseal", env="prod", file="deploy/prod/db.yaml", kids=["928922e6866de97f"]))
    old_style = "deploy/prod/db.yaml: no such file"
    writer.append(Event("unseal", result="fail", file="deploy/prod/db.yaml", reason=old_style))
    writer.append(Event("unseal", result="fail", env="prod", reason="identity: no key for it"))
    repo = Repo(tmp_path)
    r = repo.run("audit", "stats", str(log), "--output", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["verified"] is True
    envs = by_env(data)
    assert envs["prod"]["unseals"]["by_host"] == {"bastion": 1}
    assert envs["prod"]["failed_unseals"]["by_reason"] == {"identity": 1}
    assert envs[None]["failed_unseals"]["by_reason"] == {"unclassified": 1}
