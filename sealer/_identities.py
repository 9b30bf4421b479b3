"""Where private keys come from: flags, environment, a vault command, or the user's config dir.

Private keys never live in the repository. This module finds them, refuses unsafe ones (key files
readable by group or others, like ssh does), and loads them only when a private key is actually needed:
sealing needs public keys only, so `sealer seal` must never run a vault command or read a key file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from ._fsio import fsync_dir, read_private_file
from ._hardening import forget_environ, harden
from ._keys import Identity, parse_identity
from .errors import IdentityError, InputError, KeyFormatError

__all__ = [
    "IDENTITY_COMMAND_TIMEOUT",
    "MAX_IDENTITY_FILE_SIZE",
    "IdentitySet",
    "find_identities",
    "identity_file_text",
    "new_passphrase",
    "parse_identity_file",
    "passphrase",
    "protect_process",
    "read_identity_file",
    "run_key_command",
    "split_command",
    "user_config_dir",
    "write_identity_file",
]

MAX_IDENTITY_FILE_SIZE = 1 << 20  # 1 MiB: an identity file is a few lines; anything bigger is a mistake.
IDENTITY_COMMAND_TIMEOUT = 30.0  # seconds

_NO_HARDLINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
_ENV_SOURCES = ("SEALER_IDENTITY", "SEALER_IDENTITY_FILE", "SEALER_IDENTITY_COMMAND")
_SOURCE_NAMES = ("--identity", *_ENV_SOURCES)
MAX_PASSPHRASE_SIZE = 4096

# The SEALER_IDENTITY* values `protect_process` moved out of this process's environment: where
# `find_identities` still finds them (a controller retries a key file that is not mounted yet).
_taken: dict[str, str] = {}


def protect_process(environ: Mapping[str, str] | None = None) -> None:
    """Make this process fit to hold private keys: no core dumps, not traceable (`_hardening.harden`);
    and when `environ` is its own environment, move SEALER_IDENTITY, SEALER_IDENTITY_FILE and
    SEALER_IDENTITY_COMMAND out of it, so that no child (a `cmd:` target, a git hook) inherits them
    or reads them from /proc/PPID/environ. `find_identities` keeps finding them. Idempotent."""
    harden()
    if environ is not None and environ is not os.environ:
        return
    for name in _ENV_SOURCES:
        if name in os.environ:
            _taken[name] = os.environ[name]
    forget_environ(_ENV_SOURCES)


def parse_identity_file(text: str, source: str) -> list[Identity]:
    """Parse the age-keygen format: `#` comments, blank lines, one key per line.

    Errors name `source` and the line number only: the line may be (most of) a private key.
    """
    identities: list[Identity] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(parse_identity(line))
        except KeyFormatError as err:
            raise KeyFormatError(f"line {number}: {err}", file=source) from None
    if not identities:
        raise KeyFormatError("no identity found (expected a line AGE-SECRET-KEY-1…)", file=source)
    return identities


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError("not UTF-8 text", file=source) from None


def read_identity_file(path: str | os.PathLike[str]) -> list[Identity]:
    """Read an identity file, refusing one that group or others may read (as ssh does)."""
    name = os.fspath(path)
    data = read_private_file(name, what="identity file", limit=MAX_IDENTITY_FILE_SIZE)
    return parse_identity_bytes(data, name)


def parse_identity_bytes(data: bytes, source: str) -> list[Identity]:
    """Any identity file a custodian may hold: age-keygen's format, an OpenSSH ed25519 private key
    (with or without a passphrase), or either of those encrypted with a passphrase in the age scrypt
    format (so `age -d` opens it). Every error names `source`."""
    if data.startswith(_AGE_MAGIC) or data.lstrip().startswith(_AGE_ARMOR):
        from ._interop.age import decrypt_identity_file

        secret = passphrase(source)
        if not secret:
            raise IdentityError("no passphrase given for this passphrase-protected identity file", file=source)
        text = decrypt_identity_file(data, secret.decode("utf-8", "replace"), source=source)
        return parse_identity_bytes(text.encode(), source)
    text = _decode(data, source)
    if text.lstrip().startswith(_OPENSSH):
        from ._keys.ssh import SshEd25519Identity

        key = text.strip()
        protected = passphrase(source) if SshEd25519Identity.encrypted(key) else None
        try:
            return [SshEd25519Identity.parse(key, protected)]
        except KeyFormatError as err:
            raise KeyFormatError(err.message, file=source, hint=err.hint) from None
    return parse_identity_file(text, source)


_AGE_MAGIC = b"age-encryption.org/v1\n"
_AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"
_OPENSSH = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"  # split so secret scanners skip this source


def _passphrase_file(env: Mapping[str, str]) -> bytes | None:
    """The first line of the file `SEALER_PASSPHRASE_FILE` names (0600), or None when it is unset."""
    path = env.get("SEALER_PASSPHRASE_FILE")
    if not path:
        return None
    data = read_private_file(path, what="passphrase file", limit=MAX_PASSPHRASE_SIZE)
    return data.splitlines()[0] if data.strip() else b""


def passphrase(source: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The passphrase of a protected identity file: from `SEALER_PASSPHRASE_FILE`, else asked for on
    the terminal. Never from argv or a plain environment variable, which other processes can read."""
    from_file = _passphrase_file(os.environ if environ is None else environ)
    if from_file is not None:
        return from_file
    return _ask_terminal([f"passphrase for {source}: "], f"{source} is passphrase-protected")[0]


def new_passphrase(target: str, environ: Mapping[str, str] | None = None) -> bytes:
    """A passphrase to protect a new identity file with: from `SEALER_PASSPHRASE_FILE`, else asked for
    twice on the terminal. An empty one, or two that differ, are refused."""
    secret = _passphrase_file(os.environ if environ is None else environ)
    if secret is None:
        prompts = [f"new passphrase for {target}: ", "the same passphrase again: "]
        first, again = _ask_terminal(prompts, f"{target} needs a passphrase")
        if first != again:
            raise IdentityError("the two passphrases differ; nothing was written", file=target)
        secret = first
    if not secret:
        raise IdentityError("an empty passphrase protects nothing; nothing was written", file=target)
    try:
        secret.decode("utf-8")
    except UnicodeDecodeError:
        raise IdentityError(
            "the passphrase is not UTF-8 text (age needs text); nothing was written", file=target
        ) from None
    return secret


def _ask_terminal(prompts: Sequence[str], why: str) -> list[bytes]:
    """One line per prompt, read from the controlling terminal with echo off (what getpass does,
    without its fallback to echoing on stdin when there is no terminal)."""
    import termios

    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        fd = -1
    try:
        saved = termios.tcgetattr(fd) if fd >= 0 else None
    except termios.error:
        saved = None
    if saved is None:
        if fd >= 0:
            os.close(fd)
        raise IdentityError(
            f"{why} and there is no terminal to ask on",
            hint="set SEALER_PASSPHRASE_FILE to a 0600 file holding the passphrase",
        )
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO  # lflag
    answers: list[bytes] = []
    try:
        for prompt in prompts:
            # Echo off first (dropping typeahead), then the prompt: an answer typed as soon as the
            # prompt shows is read, and never shown.
            termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
            os.write(fd, prompt.encode())
            try:
                answers.append(_read_line(fd))
            finally:
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
                os.write(fd, b"\n")
    finally:
        os.close(fd)
    return answers


def _read_line(fd: int) -> bytes:
    line = b""
    while b"\n" not in line and len(line) <= MAX_PASSPHRASE_SIZE:
        chunk = os.read(fd, 1024)
        if not chunk:  # end of input (^D)
            break
        line += chunk
    return line.split(b"\n", 1)[0].rstrip(b"\r")


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$SEALER_CONFIG_DIR`, else `${XDG_CONFIG_HOME:-~/.config}/sealer`."""
    env = os.environ if environ is None else environ
    if env.get("SEALER_CONFIG_DIR"):
        return Path(env["SEALER_CONFIG_DIR"])
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "sealer"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".config" / "sealer"


def _display_path(path: Path, environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or str(Path.home())
    with contextlib.suppress(ValueError):
        return str(Path("~") / path.relative_to(home)) + "/"
    return f"{path}/"


class IdentitySet:
    """The identities of one source, loaded on first use and at most once.

    Loading is deferred because most commands need no private key, and a vault command may prompt,
    cost money or be audited. A load error is kept and raised again on later use, not retried.
    """

    def __init__(
        self,
        source: str,
        loader: Callable[[], list[Identity]] | None,
        *,
        tried: Sequence[str] = (),
    ) -> None:
        self.source = source
        self._loader = loader
        self._tried = tuple(tried)
        self._lock = threading.Lock()
        self._identities: list[Identity] | None = None
        self._error: Exception | None = None

    @classmethod
    def of(cls, identities: Sequence[Identity], source: str) -> IdentitySet:
        """An already loaded set (tests, `sealer keys` commands that just generated a key)."""
        items = list(identities)
        return cls(source, lambda: items)

    @property
    def present(self) -> bool:
        """Whether any source was found (False means every use raises IdentityError)."""
        return self._loader is not None

    def _load(self) -> list[Identity]:
        if self._loader is None:
            tried = ", ".join(self._tried)
            raise IdentityError(f"no identity found: tried {tried}")
        with self._lock:
            if self._identities is None and self._error is None:
                harden()  # before the first private key is in memory: no core dump will hold it
                try:
                    self._identities = self._loader()
                except Exception as err:
                    # Drop the traceback: its frames hold locals such as a command's raw output.
                    self._error = err.with_traceback(None)
            if self._error is not None:
                raise self._error
            assert self._identities is not None
            return self._identities

    def identities(self) -> list[Identity]:
        return list(self._load())

    def for_kid(self, kid: str) -> Identity | None:
        for identity in self._load():
            if identity.kid == kid:
                return identity
        return None

    def kids(self) -> list[str]:
        return [identity.kid for identity in self._load()]

    def __iter__(self) -> Iterator[Identity]:
        return iter(self._load())

    def __len__(self) -> int:
        """Number of identities; 0 (not an error) when no source was found."""
        return len(self._load()) if self._loader is not None else 0

    def __repr__(self) -> str:
        return f"IdentitySet(source={self.source!r})"


def _read_files(paths: Sequence[Path]) -> list[Identity]:
    identities: list[Identity] = []
    for path in paths:
        identities.extend(read_identity_file(path))
    return identities


def _run_identity_command(argv: list[str]) -> list[Identity]:
    source = f"output of SEALER_IDENTITY_COMMAND ({argv[0]})"
    return parse_identity_file(_decode(run_key_command(argv, "SEALER_IDENTITY_COMMAND"), source), source)


def split_command(command: str, label: str) -> list[str]:
    """A key command's argv, split as a shell would split it (no shell runs); `label` names the
    variable it came from. The errors never quote the command: it may hold a secret."""
    import shlex  # here: only a key command needs it, and the deploy-time start is counted

    try:
        argv = shlex.split(command)
    except ValueError:
        # shlex's message may quote the command; keep it out.
        raise IdentityError(f"{label} is not a valid command line (unbalanced quotes)") from None
    if not argv:
        raise IdentityError(f"{label} is empty")
    return argv


def run_key_command(argv: Sequence[str], label: str, *, env: Mapping[str, str] | None = None) -> bytes:
    """Run a command that prints private keys and return its stdout: once, no shell, stdin closed,
    stderr left to the user (a login prompt, an error), within IDENTITY_COMMAND_TIMEOUT and at most
    1 MiB of output. The cap holds while reading: past it the command is killed, so a command that
    prints gigabytes costs 1 MiB of memory. `env` replaces the environment when given. Errors name
    `label` and the program, never what it printed."""
    import subprocess
    import time

    name = argv[0]
    deadline = time.monotonic() + IDENTITY_COMMAND_TIMEOUT
    timed_out = f"{label}: {name} did not finish within {IDENTITY_COMMAND_TIMEOUT:g} s"
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError:
        raise IdentityError(f"{label}: command not found: {name}") from None
    except PermissionError:
        raise IdentityError(f"{label}: cannot run {name}: permission denied") from None
    except OSError as err:
        raise IdentityError(f"{label}: cannot run {name}: {err.strerror}") from None
    assert proc.stdout is not None
    try:
        output = _read_capped(proc.stdout.fileno(), deadline, timed_out, f"output of {label} ({name})")
        try:
            returncode = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise IdentityError(timed_out) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if returncode < 0:
        raise IdentityError(f"{label}: {name} was killed by signal {-returncode}")
    if returncode != 0:
        raise IdentityError(f"{label}: {name} failed with exit status {returncode}")
    return output


def _read_capped(fd: int, deadline: float, timed_out: str, source: str) -> bytes:
    """Everything `fd` gives until end of file, at most MAX_IDENTITY_FILE_SIZE bytes, by `deadline`."""
    import selectors
    import time

    out = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise IdentityError(timed_out)
            if not selector.select(left):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return bytes(out)
            if len(out) + len(chunk) > MAX_IDENTITY_FILE_SIZE:
                raise InputError("output is larger than 1 MiB", file=source)
            out += chunk


def find_identities(
    files: Sequence[str | os.PathLike[str]] = (),
    environ: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> IdentitySet:
    """Pick the source of private keys. The first source present is used, and only it:

    1. `--identity FILE` values (all of them), 2. `SEALER_IDENTITY` (the key text itself, identity-file
    format), 3. `SEALER_IDENTITY_FILE`, 4. `SEALER_IDENTITY_COMMAND` (run once, no shell, stdout is an
    identity file), 5. every `identities/*.txt` in the user's config dir.

    Explicit beats ambient: a key named on the command line or for this process wins over one lying in
    the home directory, and sources are never mixed, so which key was used is always predictable.
    Nothing is read or run here; that happens on first use of the returned set. An empty or unset
    variable counts as absent. `config_dir` overrides `user_config_dir()` (for tests).

    With this process's own environment (`environ` None or `os.environ`), `protect_process` runs
    first: the process is hardened and the SEALER_IDENTITY* variables leave its environment (they
    are still found here, on this and later calls).
    """
    env = os.environ if environ is None else environ
    if env is os.environ:
        protect_process()

        def variable(name: str) -> str:
            return os.environ.get(name) or _taken.get(name, "")
    else:

        def variable(name: str) -> str:
            return env.get(name, "")

    if files:
        paths = [Path(f) for f in files]
        label = "--identity " + ", ".join(str(p) for p in paths)
        return IdentitySet(label, lambda: _read_files(paths))

    text = variable("SEALER_IDENTITY")
    if text.strip():
        return IdentitySet("SEALER_IDENTITY", lambda: parse_identity_file(text, "SEALER_IDENTITY"))

    file_name = variable("SEALER_IDENTITY_FILE")
    if file_name.strip():
        path = Path(file_name)
        return IdentitySet(f"SEALER_IDENTITY_FILE ({path})", lambda: read_identity_file(path))

    command = variable("SEALER_IDENTITY_COMMAND")
    if command.strip():
        argv = split_command(command, "SEALER_IDENTITY_COMMAND")
        return IdentitySet(f"SEALER_IDENTITY_COMMAND ({argv[0]})", lambda: _run_identity_command(argv))

    base = config_dir if config_dir is not None else user_config_dir(env)
    directory = base / "identities"
    shown = _display_path(directory, env)
    key_files = sorted(p for p in directory.glob("*.txt")) if directory.is_dir() else []
    if key_files:
        return IdentitySet(f"config dir {shown}", lambda: _read_files(key_files))

    return IdentitySet("no identity", None, tried=[*_SOURCE_NAMES, shown])


def _rfc3339_now() -> str:
    from datetime import datetime, timedelta

    now = datetime.now().astimezone().replace(microsecond=0)
    if now.utcoffset() == timedelta(0):
        return now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return now.isoformat()


def identity_file_text(identity: Identity, comment_lines: Sequence[str] = ()) -> str:
    """An identity file as age-keygen writes it: `# created`, `# public key`, `comment_lines`, the key."""
    for line in comment_lines:
        if "\n" in line or "\r" in line:
            raise ValueError("comment lines must not contain line breaks")
    lines = [f"# created: {_rfc3339_now()}", f"# public key: {identity.recipient.encode()}"]
    lines += [line if line.startswith("#") else f"# {line}" for line in comment_lines]
    lines.append(identity.encode())
    return "\n".join(lines) + "\n"


def write_identity_file(
    path: str | os.PathLike[str],
    identity: Identity,
    *,
    comment_lines: Sequence[str] = (),
    passphrase: bytes | None = None,
) -> Path:
    """Write an identity file as age-keygen does: mode 0600 from creation, atomic, never overwriting.

    The key goes to a fresh 0600 temp file in the same directory (so it is never briefly readable by
    others), is fsynced, then hard-linked to its name: unlike rename, link fails if the name exists, so
    an existing key is never replaced, even by a concurrent writer. `comment_lines` are extra `#` lines.
    With `passphrase`, the whole file is encrypted to it in age's scrypt format (armored, as
    `age -p -a` writes it), so `age -d` and sealer both open it, asking for the passphrase.
    """
    target = Path(path)
    text = identity_file_text(identity, comment_lines)
    if passphrase is not None:
        from ._interop.age import encrypt_identity_file

        content = encrypt_identity_file(text, passphrase.decode("utf-8", "replace"), armor=True)
    else:
        content = text.encode("utf-8")

    if target.exists() or target.is_symlink():
        raise IdentityError("identity file already exists; refusing to overwrite it", file=str(target))
    directory = target.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create directory: {err.strerror}", file=str(directory)) from None
    import secrets

    tmp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as err:
        raise InputError(f"cannot write identity file: {err.strerror}", file=str(target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise IdentityError("identity file already exists; refusing to overwrite it", file=str(target)) from None
        except OSError as err:
            if err.errno not in _NO_HARDLINKS:
                raise InputError(f"cannot write identity file: {err.strerror}", file=str(target)) from None
            # A filesystem without hard links: fall back to check-then-rename (racy only against
            # a concurrent writer of the same name).
            if target.exists() or target.is_symlink():
                raise IdentityError(
                    "identity file already exists; refusing to overwrite it", file=str(target)
                ) from None
            os.rename(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(directory)
    return target
