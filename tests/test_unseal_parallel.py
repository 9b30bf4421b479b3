"""`sealer unseal DIR` over many files shares the files among worker processes (one per core). The
result must be exactly what opening the files one by one gives, in the same order, and a failure in
any one file must still fail the whole run with that file's error and no plaintext out."""

from __future__ import annotations

import base64

import pytest
from conftest import Repo

import sealer
from sealer._unseal import PARALLEL_FILES

N = PARALLEL_FILES + 12


def _secret(i: int) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i:03d}\n  namespace: app\n"
        f"stringData:\n  user: u{i}\n  password: pw-CANARY-{i:03d}\n"
    )


@pytest.fixture
def many(repo: Repo) -> Repo:
    for i in range(N):
        repo.write(f"deploy/prod/s{i:03d}.yaml", _secret(i))
    repo.ok("seal", *(f"deploy/prod/s{i:03d}.yaml" for i in range(N)))
    return repo


def test_many_files_unseal_as_one_by_one(many: Repo) -> None:
    key = str(many.keys["prod"])
    whole = many.ok("unseal", "deploy/prod", "--format", "k8s", "-i", key).stdout
    one_by_one = "".join(
        many.ok("unseal", f"deploy/prod/s{i:03d}.yaml", "--format", "k8s", "-i", key).stdout for i in range(N)
    )
    assert whole == one_by_one
    assert all(f"pw-CANARY-{i:03d}" in whole for i in range(N))


def test_one_bad_file_among_many_fails_the_run(many: Repo) -> None:
    bad = "deploy/prod/s031.yaml"
    text = many.read(bad)
    token = text.split("password: ")[1].split("\n")[0]
    body = token.split(",")[-1].rstrip("]")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1  # flip one bit of the AEAD tag
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    many.write(bad, text.replace(token, token.replace(body, flipped)))
    r = many.run("unseal", "deploy/prod", "--format", "k8s", "-i", str(many.keys["prod"]))
    assert r.returncode == 1
    assert bad in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == "" and "CANARY" not in r.stderr


def test_the_api_gives_the_same_files_in_order(many: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(many.root)
    ids = sealer.find_identities([str(many.keys["prod"])])
    files, _ = sealer.unseal([many.root / "deploy/prod"], ids.for_kid)
    assert [f.source.rsplit("/", 1)[-1] for f in files] == [f"s{i:03d}.yaml" for i in range(N)]
    assert [f.docs[0].content["stringData"]["password"] for f in files] == [f"pw-CANARY-{i:03d}" for i in range(N)]
