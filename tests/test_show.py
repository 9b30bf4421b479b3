"""`sealer show FILE…`: per value its path, type, key ids, seal time and age, and per document its
environment, scope and signer, with no key at all (issue 14, item 13). Real CLI, and the library."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import SECRET, Repo, assert_clean_failure

import sealer
from sealer._format import TOKEN_RE

VALUES = "db:\n  host: db.internal\n  port: 5432\nfeature: true\n"


@pytest.fixture
def prod(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path, "staging", "prod", keys=("staging", "prod"))


def kid_of(prod: Repo, env: str = "prod") -> str:
    rows = json.loads(prod.ok("keys", "list", "--output", "json").stdout)
    (row,) = [r for r in rows if r["env"] == env and r.get("role") != "recovery"]
    return str(row["kid"])


def test_show_lists_every_value_with_type_kids_and_seal_time_without_a_key(prod: Repo) -> None:
    before = int(time.time())
    prod.seal("deploy/prod/db.yaml", SECRET)
    prod.seal("deploy/prod/values.yaml", VALUES)
    kid = kid_of(prod)
    # No identity anywhere: the harness's config dir holds none and no SEALER_IDENTITY* is set.
    r = prod.ok("show", "deploy/prod/db.yaml", "deploy/prod/values.yaml", "--output", "json")
    files = json.loads(r.stdout)
    assert [f["file"] for f in files] == ["deploy/prod/db.yaml", "deploy/prod/values.yaml"]
    (doc,) = files[0]["documents"]
    assert (doc["kind"], doc["namespace"], doc["name"]) == ("Secret", "shop", "db")
    assert (doc["env"], doc["scope"], doc["signer"]) == ("prod", "strict", None)
    values = doc["values"]
    assert [(v["path"], v["type"], v["kids"]) for v in values] == [
        ("stringData.username", "str", [kid]),
        ("stringData.password", "str", [kid]),
        ('data["tls.crt"]', "bytes", [kid]),
    ]
    text = prod.read("deploy/prod/db.yaml").splitlines()
    for v in values:
        assert TOKEN_RE.search(text[v["line"] - 1]), v  # the line the token is on
        assert v["problem"] is None and 0 <= v["age_seconds"] < 600
        sealed = time.mktime(time.strptime(v["sealed_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert before - 1 <= sealed <= time.time() + 1, v
    (vals,) = files[1]["documents"]
    assert vals["scope"] == "env" and vals["kind"] is None
    assert [(v["path"], v["type"]) for v in vals["values"]] == [
        ("db.host", "str"),
        ("db.port", "int"),
        ("feature", "bool"),
    ]
    assert "CANARY" not in r.stdout + r.stderr and "5432" not in r.stdout and "db.internal" not in r.stdout

    out = prod.ok("show", "deploy/prod/db.yaml").stdout.splitlines()
    assert out[0] == "deploy/prod/db.yaml: document 0 (Secret shop/db): env prod, scope strict, not signed"
    assert out[2].split()[:3] == ["stringData.password", "str", kid]
    assert "sealed " in out[2] and out[2].endswith("s ago)")


def test_show_names_the_signer_and_several_kids(prod: Repo, tmp_path: Path) -> None:
    from sealer._keys import generate_identity

    rec = generate_identity()
    prod.ok("keys", "add", "prod", rec.recipient.encode(), "--recovery")
    alice = tmp_path / "alice.txt"
    prod.ok("signers", "generate", "alice", "--env", "prod", "--out", str(alice))
    prod.write("deploy/prod/db.yaml", SECRET)
    prod.ok("seal", "deploy/prod/db.yaml", "--sign-with", str(alice))
    (f,) = json.loads(prod.ok("show", "deploy/prod/db.yaml", "--output", "json").stdout)
    (doc,) = f["documents"]
    signer_key = json.loads(prod.ok("signers", "list", "--output", "json").stdout)[0]["kid"]
    assert doc["signer"] == "alice" and doc["signer_key"] == signer_key
    assert all(v["kids"] == [kid_of(prod), rec.kid] for v in doc["values"])
    text = prod.ok("show", "deploy/prod/db.yaml").stdout
    assert f"signed by alice (key {signer_key})" in text and f"{kid_of(prod)}+{rec.kid}" in text


def test_show_reports_a_moved_or_malformed_value_and_goes_on(prod: Repo) -> None:
    text = prod.seal("deploy/prod/db.yaml", SECRET)
    first = TOKEN_RE.search(text)
    assert first
    kids = first.group(2)
    broken = text.replace(first.group(0), f"ENC[sealer.v1,{kids},AAAA]", 1)  # a header cut short
    moved = broken.replace("name: db", "name: other")
    prod.write("deploy/prod/other.yaml", moved)
    (f,) = json.loads(prod.ok("show", "deploy/prod/other.yaml", "--output", "json").stdout)
    values = f["documents"][0]["values"]
    assert values[0]["type"] is None and "malformed" in values[0]["problem"]
    assert all("different name" in v["problem"] for v in values[1:]), values
    assert prod.ok("show", "deploy/prod/other.yaml").stdout.count("different name") == 2


def test_show_of_plaintext_and_of_what_is_not_a_file(prod: Repo) -> None:
    prod.write("deploy/prod/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")
    out = prod.ok("show", "deploy/prod/deployment.yaml").stdout
    assert out.strip() == "deploy/prod/deployment.yaml: document 0 (Deployment web): not sealed"
    assert_clean_failure(prod.run("show", "deploy/prod/missing.yaml"), "deploy/prod/missing.yaml", "no such file")
    prod.write("deploy/prod/bad.yaml", "a: [\n")
    assert_clean_failure(prod.run("show", "deploy/prod/bad.yaml"), "deploy/prod/bad.yaml", "malformed YAML")
    assert "show" in prod.ok("--help").stdout


def test_show_is_public_api(prod: Repo) -> None:
    assert {"show", "show_file", "show_text", "Shown"} <= set(sealer.__all__)
    text = prod.seal("deploy/prod/db.yaml", SECRET)
    shown = sealer.show_text(text, "db.yaml")
    assert isinstance(shown, sealer.Shown) and shown.values == 3
    assert sealer.show_file(prod.root / "deploy/prod/db.yaml").to_dict()["documents"] == shown.to_dict()["documents"]
    (one,) = sealer.show([prod.root / "deploy/prod/db.yaml"])
    assert one.documents[0].env == "prod"
