"""Passphrases (issue 14, item 8), with real parts: the real CLI on a real pseudo-terminal for the
prompt, real `ssh-keygen` for passphrase-protected OpenSSH keys, and the real `age -d` opening what
`sealer keys generate --passphrase` writes.

`Terminal` runs a program with a fresh pty as its controlling terminal (`pty.fork`), so the program's
`/dev/tty` is that pty, exactly as when a person runs it in a terminal emulator.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure, require_tool

ROOT = Path(__file__).resolve().parent.parent
WORDS = "correct horse CANARY-pass-7c1"  # a passphrase: never echoed, never in any output


class Terminal:
    """A process whose controlling terminal is a pty we type into."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self._pos = 0
        self.code: int | None = None

    def _read(self, deadline: float) -> bool:
        """Read what is there; False at end of output (the child closed the terminal)."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, min(0.1, deadline - time.monotonic())))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child is gone
            return False
        self.output += data
        return bool(data)

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until `text` appears after what was already matched."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while needle not in self.output[self._pos :]:
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"never saw {text!r}; the terminal shows {self.text!r}")
        self._pos = self.output.index(needle, self._pos) + len(needle)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def wait(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline):
            pass
        if time.monotonic() >= deadline:
            os.kill(self.pid, signal.SIGKILL)
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        self.code = os.waitstatus_to_exitcode(status)
        return self.code

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")


def sealer_on_terminal(repo: Repo, *args: str, env: dict[str, str] | None = None) -> Terminal:
    return Terminal([SEALER, *args], cwd=repo.root, env=repo.env(env))


def private(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo.create(tmp_path, "prod", keys=("prod",))
    r.seal("deploy/prod/db.yaml", SECRET)
    return r


def protect(repo: Repo, passphrase: str = WORDS) -> Path:
    """prod's key file, encrypted to `passphrase` as `age -p` does (work factor kept low: speed)."""
    from sealer._interop.age import encrypt_identity_file

    data = encrypt_identity_file(repo.keys["prod"].read_text(), passphrase, work_factor=10, armor=True)
    return private(repo.tmp / "prod.age", data)


# --- the prompt on a real terminal --------------------------------------------------------------------


def test_the_passphrase_prompt_works_on_a_real_terminal(repo: Repo) -> None:
    """Before: `open("/dev/tty", "r+")` raised io.UnsupportedOperation on every real terminal,
    reported as "no terminal to ask on"."""
    protected = protect(repo)
    term = sealer_on_terminal(repo, "unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(protected))
    term.expect(f"passphrase for {protected}: ")
    term.type(WORDS)
    assert term.wait() == 0, term.text
    assert "password=pw-CANARY-7f3a9" in term.text
    assert WORDS not in term.text  # echo was off while it was typed
    assert "no terminal" not in term.text


def test_a_wrong_passphrase_on_the_terminal_is_one_line_naming_the_file(repo: Repo) -> None:
    protected = protect(repo)
    term = sealer_on_terminal(repo, "unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(protected))
    term.expect("passphrase for ")
    term.type("not it")
    assert term.wait() == 1
    errors = [line for line in term.text.splitlines() if line.startswith("sealer: error:")]
    assert len(errors) == 1 and f"{protected}: wrong passphrase" in errors[0], term.text
    assert "Traceback" not in term.text and "CANARY" not in term.text


def test_without_a_terminal_the_error_says_how_to_give_the_passphrase(repo: Repo) -> None:
    protected = protect(repo)
    r = subprocess.run(
        [SEALER, "unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(protected)],
        cwd=repo.root,
        env=repo.env(),
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal at all
    )
    assert_clean_failure(r, str(protected), "no terminal to ask on", "SEALER_PASSPHRASE_FILE")


# --- OpenSSH private keys with a passphrase -------------------------------------------------------------


def test_bcrypt_is_a_dependency() -> None:
    """cryptography needs `bcrypt` to open a passphrase-protected OpenSSH key (bcrypt-pbkdf)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"bcrypt\b", d) for d in deps), deps


@pytest.fixture
def ssh_key(repo: Repo) -> Path:
    """An ed25519 key made by the real ssh-keygen with a passphrase, registered as a recovery key of
    prod, and db.yaml re-sealed so that it opens with that key alone."""
    keygen = require_tool("ssh-keygen")
    key = repo.tmp / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", WORDS, "-C", "custodian", "-f", str(key)], check=True)
    assert "ENCRYPTED" not in key.read_text()  # the new format: the cipher is inside the PEM body
    repo.ok("keys", "add", "prod", Path(f"{key}.pub").read_text().strip(), "--recovery")
    repo.ok("reseal", "--env", "prod", "-i", str(repo.keys["prod"]))
    return key


def test_openssh_key_with_a_passphrase_from_the_passphrase_file(repo: Repo, ssh_key: Path) -> None:
    """Before: "unreadable OpenSSH private key" (bcrypt missing), naming no file."""
    pw = private(repo.tmp / "pw", WORDS + "\n")
    r = repo.ok(
        "unseal",
        "deploy/prod/db.yaml",
        "--format",
        "dotenv",
        "-i",
        str(ssh_key),
        env={"SEALER_PASSPHRASE_FILE": str(pw)},
    )
    assert "password=pw-CANARY-7f3a9" in r.stdout


def test_openssh_key_with_a_passphrase_asked_on_the_terminal(repo: Repo, ssh_key: Path) -> None:
    term = sealer_on_terminal(repo, "unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(ssh_key))
    term.expect(f"passphrase for {ssh_key}: ")
    term.type(WORDS)
    assert term.wait() == 0, term.text
    assert "password=pw-CANARY-7f3a9" in term.text and WORDS not in term.text


def test_openssh_key_errors_name_the_file(repo: Repo, ssh_key: Path) -> None:
    pw = private(repo.tmp / "pw", "wrong\n")
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(ssh_key), env={"SEALER_PASSPHRASE_FILE": str(pw)})
    assert_clean_failure(r, f"{ssh_key}: wrong passphrase for this OpenSSH private key")
    damaged = ssh_key.read_text().splitlines()
    damaged[3] = damaged[3][:10] + ("A" if damaged[3][10] != "A" else "B") + damaged[3][11:]
    bad = private(repo.tmp / "damaged", "\n".join(damaged) + "\n")
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(bad), env={"SEALER_PASSPHRASE_FILE": str(pw)})
    assert_clean_failure(r, f"{bad}: ")


def test_openssh_key_without_bcrypt_says_what_is_missing(tmp_path: Path, repo: Repo, ssh_key: Path) -> None:
    """Where bcrypt is not installed the error names the file and the package (not "unreadable")."""
    blocker = tmp_path / "nobcrypt"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['bcrypt'] = None\n")
    pw = private(repo.tmp / "pw", WORDS + "\n")
    env = {"SEALER_PASSPHRASE_FILE": str(pw), "PYTHONPATH": str(blocker)}
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(ssh_key), env=env)
    assert_clean_failure(r, str(ssh_key), "needs the bcrypt package")


def test_encrypted_detects_the_cipher_of_an_openssh_key(tmp_path: Path) -> None:
    from sealer._keys.ssh import SshEd25519Identity

    keygen = require_tool("ssh-keygen")
    for name, words in (("plain", ""), ("protected", WORDS)):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", words, "-f", str(tmp_path / name)], check=True)
    assert not SshEd25519Identity.encrypted((tmp_path / "plain").read_text())
    assert SshEd25519Identity.encrypted((tmp_path / "protected").read_text())
    assert not SshEd25519Identity.encrypted("-----BEGIN X-----\nnot base64!\n-----END X-----\n")


# --- keys generate --passphrase ---------------------------------------------------------------------------


def registered(repo: Repo) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in repo.read("keys/prod.yaml").splitlines() if "recipient:" in line]


def age_decrypt_on_terminal(age: str, path: Path, passphrase: str, cwd: Path) -> str:
    """`age -d FILE` (age reads passphrases from the terminal only)."""
    out = cwd / "opened.txt"
    term = Terminal([age, "-d", "-o", str(out), str(path)], cwd=cwd, env=dict(os.environ))
    term.expect("passphrase")
    term.type(passphrase)
    assert term.wait() == 0, term.text
    return out.read_text()


def test_keys_generate_passphrase_on_the_terminal_writes_an_age_scrypt_file(tmp_path: Path) -> None:
    age = require_tool("age")
    repo = Repo.create(tmp_path, "prod")
    out = repo.keydir / "prod.txt"
    term = sealer_on_terminal(repo, "keys", "generate", "prod", "--out", str(out), "--passphrase")
    term.expect(f"new passphrase for {out}: ")
    term.type(WORDS)
    term.expect("the same passphrase again: ")
    term.type(WORDS)
    assert term.wait() == 0, term.text
    assert WORDS not in term.text and "protected by a passphrase" in term.text
    data = out.read_bytes()
    assert data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----") and b"AGE-SECRET-KEY" not in data
    assert out.stat().st_mode & 0o777 == 0o600
    # The real age opens it with the passphrase: an identity file whose public key is the registered one.
    text = age_decrypt_on_terminal(age, out, WORDS, tmp_path)
    assert re.search(r"^AGE-SECRET-KEY-1[0-9A-Z]+$", text, re.M), "no identity line"
    assert f"# public key: {registered(repo)[0]}" in text
    # And sealer opens it, asking for the passphrase.
    repo.seal("deploy/prod/db.yaml", SECRET)
    term = sealer_on_terminal(repo, "unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(out))
    term.expect("passphrase for ")
    term.type(WORDS)
    assert term.wait() == 0, term.text
    assert "password=pw-CANARY-7f3a9" in term.text


def test_keys_generate_passphrase_from_the_passphrase_file(tmp_path: Path) -> None:
    age = require_tool("age")
    repo = Repo.create(tmp_path, "prod")
    pw = private(tmp_path / "pw", WORDS + "\n")
    env = {"SEALER_PASSPHRASE_FILE": str(pw)}
    r = repo.ok("keys", "generate", "prod", "--passphrase", "--output", "json", env=env)
    assert WORDS not in r.stdout + r.stderr
    made = json.loads(r.stdout)
    path = Path(made["identity_file"])
    assert made["passphrase"] is True and path.parent == repo.home / "identities"
    assert path.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert f"# public key: {made['recipient']}" in age_decrypt_on_terminal(age, path, WORDS, tmp_path)
    # The config dir's protected key is found by itself; the passphrase comes from the same file.
    repo.seal("deploy/prod/db.yaml", SECRET)
    r = repo.ok("unseal", "deploy/prod/db.yaml", "--format", "dotenv", env=env)
    assert "password=pw-CANARY-7f3a9\n" in r.stdout


def test_keys_generate_passphrase_refuses_two_different_answers_and_writes_nothing(tmp_path: Path) -> None:
    repo = Repo.create(tmp_path, "prod")
    out = repo.keydir / "prod.txt"
    before = repo.snapshot()
    term = sealer_on_terminal(repo, "keys", "generate", "prod", "--out", str(out), "--passphrase")
    term.expect("new passphrase for ")
    term.type(WORDS)
    term.expect("the same passphrase again: ")
    term.type(WORDS + "x")
    assert term.wait() == 1
    assert f"sealer: error: {out}: the two passphrases differ" in term.text and WORDS not in term.text
    assert not out.exists() and repo.snapshot() == before


def test_keys_generate_passphrase_refuses_an_empty_one(tmp_path: Path) -> None:
    repo = Repo.create(tmp_path, "prod")
    pw = private(tmp_path / "pw", "\n")
    before = repo.snapshot()
    r = repo.run("keys", "generate", "prod", "--passphrase", env={"SEALER_PASSPHRASE_FILE": str(pw)})
    assert_clean_failure(r, "empty passphrase")
    assert repo.snapshot() == before
    assert not list(repo.home.glob("identities/*"))
