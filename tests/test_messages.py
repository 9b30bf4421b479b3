"""Messages a new user found confusing (issue 14, item 13), through the real CLI.

Each test pins one message: it says what happened, to which file or key, and what to do, on one
line; each failed on the behaviour before its fix (noted where a part was already right)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure

from sealer._format import TOKEN_RE

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"


def kid_of_file(path: Path) -> str:
    from sealer._keys import parse_identity

    line = next(ln for ln in path.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-"))
    return parse_identity(line).kid


def recovery_key(tmp: Path) -> tuple[Path, str, str]:
    """A fresh age identity file (0600), its recipient and kid."""
    from sealer._keys import generate_identity

    identity = generate_identity()
    path = tmp / "recovery.txt"
    path.write_text(identity.encode() + "\n")
    path.chmod(0o600)
    return path, identity.recipient.encode(), identity.kid


def tokens(text: str) -> list[str]:
    return [m.group(0) for m in TOKEN_RE.finditer(text)]


@pytest.fixture
def prod(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path, "staging", "prod", keys=("staging", "prod"))


# --- a retired key's identity ----------------------------------------------------------------------


def test_identity_for_a_retired_key_is_said_to_be_retired(prod: Repo, tmp_path: Path) -> None:
    _rec_path, rec, rec_kid = recovery_key(tmp_path)
    prod.ok("keys", "add", "prod", rec, "--recovery")
    prod.seal("deploy/prod/db.yaml", SECRET)  # every value: prod's key + the recovery key
    old_key = prod.keys["prod"]
    old_kid = kid_of_file(old_key)
    prod.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod-2.txt"))
    prod.ok("keys", "retire", "prod", old_kid, "--force")

    line = prod.fail("unseal", "deploy/prod/db.yaml", "-i", str(old_key))
    # Before: "sealed to key K and R, and none of the identities given is for it".
    assert "none of the identities" not in line
    for needle in ("deploy/prod/db.yaml", old_kid, "retired in prod", rec_kid, "--identity"):
        assert needle in line, (needle, line)


def test_value_only_on_a_retired_key_names_each_keys_state(prod: Repo, tmp_path: Path) -> None:
    prod.seal("deploy/prod/db.yaml", SECRET)
    old_key = prod.keys["prod"]
    old_kid = kid_of_file(old_key)
    prod.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod-2.txt"))
    prod.ok("keys", "retire", "prod", old_kid, "--force")
    line = prod.fail("unseal", "deploy/prod/db.yaml", "-i", str(old_key))
    # Before: "retired or unknown key K", leaving the reader to guess which.
    assert f"{old_kid} (retired in prod)" in line and "reseal" in line, line


# --- reseal's summary ------------------------------------------------------------------------------


def test_reseal_summary_does_not_count_a_kept_recovery_key_as_moved_off(prod: Repo, tmp_path: Path) -> None:
    _rec_path, rec, rec_kid = recovery_key(tmp_path)
    prod.ok("keys", "add", "prod", rec, "--recovery")
    prod.seal("deploy/prod/db.yaml", SECRET)
    old_key = prod.keys["prod"]
    old_kid = kid_of_file(old_key)
    prod.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod-2.txt"))

    r = prod.ok("reseal", "-i", str(old_key))
    assert f"moved off {old_kid}: 3)" in r.stderr, r.stderr
    assert rec_kid not in r.stderr, r.stderr  # before: "moved off OLD: 3, REC: 3"
    for t in tokens(prod.read("deploy/prod/db.yaml")):
        assert rec_kid in t  # the recovery key was kept, as the summary now says

    prod.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod-3.txt"))
    out = json.loads(prod.ok("reseal", "-i", str(tmp_path / "keys" / "prod-2.txt"), "--output", "json").stdout)
    assert out["by_kid"] == {kid_of_file(tmp_path / "keys" / "prod-2.txt"): 3}, out


# --- not UTF-8 text: which file, and what to do ----------------------------------------------------


def test_a_file_that_is_not_utf8_is_named_with_what_to_do(prod: Repo) -> None:
    prod.write("deploy/prod/latin1.yaml", "password: caf\xe9\n".encode("latin-1"))
    line = prod.fail("seal", "deploy/prod/latin1.yaml")
    assert "deploy/prod/latin1.yaml" in line and "not UTF-8 text" in line
    assert "save the file as UTF-8" in line, line  # before: no hint at all
    # Standard input is named too, and nothing on it is said to be nothing.
    key = str(prod.keys["prod"])
    raw = subprocess.run(
        [SEALER, "unseal", "-", "--env", "prod", "-i", key],
        input="password: caf\xe9\n".encode("latin-1"),
        capture_output=True,
        cwd=prod.root,
        env=prod.env(),
        timeout=120,
    )
    r = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
    assert_clean_failure(r, "<stdin>", "not UTF-8 text", "save the file as UTF-8")
    assert_clean_failure(prod.run("unseal", "-", "--env", "prod", "-i", key, stdin=""), "<stdin>", "is empty")


def test_a_sops_file_that_is_not_utf8_names_the_file_and_binary_store(prod: Repo, tmp_path: Path) -> None:
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    line = prod.fail("import", "sops", str(blob), "--env", "prod")
    assert str(blob) in line and "not UTF-8 text" in line
    assert "--input-type binary" in line, line  # before: "not UTF-8 text (bad byte at offset 0)" alone


def test_a_signer_key_that_is_not_utf8_names_the_file_and_what_to_do(prod: Repo, tmp_path: Path) -> None:
    key = tmp_path / "signer.txt"
    key.write_bytes(b"\xff\xfe not a key\n")
    key.chmod(0o600)
    prod.write("deploy/prod/db.yaml", SECRET)
    line = prod.fail("seal", "deploy/prod/db.yaml", "--sign-with", str(key))
    assert str(key) in line and "not UTF-8 text" in line
    assert "sealer signers generate" in line, line  # before: "not UTF-8 text" alone


# --- import sops without a key ---------------------------------------------------------------------


def test_import_sops_without_any_key_names_the_sops_variables(prod: Repo) -> None:
    sample = VECTOR_DIR / "sops" / "example.yaml"
    home = str(prod.home)  # no sops keys file there; an empty variable counts as unset
    no_keys = {
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "SOPS_AGE_KEY": "",
        "SOPS_AGE_KEY_FILE": "",
        "SOPS_AGE_KEY_CMD": "",
    }
    r = prod.run("import", "sops", str(sample), "--env", "prod", env=no_keys)
    # Before: "no identity found: tried --identity, SEALER_IDENTITY, …", no SOPS variable, no file.
    line = assert_clean_failure(r, str(sample), "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "--identity")
    assert "no age identity" in line, line


def test_import_sops_with_the_sops_key_still_works(prod: Repo, tmp_path: Path) -> None:
    keys = tmp_path / "sops-keys.txt"
    shutil.copy(VECTOR_DIR / "sops" / "keys.txt", keys)
    keys.chmod(0o600)
    sample = VECTOR_DIR / "sops" / "example.yaml"
    prod.ok("import", "sops", str(sample), "--env", "prod", env={"SOPS_AGE_KEY_FILE": str(keys)})


# --- a directory given to seal ---------------------------------------------------------------------


def test_seal_of_a_directory_is_one_message_whatever_the_path_rule_says(prod: Repo) -> None:
    prod.write("deploy/prod/sub/db.yaml", SECRET)
    lines = []
    for arg in ("deploy/prod/", "deploy/prod", "deploy/prod/sub", "deploy/prod/sub/"):
        r = prod.run("seal", arg)
        # Before: "no environment's path rule covers this file" (exit 2) for deploy/prod/, and
        # "is a directory, expected a file" (exit 1) for deploy/prod/sub.
        lines.append(assert_clean_failure(r, arg.rstrip("/"), "is a directory", "sealer seal", code=1))
    assert len({re.sub(r"deploy/prod(/sub)?/?", "DIR", ln) for ln in lines}) == 1, lines
    assert "CANARY" in prod.read("deploy/prod/sub/db.yaml")  # nothing sealed, nothing written


# --- a one-byte edit in a token's header -----------------------------------------------------------


def _edit_blob(token: str, index: int) -> str:
    m = TOKEN_RE.fullmatch(token)
    assert m
    blob = bytearray(base64.urlsafe_b64decode(m.group(3) + "=" * (-len(m.group(3)) % 4)))
    blob[index] ^= 0x01
    text = base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()
    return f"ENC[{m.group(1)},{m.group(2)},{text}]"


@pytest.mark.parametrize(("index", "part"), [(6, "environment"), (7, "scope"), (9, "name"), (10, "path")])
def test_a_flipped_hint_byte_is_reported_as_altered_not_moved(prod: Repo, index: int, part: str) -> None:
    text = prod.seal("deploy/prod/db.yaml", SECRET)
    tok = tokens(text)[0]
    prod.write("deploy/prod/db.yaml", text.replace(tok, _edit_blob(tok, index)))
    line = prod.fail("unseal", "deploy/prod/db.yaml", "-i", str(prod.keys["prod"]))
    # Before: "was sealed for a different scope (moved or copied from elsewhere, …)".
    assert "different" not in line, line
    assert "altered" in line and "deploy/prod/db.yaml" in line and "restore the file from git" in line, line


def test_a_value_really_moved_still_says_what_moved(prod: Repo) -> None:
    text = prod.seal("deploy/prod/db.yaml", SECRET)
    prod.write("deploy/prod/other.yaml", text.replace("name: db", "name: other"))
    line = prod.fail("unseal", "deploy/prod/other.yaml", "-i", str(prod.keys["prod"]))
    assert "sealed for a different name" in line and "moved or copied" in line, line


def test_a_flipped_seal_time_byte_is_reported_as_altered(prod: Repo) -> None:
    text = prod.seal("deploy/prod/db.yaml", SECRET)
    tok = tokens(text)[0]
    prod.write("deploy/prod/db.yaml", text.replace(tok, _edit_blob(tok, 5)))
    line = prod.fail("unseal", "deploy/prod/db.yaml", "-i", str(prod.keys["prod"]))
    assert "different" not in line and "altered" in line, line


# --- --help ----------------------------------------------------------------------------------------


def test_keys_add_help_names_every_recipient_kind(prod: Repo) -> None:
    # Already right when this was filed's fix landed (keys add's docstring); pinned here.
    out = prod.ok("keys", "add", "--help").stdout
    assert "ssh-ed25519" in out and "age1pq1" in out and "age1" in out


def test_unseal_help_explains_all_four_formats_and_stdin(prod: Repo) -> None:
    out = " ".join(prod.ok("unseal", "--help").stdout.split())
    for fmt in ("yaml:", "k8s:", "dotenv:", "json:"):
        assert fmt in out, (fmt, out)  # before: yaml and k8s only
    assert "'-' reads one sealed file from stdin" in out and "--env" in out


def test_set_type_in_a_secret_is_refused_not_ignored(prod: Repo) -> None:
    prod.seal("deploy/prod/db.yaml", SECRET)
    before = prod.read("deploy/prod/db.yaml")
    for path in ("stringData.port", "data.blob"):
        line = prod.fail("set", "deploy/prod/db.yaml", path, "--type", "int", stdin="5\n", code=2)
        # Before: exit 0, the value sealed as text and --type silently dropped.
        assert "deploy/prod/db.yaml" in line and path in line and "--type" in line, line
    assert prod.read("deploy/prod/db.yaml") == before
    out = " ".join(prod.ok("set", "--help").stdout.split())
    assert "Refused in a Secret" in out
    # Outside a Secret --type still applies.
    prod.write("deploy/prod/values.yaml", "port: '1'\n")
    prod.ok("set", "deploy/prod/values.yaml", "port", "--type", "int", stdin="8080\n")
    shown = json.loads(prod.ok("show", "deploy/prod/values.yaml", "--output", "json").stdout)
    assert shown[0]["documents"][0]["values"][0]["type"] == "int"


# --- sealer unseal - -------------------------------------------------------------------------------


def test_unseal_stdin_applies_the_named_environments_rules(prod: Repo, tmp_path: Path) -> None:
    sealed = prod.seal("deploy/prod/db.yaml", SECRET)
    key = str(prod.keys["prod"])
    r = prod.ok("unseal", "-", "--env", "prod", "-i", key, "--format", "json", stdin=sealed)
    (doc,) = json.loads(r.stdout)
    assert doc["file"] == "<stdin>" and doc["content"]["stringData"]["password"] == "pw-CANARY-7f3a9"
    # From a subdirectory: the repository of the current directory.
    (prod.root / "deploy").mkdir(exist_ok=True)
    prod.ok("unseal", "-", "--env", "prod", "-i", key, stdin=sealed, cwd=prod.root / "deploy")

    # No path, so no path rule: --env is required (a usage error).
    assert_clean_failure(prod.run("unseal", "-", "-i", key, stdin=sealed), "<stdin>", "--env", code=2)
    # Another environment's rules refuse the file (it says prod).
    assert_clean_failure(
        prod.run("unseal", "-", "--env", "staging", "-i", key, stdin=sealed), "<stdin>", "prod", "staging"
    )
    # The environment's rules apply: a value on a retired key is refused from stdin too.
    old_kid = kid_of_file(prod.keys["prod"])
    prod.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod-2.txt"))
    prod.ok("keys", "retire", "prod", old_kid, "--force")
    assert_clean_failure(
        prod.run("unseal", "-", "--env", "prod", "-i", key, stdin=sealed), "<stdin>", old_kid, "retired"
    )


def test_unseal_stdin_outside_a_repository_is_refused_unless_no_rules(prod: Repo, tmp_path: Path) -> None:
    sealed = prod.seal("deploy/prod/db.yaml", SECRET)
    key = str(prod.keys["prod"])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    r = prod.run("unseal", "-", "--env", "prod", "-i", key, stdin=sealed, cwd=outside)
    assert_clean_failure(r, "<stdin>", "not inside a sealer repository", "--no-rules")
    r = prod.ok("unseal", "-", "--env", "prod", "--no-rules", "-i", key, stdin=sealed, cwd=outside)
    assert "pw-CANARY-7f3a9" in r.stdout
    r = prod.run("unseal", "-", "--env", "staging", "--no-rules", "-i", key, stdin=sealed, cwd=outside)
    assert_clean_failure(r, "<stdin>", "prod")


def test_unseal_stdin_named_twice_is_a_usage_error(prod: Repo) -> None:
    sealed = prod.seal("deploy/prod/db.yaml", SECRET)
    r = prod.run("unseal", "-", "-", "--env", "prod", "-i", str(prod.keys["prod"]), stdin=sealed)
    assert_clean_failure(r, "stdin", "once", code=2)
