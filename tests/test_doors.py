"""One security finding, every door it concerns: each test drives the real CLI (and the real
controller with `--once` against a real git repository) and asserts what a user sees.

Doors: seal, set, unseal (FILE and DIR, every --format), exec, check, status, reseal, keys retire,
the controller and the library's `unseal_file` / `unseal_paths`. A fix applied to one door but not
another fails here. Attacker-made tokens are built from docs/format.md with raw HPKE, never with
sealer's own sealing code (which refuses what an attacker would write).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Repo, assert_clean_failure, require_tool
from cryptography.hazmat.primitives.asymmetric import x25519
from test_controller import GitOps, secret
from test_format_spec import SUITE, _bech32_encode, _hint, _lp, _path

HIDDEN = secret("hidden", password="hidden-CANARY-h1d")
OUTSIDE = secret("x", password="linked-CANARY-l1n")


@pytest.fixture(scope="module")
def doors_template(tmp_path_factory: pytest.TempPathFactory) -> GitOps:
    return GitOps(tmp_path_factory.mktemp("doors"))


@pytest.fixture
def ops(tmp_path: Path, doors_template: GitOps) -> GitOps:
    """A team's repository (prod and staging keys, deploy/prod/db.yaml sealed, one commit)."""
    return GitOps(tmp_path, doors_template)


def active_kid(ops: GitOps, env: str = "prod") -> str:
    rows = json.loads(ops.ok("keys", "list", "--env", env, "--output", "json").stdout)
    (kid,) = [r["kid"] for r in rows if r["state"] == "active"]
    return str(kid)


def kids_at(text: str, key: str) -> list[str]:
    """The kid list of the token on the line `  key: ENC[…]` (docs/format.md § 5 grammar)."""
    m = re.search(rf"^\s*{re.escape(key)}: \"?ENC\[sealer\.v1,([0-9a-f+]+),", text, re.M)
    assert m, (key, text)
    return m.group(1).split("+")


def last_error(r: object) -> str:
    stderr: str = r.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines, stderr
    return lines[-1]


# --- 1. hidden files and symbolic links ---------------------------------------------------------


def test_hidden_file_is_the_environments_for_retire_status_check_unseal_and_reseal(ops: GitOps) -> None:
    ops.seal("deploy/prod/.hidden.yaml", HIDDEN)
    old = active_kid(ops)
    old_key = str(ops.keys["prod"])
    new_key = ops.tmp / "keys" / "prod-2.txt"
    ops.ok("keys", "rotate", "prod", "--out", str(new_key))
    new = active_kid(ops)
    # Every other file moves off the old key, so .hidden.yaml is the only one still on it.
    ops.ok("reseal", "deploy/prod/db.yaml", "-i", old_key)
    assert kids_at((ops.root / "deploy/prod/db.yaml").read_text(), "password") == [new]
    registry = (ops.root / "keys/prod.yaml").read_text()

    r = ops.run("keys", "retire", "prod", old)
    assert r.returncode != 0, ("retire accepted while .hidden.yaml is on the key", r.stdout, r.stderr)
    assert "deploy/prod/.hidden.yaml" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert (ops.root / "keys/prod.yaml").read_text() == registry

    st = json.loads(ops.run("status", "--env", "prod", "--output", "json").stdout)[0]
    assert st["files"] == 2 and st["values"] == 4, st  # db.yaml: 3 values, .hidden.yaml: 1
    assert st["values_per_kid"].get(old) == 1, st
    assert st["files_on_retiring_keys"] == {old: ["deploy/prod/.hidden.yaml"]}, st

    r = ops.run("check")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"deploy/prod/.hidden.yaml: stringData.password: sealed to {old} (retiring)" in r.stdout, r.stdout

    r = ops.ok("unseal", "deploy/prod", "--env", "prod", "--format", "json", "-i", old_key, "-i", str(new_key))
    files = {item["file"]: item["content"] for item in json.loads(r.stdout)}
    assert set(files) == {"deploy/prod/.hidden.yaml", "deploy/prod/db.yaml"}, sorted(files)
    assert files["deploy/prod/.hidden.yaml"]["stringData"]["password"] == "hidden-CANARY-h1d"

    ops.ok("reseal", "--env", "prod", "-i", old_key)
    assert kids_at((ops.root / "deploy/prod/.hidden.yaml").read_text(), "password") == [new]
    ops.ok("check")
    ops.ok("keys", "retire", "prod", old)
    r = ops.ok("unseal", "deploy/prod/.hidden.yaml", "--format", "json", "-i", str(new_key))
    assert json.loads(r.stdout)[0]["content"]["stringData"]["password"] == "hidden-CANARY-h1d"


def test_hidden_file_is_rendered_by_the_controller(ops: GitOps) -> None:
    ops.seal("deploy/prod/.hidden.yaml", HIDDEN)
    ops.commit("a hidden file")
    r = ops.once()
    assert r.returncode == 0, r.stderr
    assert "files=2" in r.stderr, r.stderr
    rendered = ops.out / "secret.shop.hidden.yaml"
    assert rendered.is_file(), sorted(p.name for p in ops.out.iterdir())
    assert "hidden-CANARY-h1d" in rendered.read_text()


def test_symlink_under_an_environment_is_refused_by_check_unseal_reseal_and_the_controller(ops: GitOps) -> None:
    """A link to a file sealed for prod elsewhere in the repository: refused, never skipped or followed."""
    shared = ops.write("shared/x.yaml", OUTSIDE)
    ops.ok("seal", "shared/x.yaml", "--env", "prod")
    link = ops.root / "deploy/prod/link.yaml"
    link.symlink_to("../../shared/x.yaml")
    ops.commit("a link into deploy/prod")
    assert ops.git_repo.git.ls_tree("HEAD", "deploy/prod/link.yaml").startswith("120000")
    sealed = shared.read_bytes()

    r = ops.run("check")
    assert r.returncode != 0, ("check passed with a link under deploy/prod", r.stdout, r.stderr)
    assert "deploy/prod/link.yaml" in r.stdout + r.stderr and "symbolic link" in r.stdout + r.stderr, r

    r = ops.run("unseal", "deploy/prod", "--env", "prod", "-i", str(ops.keys["prod"]))
    assert_clean_failure(r, "deploy/prod/link.yaml", "symbolic link")

    r = ops.once()
    assert r.returncode == 1, r.stderr
    assert "reason=unsafe_path" in r.stderr and "file=deploy/prod/link.yaml" in r.stderr, r.stderr
    assert not ops.out.exists()

    ops.ok("keys", "rotate", "prod", "--out", str(ops.tmp / "keys" / "prod-2.txt"))
    db = (ops.root / "deploy/prod/db.yaml").read_bytes()
    r = ops.run("reseal", "--env", "prod", "-i", str(ops.keys["prod"]))
    assert r.returncode != 0, ("reseal went through a link under deploy/prod", r.stdout, r.stderr)
    assert "deploy/prod/link.yaml" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert link.is_symlink(), "reseal replaced the link with a regular file"
    assert shared.read_bytes() == sealed
    assert (ops.root / "deploy/prod/db.yaml").read_bytes() == db  # all or nothing


# --- 2. require_signature and a plaintext file ----------------------------------------------------


def test_plaintext_unsigned_file_is_refused_under_require_signature(ops: GitOps) -> None:
    config = ops.root / ".sealer.yaml"
    config.write_text(
        config.read_text().replace("  prod:\n", "  prod:\n    policy:\n      require_signature: true\n", 1)
    )
    ops.ok("signers", "generate", "alice", "--env", "prod", "--out", str(ops.tmp / "signers" / "alice.txt"))
    plain = secret("db", password="plain-CANARY-p1a")
    f = ops.write("deploy/prod/db.yaml", plain)  # never sealed, never signed
    key = str(ops.keys["prod"])

    for args in (("--env", "prod", "deploy/prod/db.yaml"), ("deploy/prod/db.yaml",)):
        r = ops.run("unseal", *args, "-i", key)
        assert_clean_failure(r, "deploy/prod/db.yaml", "not signed")
        assert r.stdout == ""

    marker = ops.tmp / "child-ran"
    child = f"import pathlib, os; pathlib.Path({str(marker)!r}).touch(); print(os.environ.get('password'))"
    r = ops.run("exec", "deploy/prod/db.yaml", "-i", key, "--", sys.executable, "-c", child)
    assert_clean_failure(r, "deploy/prod/db.yaml", "not signed")
    assert not marker.exists(), "the child ran with an unsigned plaintext file's values"

    r = ops.run("check")
    assert r.returncode == 1
    assert "deploy/prod/db.yaml: document 0 is not signed" in r.stdout, r.stdout
    assert "CANARY" not in r.stdout + r.stderr
    assert f.read_text() == plain


# --- 3. typed plaintext injection ----------------------------------------------------------------

APP = """\
# app settings (not a Secret: every scalar is sealed)
app:
  replicas: 2
  ratio: 0.5
  debug: false
  launch: 2024-06-01
  password: "cfg-CANARY-c0f"
"""


def _bech32_decode(hrp: str, text: str) -> bytes:
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    assert text.startswith(hrp + "1")
    words = [charset.index(ch) for ch in text[len(hrp) + 1 : -6]]
    acc = bits = 0
    out = bytearray()
    for w in words:
        acc = (acc << 5) | w
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    assert _bech32_encode(hrp, bytes(out)) == text  # checksum and padding hold
    return bytes(out)


def forge(recipient: str, vtype: str, plaintext: bytes, env: str, path: tuple[str | int, ...]) -> str:
    """A one-kid token for an `env`-scoped value, exactly as docs/format.md §§ 3 and 5 say, made
    with nothing but the public key: what anyone holding it can write."""
    pk = x25519.X25519PublicKey.from_public_bytes(_bech32_decode("age", recipient))
    kid = hashlib.sha256(recipient.encode()).hexdigest()[:16]
    pbytes = _path(*path)
    hints = _hint("env", env.encode(), 1) + _hint("scope", b"env", 1) + _hint("namespace", b"", 1)
    hints += _hint("name", b"", 1) + _hint("path", pbytes, 2)
    header = vtype.encode() + int(time.time()).to_bytes(5, "big") + hints
    info = b"sealer.v1\x00" + header + _lp(env.encode()) + _lp(b"env") + _lp(b"") + _lp(b"") + _lp(pbytes)
    info += _lp(kid.encode())
    blob = header + SUITE.encrypt(plaintext, pk, info=info)
    return f"ENC[sealer.v1,{kid},{base64.urlsafe_b64encode(blob).rstrip(b'=').decode()}]"


def plant(ops: GitOps, key: str, vtype: str, plaintext: bytes) -> Path:
    """deploy/prod/app.yaml sealed by sealer, then one value replaced by an attacker's token."""
    f = ops.write("deploy/prod/app.yaml", APP)
    ops.ok("seal", "deploy/prod/app.yaml")
    rows = json.loads(ops.ok("keys", "list", "--env", "prod", "--output", "json").stdout)
    token = forge(rows[0]["recipient"], vtype, plaintext, "prod", ("app", key))
    text, n = re.subn(rf"^  {key}: ENC\[[^\]]+\]$", f"  {key}: {token}", f.read_text(), flags=re.M)
    assert n == 1
    f.write_text(text)
    return f


# (value key, type, a canonical plaintext and what it reads as, the attacker's plaintext)
INJECTIONS = [
    ("replicas", "i", b"7", 7, b"1\n  motd: '"),
    ("debug", "t", b"true", True, b"true\nevil: x"),
    ("ratio", "f", b"2.5", 2.5, b"1e3\n- x"),
    ("launch", "d", b"2024-02-02", "2024-02-02", b"2024-01-01\nevil: {x: 1}"),
]


@pytest.mark.parametrize(
    ("key", "vtype", "canonical", "reads", "plaintext"), INJECTIONS, ids=[i[1] for i in INJECTIONS]
)
def test_typed_token_with_yaml_syntax_is_refused_by_every_door(
    ops: GitOps, key: str, vtype: str, canonical: bytes, reads: object, plaintext: bytes
) -> None:
    # Control: the forger is right (a canonical plaintext it seals opens), so the refusals below
    # are about the plaintext, not a badly made token.
    plant(ops, key, vtype, canonical)
    r = ops.ok("unseal", "deploy/prod/app.yaml", "--format", "json", "-i", str(ops.keys["prod"]))
    assert json.loads(r.stdout)[0]["content"]["app"][key] == reads

    plant(ops, key, vtype, plaintext)
    path = f"app.{key}"
    ident = str(ops.keys["prod"])
    for fmt in ("yaml", "k8s", "json", "dotenv"):
        r = ops.run("unseal", "deploy/prod/app.yaml", "--format", fmt, "-i", ident)
        assert_clean_failure(r, "deploy/prod/app.yaml", path)
        assert "evil" not in r.stdout and "motd" not in r.stdout and r.stdout == "", (fmt, r.stdout)

    marker = ops.tmp / "child-ran"
    child = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"
    r = ops.run("exec", "deploy/prod/app.yaml", "-i", ident, "--", sys.executable, "-c", child)
    assert_clean_failure(r, "deploy/prod/app.yaml", path)
    assert not marker.exists()

    ops.commit(f"a forged {vtype} token")
    r = ops.once()
    assert r.returncode == 1, r.stderr
    line = last_error(r)
    assert line.startswith("sealer: error: sync failed") and "deploy/prod/app.yaml" in line and path in line, line
    assert "CANARY" not in r.stderr + r.stdout
    assert not ops.out.exists()


def test_set_refuses_a_timestamp_that_is_yaml_syntax_and_accepts_an_int(ops: GitOps) -> None:
    f = ops.write("deploy/prod/app.yaml", APP)
    ops.ok("seal", "deploy/prod/app.yaml")
    before = f.read_bytes()
    r = ops.run("set", "deploy/prod/app.yaml", "app.launch", stdin="2024-01-01\nevil: {x: 1}\n")
    assert r.returncode != 0, ("set sealed a timestamp holding YAML syntax", r.stdout, r.stderr)
    assert "deploy/prod/app.yaml" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert f.read_bytes() == before

    ops.ok("set", "deploy/prod/app.yaml", "app.replicas", stdin="42\n")
    r = ops.ok("unseal", "deploy/prod/app.yaml", "--format", "json", "-i", str(ops.keys["prod"]))
    app = json.loads(r.stdout)[0]["content"]["app"]
    assert app["replicas"] == 42 and app["launch"] == "2024-06-01" and "evil" not in r.stdout, app


# --- 4. the library fails closed -------------------------------------------------------------------


def _identities(*files: Path) -> dict[str, object]:
    from sealer._identities import read_identity_file

    return {i.kid: i for f in files for i in read_identity_file(f)}


def test_unseal_file_requires_rules(ops: GitOps) -> None:
    from sealer._document import load
    from sealer._unseal import unseal_file

    f = ops.root / "deploy/prod/db.yaml"
    sf = load(f.read_text(), "deploy/prod/db.yaml")
    with pytest.raises(TypeError, match="rules"):
        unseal_file(sf, _identities(ops.keys["prod"]).get)  # type: ignore[call-arg, arg-type]


def test_unseal_file_applies_retired_keys_not_before_and_require_signature(ops: GitOps) -> None:
    from sealer._document import load
    from sealer._repository import Repository
    from sealer._unseal import unseal_file
    from sealer.errors import SealerError

    f = ops.root / "deploy/prod/db.yaml"
    ids = _identities(ops.keys["prod"])
    reg = ops.root / "keys/prod.yaml"
    registry = reg.read_text()

    def attempt() -> object:
        sf = load(f.read_text(), "deploy/prod/db.yaml")
        return unseal_file(sf, ids.get, rules=Repository.open(ops.root).rules("prod"))  # type: ignore[arg-type]

    assert attempt().values == 3  # type: ignore[attr-defined]  # the rules hold: it opens

    old = active_kid(ops)
    ops.ok("keys", "rotate", "prod", "--out", str(ops.tmp / "keys" / "prod-2.txt"))
    ops.ok("keys", "retire", "prod", old, "--force")  # the values are now sealed only to a retired key
    with pytest.raises(SealerError, match="retired"):
        attempt()

    reg.write_text(registry)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    ops.ok("keys", "revoke-before", "prod", later)
    with pytest.raises(SealerError, match="not_before"):
        attempt()

    reg.write_text(registry)
    config = ops.root / ".sealer.yaml"
    config.write_text(config.read_text().replace("  prod:\n", "  prod:\n    policy:\n      require_signature: true\n"))
    with pytest.raises(SealerError, match="not signed"):
        attempt()


def test_files_outside_any_repository_open_only_without_rules(ops: GitOps) -> None:
    from sealer._unseal import unseal_paths
    from sealer.errors import SealerError

    outside = ops.tmp / "outside.yaml"
    outside.write_text(ops.ok("seal", "-", "--env", "prod", stdin=OUTSIDE).stdout)
    ids = _identities(ops.keys["prod"])

    with pytest.raises(SealerError, match="not inside a sealer repository"):
        unseal_paths([outside], ids.get)  # type: ignore[arg-type]
    files, _notes = unseal_paths([outside], ids.get, checked=False)  # type: ignore[arg-type]
    assert files[0].values == 1

    r = ops.run("unseal", str(outside), "-i", str(ops.keys["prod"]))
    assert_clean_failure(r, str(outside), "--no-rules")
    r = ops.ok("unseal", str(outside), "--no-rules", "-i", str(ops.keys["prod"]))
    assert "linked-CANARY-l1n" in r.stdout


# --- 5. post-quantum and classic keys together ---------------------------------------------------


def test_classic_recovery_key_beside_a_post_quantum_key_needs_allow_mixed_kinds(tmp_path: Path) -> None:
    keygen = require_tool("age-keygen")
    r = Repo.create(tmp_path, "prod")
    r.ok("keys", "generate", "prod", "--kind", "mlkem768x25519", "--out", str(tmp_path / "pq.txt"))
    key = tmp_path / "recovery.txt"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run([keygen, "-y", str(key)], check=True, capture_output=True, text=True).stdout.strip()
    registry = (r.root / "keys/prod.yaml").read_text()

    out = r.run("keys", "add", "prod", recipient, "--recovery")
    assert out.returncode != 0, ("a classic recovery key was added beside a post-quantum key", out.stderr)
    assert_clean_failure(out, "prod", "post-quantum", "--allow-mixed-kinds", code=out.returncode)
    assert (r.root / "keys/prod.yaml").read_text() == registry

    r.ok("keys", "add", "prod", recipient, "--recovery", "--allow-mixed-kinds")
    rows = json.loads(r.ok("keys", "list", "--output", "json").stdout)
    roles = sorted((row.get("role") == "recovery", row["recipient"][:7]) for row in rows)
    assert roles == [(False, "age1pq1"), (True, recipient[:7])], rows
    r.write("deploy/prod/db.yaml", secret("db", password="mixed-CANARY-m1x"))
    r.ok("seal", "deploy/prod/db.yaml")
    opened = r.ok("unseal", "deploy/prod/db.yaml", "-i", str(key)).stdout  # the recovery key opens it
    assert "mixed-CANARY-m1x" in opened
