"""Expiry, door by door: a value's expiry is sealed into its token (docs/format.md § 5), bound by
its context, and judged by `EnvRules` (max_lifetime, warn_before, on_expiry) at every door: set,
seal, reseal, unseal, exec, check, status, show, the controller and the Python API.

No clock is faked. A value that has already expired is sealed through the library's own door
(`sealer.seal_file(..., now=…)`, a seal time in the past), which is what `sealer seal` runs; the
CLI refuses an expiry before the seal time, so it cannot make one.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Repo

import sealer
from sealer import errors

DB = "deploy/prod/db.yaml"
DAY = 86400
ONE = SECRET.split("stringData:")[0] + 'stringData:\n  password: "pw-CANARY-one"\n'  # one value


def set_policy(repo: Repo, env: str, **policy: str) -> None:
    """Add `policy:` settings to an environment of the repository's .sealer.yaml."""
    text = repo.read(".sealer.yaml")
    lines = "".join(f"      {k}: {v}\n" for k, v in policy.items())
    head = f"  {env}:\n"
    assert head in text
    repo.write(".sealer.yaml", text.replace(head, f"{head}    policy:\n{lines}", 1))


def shown(repo: Repo, rel: str = DB) -> dict[str, dict[str, Any]]:
    """`sealer show --output json`: each value by its path."""
    data = json.loads(repo.ok("show", rel, "--output", "json").stdout)
    return {v["path"]: v for d in data[0]["documents"] for v in d["values"]}


def ts(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp())


def seal_in_the_past(repo: Repo, rel: str, text: str, *, ago: int, expires: str) -> None:
    """Seal `text` at `rel` as if sealed `ago` seconds ago, through the library's seal door."""
    repo.write(rel, text)
    cfg = sealer.load_config(repo.root)
    sealer.seal_file(cfg, repo.root / rel, expires=expires, now=int(time.time()) - ago)


def expired_secret(repo: Repo) -> None:
    """deploy/prod/db.yaml sealed two hours ago, expired one hour ago."""
    seal_in_the_past(repo, DB, SECRET, ago=2 * 3600, expires="1h")


def audit_lines(repo: Repo) -> list[dict[str, Any]]:
    path = repo.tmp / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def prod(tmp_path: Path) -> Repo:
    return Repo.create(
        tmp_path, "staging", "prod", keys=("staging", "prod"), env={"SEALER_AUDIT_LOG": str(tmp_path / "audit.log")}
    )


# --- sealing: seal, set, show ---------------------------------------------------------------------


def test_seal_expires_binds_one_expiry_to_every_value_sealed_in_that_run(prod: Repo) -> None:
    prod.write(DB, SECRET)
    r = prod.ok("seal", DB, "--expires", "30d", "--output", "json")
    report = json.loads(r.stdout)[0]
    values = shown(prod)
    assert set(values) == {"stringData.username", "stringData.password", 'data["tls.crt"]'}
    for v in values.values():
        assert ts(v["expires_at"]) - ts(v["sealed_at"]) == 30 * DAY and v["expired"] is False
    assert report["expires_at"] == values["stringData.password"]["expires_at"]
    # A value added later and sealed without --expires gets none; the others keep theirs, byte for byte.
    before = prod.read(DB)
    prod.write(DB, before.replace("\ndata:\n", "\n  apiKey: key-CANARY\ndata:\n"))
    prod.ok("seal", DB)
    after = shown(prod)
    assert after["stringData.apiKey"]["expires_at"] is None
    keep = ("kids", "sealed_at", "expires_at", "type")
    assert {p: [after[p][k] for k in keep] for p in values} == {p: [v[k] for k in keep] for p, v in values.items()}
    text = prod.ok("show", DB).stdout
    assert f"expires {values['stringData.password']['expires_at']} (in 29d)" in text


def test_set_gives_the_new_value_its_own_expiry(prod: Repo) -> None:
    prod.seal(DB, SECRET)
    prod.ok("set", DB, "stringData.password", "--expires", "2030-01-31T00:00:00Z", stdin="v2\n")
    values = shown(prod)
    assert values["stringData.password"]["expires_at"] == "2030-01-31T00:00:00Z"
    assert values["stringData.username"]["expires_at"] is None  # only the value set
    prod.ok("set", DB, "stringData.password", "--expires", "12h", stdin="v3\n")
    v = shown(prod)["stringData.password"]
    assert ts(v["expires_at"]) - ts(v["sealed_at"]) == 12 * 3600
    prod.ok("set", DB, "stringData.password", stdin="v4\n")  # a new value: a new expiry, here none
    assert shown(prod)["stringData.password"]["expires_at"] is None


@pytest.mark.parametrize(
    ("expires", "needle", "code"),
    [
        ("tomorrow", "is neither a duration like 90s, 12h or 30d nor an RFC 3339 time", 2),
        ("2027-01-31T00:00:00", "nor an RFC 3339 time", 2),  # no offset
        ("2020-01-31T00:00:00Z", "2020-01-31T00:00:00Z is not after the seal time", 2),
        ("0s", "is not after the seal time", 2),
    ],
)
def test_a_bad_or_past_expiry_is_refused_and_nothing_is_written(
    prod: Repo, expires: str, needle: str, code: int
) -> None:
    prod.write(DB, SECRET)
    before = prod.snapshot()
    prod.fail("seal", DB, "--expires", expires, expect=("--expires", needle, DB), code=code)
    prod.fail("set", DB, "stringData.password", "--expires", expires, expect=(needle,), code=code, stdin="x\n")
    assert prod.snapshot() == before


def test_max_lifetime_is_the_default_expiry_and_the_longest(prod: Repo) -> None:
    set_policy(prod, "prod", max_lifetime="7d")
    prod.seal(DB, SECRET)
    v = shown(prod)["stringData.password"]
    assert ts(v["expires_at"]) - ts(v["sealed_at"]) == 7 * DAY
    before = prod.snapshot()
    prod.fail(
        "set",
        DB,
        "stringData.password",
        "--expires",
        "8d",
        stdin="x\n",
        expect=("--expires 8d is further away than prod's max_lifetime (7d)",),
    )
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    prod.fail("set", DB, "stringData.password", "--expires", far, stdin="x\n", expect=("max_lifetime",))
    assert prod.snapshot() == before
    prod.ok("set", DB, "stringData.password", "--expires", "6d", stdin="x\n")
    v = shown(prod)["stringData.password"]
    assert ts(v["expires_at"]) - ts(v["sealed_at"]) == 6 * DAY
    # staging has no max_lifetime: no default expiry there.
    prod.seal("deploy/staging/db.yaml", SECRET)
    assert shown(prod, "deploy/staging/db.yaml")["stringData.password"]["expires_at"] is None


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ({"on_expiry": "ignore"}, "policy.on_expiry must be refuse or warn, not 'ignore'"),
        ({"warn_before": "soon"}, "policy.warn_before: 'soon' is not a duration"),
        ({"max_lifetime": "0s"}, "policy.max_lifetime must be longer than 0s"),
        ({"max_lifetime": "-3d"}, "policy.max_lifetime: '-3d' is not a duration"),
    ],
)
def test_expiry_policy_errors_are_one_line(prod: Repo, policy: dict[str, str], needle: str) -> None:
    set_policy(prod, "prod", **policy)
    prod.fail("status", expect=(".sealer.yaml", "environment 'prod'", needle))
    prod.fail("check", expect=(needle,))


# --- opening: unseal, exec ------------------------------------------------------------------------


def test_unseal_and_exec_refuse_an_expired_value_and_the_audit_log_says_so(prod: Repo) -> None:
    expired_secret(prod)
    key = str(prod.keys["prod"])
    line = prod.fail("unseal", DB, "-i", key, expect=(DB, 'data["tls.crt"]: expired at ', "; refused"))
    assert "sealer set deploy/prod/db.yaml" in line and "--expires" in line
    marker = prod.tmp / "ran"
    prod.fail("exec", DB, "-i", key, "--", "/bin/sh", "-c", f"touch {marker}", expect=("expired at ",))
    assert not marker.exists()
    fails = [e for e in audit_lines(prod) if e["event"] in ("unseal", "exec") and e["result"] == "fail"]
    assert len(fails) == 2 and all("expired at" in e["reason"] for e in fails)
    # The same file with fresh values opens: only the expired values were the problem.
    prod.seal(DB, SECRET)
    assert "pw-CANARY-7f3a9" in prod.ok("unseal", DB, "-i", key).stdout


def test_on_expiry_warn_opens_with_one_warning_line_and_an_audit_note(prod: Repo) -> None:
    set_policy(prod, "prod", on_expiry="warn")
    expired_secret(prod)
    key = str(prod.keys["prod"])
    r = prod.ok("unseal", DB, "-i", key)
    assert "pw-CANARY-7f3a9" in r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if "warning: expired at" in ln]
    assert len(warnings) == 3 and all("opened anyway (prod's on_expiry: warn)" in w for w in warnings)
    assert "CANARY" not in r.stderr
    (ok,) = [e for e in audit_lines(prod) if e["event"] == "unseal" and e["result"] == "ok"]
    assert "released 3 expired value(s) with a warning" in ok["reason"]
    r = prod.ok("exec", DB, "-i", key, "--", "/bin/sh", "-c", 'printf %s "$password"')
    assert r.stdout == "pw-CANARY-7f3a9" and "warning: expired at" in r.stderr


def test_an_expiring_value_still_opens(prod: Repo) -> None:
    prod.write(DB, SECRET)
    prod.ok("seal", DB, "--expires", "1h")
    r = prod.ok("unseal", DB, "-i", str(prod.keys["prod"]))
    assert "pw-CANARY-7f3a9" in r.stdout and "warning" not in r.stderr


# --- tampering ------------------------------------------------------------------------------------


def _blob(token: str) -> tuple[str, bytearray]:
    head, blob = token[:-1].rsplit(",", 1)
    return head, bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))


def _token(head: str, blob: bytes) -> str:
    return f"{head},{base64.urlsafe_b64encode(bytes(blob)).rstrip(b'=').decode()}]"


def _password_token(text: str) -> str:
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("password:"))
    return line.split(":", 1)[1].strip().strip('"')


def test_an_edited_moved_or_stripped_expiry_is_refused_as_altered(prod: Repo) -> None:
    """The expiry is in the header, and the header in the context (docs/format.md § 3): pushing an
    expired value's expiry back, removing it, or grafting another's onto a value fails to open, as
    an altered token, never as expired or opened."""
    key = str(prod.keys["prod"])
    seal_in_the_past(prod, DB, ONE, ago=7200, expires="1h")
    sealed = prod.read(DB)
    token = _password_token(sealed)
    head, blob = _blob(token)
    assert chr(blob[0]) == "S"  # a string with an expiry (§ 5)
    later = bytearray(blob)
    later[6:11] = (int(time.time()) + 365 * DAY).to_bytes(5, "big")
    stripped = bytearray(blob[:1].lower() + blob[1:6] + blob[11:])
    for edited in (later, stripped):
        prod.write(DB, sealed.replace(token, _token(head, edited)))
        line = prod.fail("unseal", DB, "-i", key, expect=("stringData.password", "does not open"))
        assert "altered" in line and "expired" not in line.split("(")[0]
        check = prod.run("check", "-i", key)
        assert check.returncode == 1 and "stringData.password" in check.stdout
    # The expiry of another value (a day ahead) grafted onto a value sealed without one, in the same place.
    other = "deploy/prod/other.yaml"
    prod.write(other, ONE.replace("name: db", "name: other"))
    prod.ok("seal", other, "--expires", "1d")
    _o_head, o_blob = _blob(_password_token(prod.read(other)))
    prod.seal(DB, ONE)
    fresh = prod.read(DB)
    plain_token = _password_token(fresh)
    p_head, p_blob = _blob(plain_token)
    assert chr(p_blob[0]) == "s"
    grafted = bytearray(p_blob[:1].upper() + p_blob[1:6] + o_blob[6:11] + p_blob[6:])
    prod.write(DB, fresh.replace(plain_token, _token(p_head, grafted)))
    prod.fail("unseal", DB, "-i", key, expect=("stringData.password", "does not open", "altered"))
    # The expired value's expiry grafted there comes before the seal time: not even a token.
    grafted[6:11] = blob[6:11]
    prod.write(DB, fresh.replace(plain_token, _token(p_head, grafted)))
    prod.fail("unseal", DB, "-i", key, expect=("malformed sealed token: it expires before it was sealed",))


# --- check, status --------------------------------------------------------------------------------


def test_check_fails_on_an_expired_value_and_warns_of_one_expiring(prod: Repo) -> None:
    expired_secret(prod)
    prod.write("deploy/prod/api.yaml", SECRET.replace("name: db", "name: api"))
    prod.ok("seal", "deploy/prod/api.yaml", "--expires", "3d")
    r = prod.run("check", "--output", "json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    expired = [p for p in data["problems"] if p["code"] == "expired"]
    assert {p["file"] for p in expired} == {DB} and len(expired) == 3
    assert "expired at" in expired[0]["message"]
    assert {(w["file"], w["code"]) for w in data["warnings"]} == {("deploy/prod/api.yaml", "expiring")}
    text = prod.run("check").stdout
    assert "deploy/prod/api.yaml: stringData.password: warning: expires at" in text
    # Fixed: fresh values. The expiring file alone warns but passes; a short warn_before silences it.
    prod.seal(DB, SECRET)
    r = prod.ok("check")
    assert "no problems, 3 warning(s)" in r.stderr
    set_policy(prod, "prod", warn_before="1d")
    r = prod.ok("check")
    assert "warning" not in r.stdout + r.stderr


def test_check_under_on_expiry_warn_reports_an_expired_value_as_a_warning(prod: Repo) -> None:
    set_policy(prod, "prod", on_expiry="warn")
    expired_secret(prod)
    r = prod.ok("check", "-i", str(prod.keys["prod"]))
    assert r.stdout.count("warning: expired at") == 3


def test_status_lists_expiring_and_expired_values_and_exits_1_on_an_expired_one(prod: Repo) -> None:
    prod.write(DB, SECRET)
    prod.ok("seal", DB, "--expires", "3d")
    r = prod.ok("status", "--env", "prod", "--output", "json")
    (st,) = json.loads(r.stdout)
    assert len(st["expiring_values"]) == 3 and st["expired_values"] == [] and st["breaches"] == []
    e = st["expiring_values"][0]
    assert e["file"] == DB and 2.9 < e["days_left"] <= 3 and e["expires"] == shown(prod)[e["path"]]["expires_at"]
    expired_secret(prod)
    r = prod.run("status", "--env", "prod", "--output", "json")
    assert r.returncode == 1
    (st,) = json.loads(r.stdout)
    assert len(st["expired_values"]) == 3 and st["expiring_values"] == []
    assert st["breaches"] == ["3 value(s) past their expiry (set new values)"]
    text = prod.run("status", "--env", "prod").stdout
    assert f"expired: {DB} stringData.password (at " in text and "POLICY BREACH" in text


# --- reseal ---------------------------------------------------------------------------------------


def test_reseal_keeps_each_expiry_and_an_expired_value_stays_expired(prod: Repo) -> None:
    prod.write(DB, SECRET)
    prod.ok("seal", DB, "--expires", "30d")
    seal_in_the_past(prod, "deploy/prod/old.yaml", SECRET.replace("name: db", "name: old"), ago=7200, expires="1h")
    before = {rel: shown(prod, rel) for rel in (DB, "deploy/prod/old.yaml")}
    old_key = prod.keys["prod"]
    new_key = prod.rotate("prod")
    prod.ok("reseal", "--env", "prod", "-i", str(old_key))
    for rel, values in before.items():
        after = shown(prod, rel)
        for path, v in values.items():
            assert after[path]["kids"] != v["kids"]  # re-sealed to the new key
            assert (after[path]["sealed_at"], after[path]["expires_at"]) == (v["sealed_at"], v["expires_at"])
    assert "pw-CANARY-7f3a9" in prod.ok("unseal", DB, "-i", str(new_key)).stdout
    prod.fail("unseal", "deploy/prod/old.yaml", "-i", str(new_key), expect=("expired at",))


# --- the Python API -------------------------------------------------------------------------------


def test_the_api_applies_the_same_rule_at_the_time_it_is_given(prod: Repo) -> None:
    prod.write(DB, SECRET)
    cfg = sealer.load_config(prod.root)
    t0 = int(time.time())
    _text, report = sealer.seal_file(cfg, prod.root / DB, expires="1d", now=t0)
    assert report.expires_at == t0 + DAY
    ids = sealer.find_identities([str(prod.keys["prod"])])
    files, _ = sealer.unseal([prod.root / DB], ids.for_kid, env="prod", now=t0 + DAY - 1)
    assert files[0].warnings == [] and "pw-CANARY-7f3a9" in files[0].text
    with pytest.raises(errors.Expired) as err:
        sealer.unseal([prod.root / DB], ids.for_kid, env="prod", now=t0 + DAY)
    assert err.value.file == str(prod.root / DB) and err.value.path is not None
    assert isinstance(err.value, errors.UnsealError)
    rules = sealer.Repository(cfg).rules("prod")
    sf = sealer.load((prod.root / DB).read_text(), DB)
    with pytest.raises(errors.Expired):
        sealer.unseal_file(sf, ids.for_kid, rules=rules, now=t0 + DAY)
    opened = sealer.unseal_file(sf, ids.for_kid, rules=sealer.UNCHECKED, now=t0 + DAY)
    assert len(opened.warnings) == 3
    (st,) = sealer.status(cfg, "prod", now=t0 + DAY - 3600)
    assert len(st.expiring_values) == 3 and not st.breaches
    (st,) = sealer.status(cfg, "prod", now=t0 + DAY)
    assert len(st.expired_values) == 3 and st.breaches
    assert sealer.check(cfg, now=t0 + DAY - 3600).ok
    assert {p.code for p in sealer.check(cfg, now=t0 + DAY).problems} == {"expired"}


# --- the controller -------------------------------------------------------------------------------


def _controller_cycle(
    repo: Repo, tmp: Path
) -> tuple[Any, dict[tuple[str, tuple[tuple[str, str], ...]], float], list[dict[str, Any]]]:
    """One cycle of the real Controller (real git, real keys, real Metrics); its result, the
    metrics as Prometheus text parses them, and the controller's audit log."""
    from prometheus_client.parser import text_string_to_metric_families

    from sealer._controller.http import Metrics
    from sealer._controller.log import EventLog
    from sealer._controller.sync import Controller, Settings
    from sealer._controller.targets import DirTarget

    out = tmp / "out"
    settings = Settings(
        repo=str(repo.root),
        branch="main",
        envs=("prod",),
        target=DirTarget(f"dir:{out}", out),
        state_dir=tmp / "state",
        identity_files=(str(repo.keys["prod"]),),
    )
    metrics = Metrics()
    ctl = Controller(settings, metrics=metrics, log=EventLog(open(os.devnull, "w")))  # noqa: SIM115
    try:
        result = ctl.cycle()
    finally:
        ctl.close()
    body = metrics.render()[0].decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
    }
    log = tmp / "state" / "audit.log"
    audit = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, samples, audit


def test_the_controller_refuses_an_expired_value_as_reason_expired(prod: Repo, tmp_path: Path) -> None:
    prod.git_init(commit=None)
    expired_secret(prod)
    prod.commit("an expired value")
    result, m, audit = _controller_cycle(prod, tmp_path)
    assert not result.ok and result.reason == "expired" and result.file == DB
    assert "expired at" in (result.message or "")
    assert m[("sealer_sync_errors_total", (("file", DB), ("reason", "expired")))] == 1
    assert not (tmp_path / "out").exists()  # nothing applied
    fails = [e for e in audit if e["result"] == "fail"]
    assert fails and fails[0]["file"] == DB and fails[0]["reason"].startswith("expired: ")


def test_the_controller_under_on_expiry_warn_applies_and_counts_it(prod: Repo, tmp_path: Path) -> None:
    set_policy(prod, "prod", on_expiry="warn", warn_before="7d")
    prod.git_init(commit=None)
    expired_secret(prod)
    prod.write("deploy/prod/api.yaml", SECRET.replace("name: db", "name: api"))
    prod.ok("seal", "deploy/prod/api.yaml", "--expires", "3d")
    prod.write("deploy/prod/far.yaml", SECRET.replace("name: db", "name: far"))
    prod.ok("seal", "deploy/prod/far.yaml", "--expires", "30d")
    prod.commit("expired, expiring and later values")
    result, m, audit = _controller_cycle(prod, tmp_path)
    assert result.ok and result.changed, result
    assert (tmp_path / "out" / "secret.shop.db.yaml").is_file()
    env = (("env", "prod"),)
    assert m[("sealer_values_expired", env)] == 3
    assert m[("sealer_values_expiring", env)] == 3  # api.yaml; far.yaml is beyond warn_before
    expected = ts(shown(prod, "deploy/prod/api.yaml")["stringData.password"]["expires_at"]) - time.time()
    assert abs(m[("sealer_seconds_to_next_expiry", env)] - expected) < 60
    (db,) = [e for e in audit if e["event"] == "unseal" and e["file"] == DB]
    assert db["result"] == "ok" and "applied 3 expired value(s) with a warning" in db["reason"]


def test_the_controller_has_no_next_expiry_series_without_expiries(prod: Repo, tmp_path: Path) -> None:
    prod.git_init(commit=None)
    prod.seal(DB, SECRET)
    prod.commit("no expiry")
    result, m, _audit = _controller_cycle(prod, tmp_path)
    assert result.ok
    assert not any(name.startswith(("sealer_values_expir", "sealer_seconds_to_next_expiry")) for name, _ in m)


# --- sealer krm: the render door ------------------------------------------------------------------


def test_krm_stream_refuses_an_expired_value_and_warns_under_on_expiry_warn(prod: Repo) -> None:
    """A render (Helm post-renderer, a pipe after kustomize build) is the unseal door too."""
    expired_secret(prod)
    key = str(prod.keys["prod"])
    sealed = prod.read(DB)
    r = prod.run("krm", "--stream", "-i", key, stdin=sealed, cwd=prod.root / "deploy/prod")
    assert r.returncode == 1 and "expired at" in r.stderr
    assert "CANARY" not in r.stdout + r.stderr and r.stdout == ""
    set_policy(prod, "prod", on_expiry="warn")
    r = prod.ok("krm", "--stream", "-i", key, stdin=sealed, cwd=prod.root / "deploy/prod")
    assert "pw-CANARY-7f3a9" in r.stdout and "warning: expired at" in r.stderr and "CANARY" not in r.stderr
    (ok,) = [e for e in audit_lines(prod) if e["event"] == "unseal" and e["result"] == "ok"]
    assert ok["reason"].startswith("krm; released ")


def test_export_is_audited_as_a_release_and_says_which_expired_values_it_hands_on(prod: Repo) -> None:
    """An export hands the plaintext to other keys: like unseal, its audit line comes first (a log that
    cannot be written exports nothing), and under on_expiry: warn the expired values are said."""
    import yaml

    set_policy(prod, "prod", on_expiry="warn")
    expired_secret(prod)
    key = str(prod.keys["prod"])
    age = yaml.safe_load(prod.read("keys/staging.yaml"))["keys"][0]["recipient"]
    r = prod.ok("export", "sops", DB, "--age", age, "-i", key)
    assert "sops:" in r.stdout and "CANARY" not in r.stdout + r.stderr
    assert "warning: expired at" in r.stderr
    (line,) = [e for e in audit_lines(prod) if e["event"] == "unseal"]
    assert line["result"] == "ok" and line["reason"].startswith("export sops; released ")


def test_check_catches_a_value_that_outlives_max_lifetime_however_it_was_sealed(prod: Repo) -> None:
    """max_lifetime is applied when sealing, but a file sealed without it (before the policy, or with
    a .sealer.yaml edited on a laptop) must not pass the gate."""
    prod.seal(DB, SECRET)  # no expiry
    prod.write("deploy/prod/long.yaml", ONE.replace("name: db", "name: long"))
    prod.ok("seal", "deploy/prod/long.yaml", "--expires", "3650d")
    prod.write("deploy/prod/short.yaml", ONE.replace("name: db", "name: short"))
    prod.ok("seal", "deploy/prod/short.yaml", "--expires", "7d")
    set_policy(prod, "prod", max_lifetime="30d")
    r = prod.run("check", "--output", "json")
    assert r.returncode == 1
    found = {(p["file"], p["code"]) for p in json.loads(r.stdout)["problems"]}
    assert (DB, "lifetime") in found and ("deploy/prod/long.yaml", "lifetime") in found
    assert not any(f == "deploy/prod/short.yaml" for f, _ in found)
    line = next(x for x in prod.run("check").stdout.splitlines() if "long.yaml" in x)
    assert "lives 3650d, longer than prod's max_lifetime (30d)" in line
