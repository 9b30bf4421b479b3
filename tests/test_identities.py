"""Identities: identity files, permissions, the five sources and their order, and secret hygiene."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from sealer import _identities as identities
from sealer._identities import (
    IdentitySet,
    find_identities,
    parse_identity_file,
    read_identity_file,
    user_config_dir,
    write_identity_file,
)
from sealer._keys import Identity, generate_identity
from sealer.errors import IdentityError, InputError, KeyFormatError, SealerError

SOURCES_LISTED = "--identity, SEALER_IDENTITY, SEALER_IDENTITY_FILE, SEALER_IDENTITY_COMMAND"


def key_file(path: Path, *keys: Identity, mode: int = 0o600) -> Path:
    path.write_text("".join(f"# public key: {k.recipient.encode()}\n{k.encode()}\n" for k in keys))
    path.chmod(mode)
    return path


def assert_no_secret(text: str, *secrets: str) -> None:
    hay = text.upper()
    for secret in secrets:
        data = secret.split("1", 1)[1]
        assert secret.upper() not in hay
        for i in range(0, len(data) - 10):
            assert data[i : i + 10].upper() not in hay, "a fragment of a secret key leaked"


def error_text(err: BaseException) -> str:
    parts: list[str] = []
    seen: BaseException | None = err
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args)]
        if isinstance(seen, SealerError):
            parts += [str(seen.file), str(seen.hint)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def corrupt(secret: str) -> str:
    return secret[:-1] + ("Q" if secret[-1] != "Q" else "P")


# --- parse_identity_file ---------------------------------------------------------------------------


def test_comments_blank_lines_and_several_keys() -> None:
    a, b, c = generate_identity(), generate_identity(), generate_identity()
    text = (
        "# created: 2026-01-01T00:00:00Z\n"
        f"# public key: {a.recipient.encode()}\n"
        f"{a.encode()}\n"
        "\n"
        "   \n"
        "#another comment\r\n"
        f"{b.encode()}\r\n"
        f"  {c.encode()}  "
    )
    parsed = parse_identity_file(text, "keys.txt")
    assert [i.kid for i in parsed] == [a.kid, b.kid, c.kid]


def test_bad_line_names_source_and_line_but_not_the_content() -> None:
    good, bad = generate_identity(), generate_identity()
    bad_line = corrupt(bad.encode())
    text = f"# comment\n{good.encode()}\n\n{bad_line}\n"
    with pytest.raises(KeyFormatError) as info:
        parse_identity_file(text, "/secrets/key.txt")
    message = str(info.value)
    assert message.startswith("/secrets/key.txt: line 4: ")
    assert "checksum" in message
    assert bad_line not in error_text(info.value)
    assert_no_secret(error_text(info.value), bad.encode(), good.encode())


def test_garbage_line_is_not_echoed() -> None:
    with pytest.raises(KeyFormatError, match=r"key\.txt: line 2: not an age identity") as info:
        parse_identity_file("# x\nhunter2-is-my-password\n", "key.txt")
    assert "hunter2" not in error_text(info.value)


def test_file_without_keys_is_an_error() -> None:
    with pytest.raises(KeyFormatError, match="no identity found"):
        parse_identity_file("# only a comment\n\n", "empty.txt")


# --- read_identity_file: permissions and limits ----------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    key = generate_identity()
    path = key_file(tmp_path / "key.txt", key, mode=mode)
    assert [i.kid for i in read_identity_file(path)] == [key.kid]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o610])
def test_group_or_other_bits_are_refused(tmp_path: Path, mode: int) -> None:
    key = generate_identity()
    path = key_file(tmp_path / "key.txt", key, mode=mode)
    with pytest.raises(IdentityError) as info:
        read_identity_file(path)
    assert str(info.value) == (
        f"identity file {path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}"
    )
    assert_no_secret(error_text(info.value), key.encode())


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(InputError, match=re.escape(f"{path}: identity file not found")):
        read_identity_file(path)


def test_directory_and_fifo_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(InputError, match="not a regular file"):
        read_identity_file(directory)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InputError, match="not a regular file"):  # and does not hang
        read_identity_file(fifo)


def test_large_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("#" * (1 << 20) + "\n")
    path.chmod(0o600)
    with pytest.raises(InputError, match="larger than 1 MiB"):
        read_identity_file(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe# hi\n")
    path.chmod(0o600)
    with pytest.raises(KeyFormatError, match="not UTF-8"):
        read_identity_file(path)


# --- write_identity_file ---------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000: a file that is 0600 anyway was created 0600, not chmod-ed after the fact by umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_write_identity_file(tmp_path: Path) -> None:
    identity = generate_identity()
    path = write_identity_file(tmp_path / "sub" / "key.txt", identity, comment_lines=["env: prod", "# x"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# created: ")
    created = lines[0].removeprefix("# created: ")
    assert datetime.fromisoformat(created.replace("Z", "+00:00")).tzinfo is not None
    assert lines[1:] == [
        f"# public key: {identity.recipient.encode()}",
        "# env: prod",
        "# x",
        identity.encode(),
    ]
    assert [i.kid for i in read_identity_file(path)] == [identity.kid]
    assert sorted(p.name for p in path.parent.iterdir()) == ["key.txt"]  # no temp file left behind


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    first, second = generate_identity(), generate_identity()
    path = write_identity_file(tmp_path / "key.txt", first)
    before = path.read_bytes()
    with pytest.raises(IdentityError, match="already exists") as info:
        write_identity_file(path, second)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.txt"]
    assert_no_secret(error_text(info.value), first.encode(), second.encode())


def test_write_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "key.txt"
    link.symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(IdentityError, match="already exists"):
        write_identity_file(link, generate_identity())
    assert not (tmp_path / "elsewhere.txt").exists()


def test_write_rejects_multiline_comments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_identity_file(tmp_path / "k.txt", generate_identity(), comment_lines=["a\nAGE-SECRET-KEY-1"])
    assert not (tmp_path / "k.txt").exists()


# --- sources ---------------------------------------------------------------------------------------


class Sources:
    """One distinct key per source, all present; tests remove them one by one."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.explicit = [generate_identity(), generate_identity()]
        self.env_text = [generate_identity(), generate_identity()]
        self.env_file = generate_identity()
        self.command = generate_identity()
        self.config = [generate_identity(), generate_identity()]

        self.explicit_files = [
            key_file(tmp_path / "explicit-a.txt", self.explicit[0]),
            key_file(tmp_path / "explicit-b.txt", self.explicit[1]),
        ]
        env_file_path = key_file(tmp_path / "env-file.txt", self.env_file)
        command_key = key_file(tmp_path / "command-key.txt", self.command)
        self.marker = tmp_path / "runs.log"
        self.script = write_script(
            tmp_path / "vault-read",
            f'echo run >> "{self.marker}"\ncat "{command_key}"\n',
        )
        self.config_dir = tmp_path / "config"
        (self.config_dir / "identities").mkdir(parents=True)
        # Sorted by name: b.txt before c.txt; other extensions are ignored.
        key_file(self.config_dir / "identities" / "c.txt", self.config[1])
        key_file(self.config_dir / "identities" / "b.txt", self.config[0])
        key_file(self.config_dir / "identities" / "a.txt.bak", generate_identity())

        self.environ = {
            "HOME": str(tmp_path / "home"),
            "SEALER_IDENTITY": "\n".join(["# two keys", *(k.encode() for k in self.env_text)]),
            "SEALER_IDENTITY_FILE": str(env_file_path),
            "SEALER_IDENTITY_COMMAND": f"{self.script} --field key",
        }

    def runs(self) -> int:
        return len(self.marker.read_text().splitlines()) if self.marker.exists() else 0


def write_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o700)
    return path


def kids(keys: list[Identity]) -> list[str]:
    return [k.kid for k in keys]


def test_source_precedence(tmp_path: Path) -> None:
    s = Sources(tmp_path)
    env = dict(s.environ)

    found = find_identities(s.explicit_files, env, s.config_dir)
    assert found.kids() == kids(s.explicit)
    assert found.source.startswith("--identity ")

    found = find_identities((), env, s.config_dir)
    assert found.kids() == kids(s.env_text)
    assert found.source == "SEALER_IDENTITY"

    del env["SEALER_IDENTITY"]
    found = find_identities((), env, s.config_dir)
    assert found.kids() == [s.env_file.kid]
    assert "SEALER_IDENTITY_FILE" in found.source

    del env["SEALER_IDENTITY_FILE"]
    found = find_identities((), env, s.config_dir)
    assert found.kids() == [s.command.kid]
    assert found.source == "SEALER_IDENTITY_COMMAND (" + str(s.script) + ")"

    del env["SEALER_IDENTITY_COMMAND"]
    found = find_identities((), env, s.config_dir)
    assert found.kids() == kids(s.config)
    assert found.source.startswith("config dir ")

    assert s.runs() == 1  # the command ran only when it was the chosen source


def test_only_the_first_source_is_used(tmp_path: Path) -> None:
    s = Sources(tmp_path)
    found = find_identities([s.explicit_files[0]], s.environ, s.config_dir)
    assert found.for_kid(s.explicit[0].kid) is not None
    for other in (*s.env_text, s.env_file, s.command, *s.config):
        assert found.for_kid(other.kid) is None
    assert s.runs() == 0


def test_empty_variables_count_as_absent(tmp_path: Path) -> None:
    s = Sources(tmp_path)
    env = {"SEALER_IDENTITY": "", "SEALER_IDENTITY_FILE": "  ", "SEALER_IDENTITY_COMMAND": ""}
    assert find_identities((), env, s.config_dir).kids() == kids(s.config)


def test_command_runs_lazily_and_once(tmp_path: Path) -> None:
    s = Sources(tmp_path)
    env = {"SEALER_IDENTITY_COMMAND": s.environ["SEALER_IDENTITY_COMMAND"]}
    found = find_identities((), env, s.config_dir)
    assert s.runs() == 0  # finding a source runs nothing
    assert found.for_kid(s.command.kid) is not None
    assert found.for_kid("0000000000000000") is None
    assert found.kids() == [s.command.kid]
    assert len(found) == 1
    assert [i.kid for i in found] == [s.command.kid]
    assert s.runs() == 1


def test_command_gets_its_arguments_without_a_shell(tmp_path: Path) -> None:
    args_file = tmp_path / "args"
    key = key_file(tmp_path / "k.txt", generate_identity())
    script = write_script(
        tmp_path / "show-args",
        f'printf "%s\\n" "$@" > "{args_file}"\n[ -t 0 ] && exit 9\ncat "{key}"\n',
    )
    env = {"SEALER_IDENTITY_COMMAND": f"{script} 'two words' $HOME ';' x"}
    assert len(find_identities((), env, tmp_path).kids()) == 1
    assert args_file.read_text().splitlines() == ["two words", "$HOME", ";", "x"]


def test_failing_command_does_not_show_its_output(tmp_path: Path) -> None:
    leaked = generate_identity()
    marker = tmp_path / "runs.log"
    script = write_script(
        tmp_path / "vault-fail",
        f'echo run >> "{marker}"\necho "{leaked.encode()}"\necho "token=s.hunter2" >&2\nexit 3\n',
    )
    found = find_identities((), {"SEALER_IDENTITY_COMMAND": f"{script} read prod"}, tmp_path)
    for _ in range(2):
        with pytest.raises(IdentityError) as info:
            found.for_kid(leaked.kid)
        assert str(info.value) == f"SEALER_IDENTITY_COMMAND: {script} failed with exit status 3"
        assert_no_secret(error_text(info.value), leaked.encode())
        assert "hunter2" not in error_text(info.value)
    assert len(marker.read_text().splitlines()) == 1  # a failure is not retried


def test_command_with_bad_output_names_the_line_only(tmp_path: Path) -> None:
    secret = generate_identity().encode()
    script = write_script(tmp_path / "vault-bad", f'echo "# ok"\necho "{corrupt(secret)}"\n')
    found = find_identities((), {"SEALER_IDENTITY_COMMAND": str(script)}, tmp_path)
    with pytest.raises(KeyFormatError, match=r"output of SEALER_IDENTITY_COMMAND .*: line 2: ") as info:
        found.kids()
    assert_no_secret(error_text(info.value), secret)


def test_command_not_found(tmp_path: Path) -> None:
    found = find_identities((), {"SEALER_IDENTITY_COMMAND": "/nonexistent/vault read"}, tmp_path)
    with pytest.raises(IdentityError, match="command not found: /nonexistent/vault"):
        found.kids()


def test_command_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identities, "IDENTITY_COMMAND_TIMEOUT", 0.5)
    script = write_script(tmp_path / "slow", "exec sleep 30\n")
    found = find_identities((), {"SEALER_IDENTITY_COMMAND": str(script)}, tmp_path)
    with pytest.raises(IdentityError, match=r"did not finish within 0\.5 s"):
        found.kids()


def test_command_with_unbalanced_quotes(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="not a valid command line") as info:
        find_identities((), {"SEALER_IDENTITY_COMMAND": "vault read 'AGE-SECRET"}, tmp_path)
    assert "AGE-SECRET" not in str(info.value)


def test_explicit_file_missing_fails_on_use_only(tmp_path: Path) -> None:
    found = find_identities([tmp_path / "missing.txt"], {}, tmp_path)
    with pytest.raises(InputError, match=r"missing\.txt: identity file not found"):
        found.kids()


def test_unsafe_file_in_config_dir_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "identities").mkdir(parents=True)
    path = key_file(config / "identities" / "prod.txt", generate_identity(), mode=0o644)
    with pytest.raises(IdentityError, match=re.escape(f"run: chmod 600 {path}")):
        find_identities((), {}, config).kids()


def test_no_identity_lists_the_sources(tmp_path: Path) -> None:
    home = tmp_path / "home"
    found = find_identities((), {"HOME": str(home)})
    assert len(found) == 0
    assert not found.present
    expected = f"no identity found: tried {SOURCES_LISTED}, ~/.config/sealer/identities/"
    for use in (lambda: found.for_kid("0123456789abcdef"), found.kids, found.identities):
        with pytest.raises(IdentityError) as info:
            use()
        assert str(info.value) == expected


def test_no_identity_with_an_empty_config_dir(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    (config / "identities").mkdir(parents=True)
    (config / "identities" / "README").write_text("not a key")
    found = find_identities((), {"HOME": str(tmp_path / "home")}, config)
    with pytest.raises(IdentityError, match=re.escape(f"{SOURCES_LISTED}, {config}/identities/")):
        found.kids()


def test_user_config_dir() -> None:
    assert user_config_dir({"SEALER_CONFIG_DIR": "/a", "XDG_CONFIG_HOME": "/b", "HOME": "/h"}) == Path("/a")
    assert user_config_dir({"XDG_CONFIG_HOME": "/b", "HOME": "/h"}) == Path("/b/sealer")
    assert user_config_dir({"XDG_CONFIG_HOME": "", "HOME": "/h"}) == Path("/h/.config/sealer")


def test_config_dir_from_environment(tmp_path: Path) -> None:
    key = generate_identity()
    (tmp_path / "x" / "sealer" / "identities").mkdir(parents=True)
    key_file(tmp_path / "x" / "sealer" / "identities" / "dev.txt", key)
    assert find_identities((), {"XDG_CONFIG_HOME": str(tmp_path / "x")}).kids() == [key.kid]


def test_identity_set_of() -> None:
    a, b = generate_identity(), generate_identity()
    found = IdentitySet.of([a, b], "generated")
    assert found.for_kid(b.kid) is b
    assert len(found) == 2
    assert found.source == "generated"


# --- secret hygiene --------------------------------------------------------------------------------


def test_reprs_hide_secrets(tmp_path: Path) -> None:
    s = Sources(tmp_path)
    found = find_identities((), s.environ, s.config_dir)
    secrets = [k.encode() for k in s.env_text]
    assert_no_secret(repr(found) + str(found) + repr(found.identities()) + found.source, *secrets)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_errors_from_every_source_hide_secrets(tmp_path: Path) -> None:
    secret = generate_identity().encode()
    bad = corrupt(secret)
    bad_file = tmp_path / "bad.txt"
    bad_file.write_text(f"{bad}\n")
    bad_file.chmod(0o600)
    open_file = tmp_path / "open.txt"
    open_file.write_text(f"{secret}\n")
    open_file.chmod(0o644)
    script = write_script(tmp_path / "leaky", f'echo "{secret}"\nexit 1\n')
    attempts = [
        lambda: find_identities([bad_file], {}, tmp_path).kids(),
        lambda: find_identities([open_file], {}, tmp_path).kids(),
        lambda: find_identities((), {"SEALER_IDENTITY": bad}, tmp_path).kids(),
        lambda: find_identities((), {"SEALER_IDENTITY": secret.lower()}, tmp_path).kids(),
        lambda: find_identities((), {"SEALER_IDENTITY_FILE": str(bad_file)}, tmp_path).kids(),
        lambda: find_identities((), {"SEALER_IDENTITY_COMMAND": str(script)}, tmp_path).kids(),
        lambda: parse_identity_file(secret[:30], "x"),
    ]
    for attempt in attempts:
        with pytest.raises(SealerError) as info:
            attempt()
        assert_no_secret(error_text(info.value), secret)
