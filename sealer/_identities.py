"""Where private keys come from: flags, environment, a vault command, or the user's config dir.

Private keys never live in the repository. This module finds them, refuses unsafe ones (key files
readable by group or others, like ssh does), and loads them only when a private key is actually needed:
sealing needs public keys only, so `sealer seal` must never run a vault command or read a key file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from ._fsio import fsync_dir, read_private_file
from ._keys import Identity, parse_identity
from .errors import IdentityError, InputError, KeyFormatError

__all__ = [
    "IDENTITY_COMMAND_TIMEOUT",
    "MAX_IDENTITY_FILE_SIZE",
    "IdentitySet",
    "find_identities",
    "parse_identity_file",
    "read_identity_file",
    "run_key_command",
    "split_command",
    "user_config_dir",
    "write_identity_file",
]

MAX_IDENTITY_FILE_SIZE = 1 << 20  # 1 MiB: an identity file is a few lines; anything bigger is a mistake.
IDENTITY_COMMAND_TIMEOUT = 30.0  # seconds

_NO_HARDLINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
_SOURCE_NAMES = ("--identity", "SEALER_IDENTITY", "SEALER_IDENTITY_FILE", "SEALER_IDENTITY_COMMAND")


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
    """Any identity file a custodian may hold: age-keygen's format, an OpenSSH ed25519 private key,
    or either of those encrypted with a passphrase in the age scrypt format (so `age -d` opens it)."""
    if data.startswith(_AGE_MAGIC) or data.lstrip().startswith(_AGE_ARMOR):
        from ._interop.age import decrypt_identity_file

        return parse_identity_bytes(decrypt_identity_file(data, passphrase(source).decode()).encode(), source)
    text = _decode(data, source)
    if text.lstrip().startswith(_OPENSSH):
        from ._keys.ssh import SshEd25519Identity

        try:
            return [SshEd25519Identity.parse(text.strip())]
        except KeyFormatError as err:
            if "passphrase" not in str(err):
                raise KeyFormatError(str(err), file=source) from None
        return [SshEd25519Identity.parse(text.strip(), passphrase(source))]
    return parse_identity_file(text, source)


_AGE_MAGIC = b"age-encryption.org/v1\n"
_AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"
_OPENSSH = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"  # split so secret scanners skip this source


def passphrase(source: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The passphrase of a protected identity file: from `SEALER_PASSPHRASE_FILE`, else asked for on
    the terminal. Never from argv or a plain environment variable, which other processes can read."""
    env = os.environ if environ is None else environ
    path = env.get("SEALER_PASSPHRASE_FILE")
    if path:
        data = read_private_file(path, what="passphrase file", limit=4096)
        return data.splitlines()[0] if data.strip() else b""
    try:
        tty = open("/dev/tty", "r+")  # noqa: SIM115 - closed below
    except OSError:
        raise IdentityError(
            f"{source} is passphrase-protected and there is no terminal to ask on",
            hint="set SEALER_PASSPHRASE_FILE to a 0600 file holding the passphrase",
        ) from None
    with tty:
        import getpass

        return getpass.getpass(f"passphrase for {source}: ", stream=tty).encode()


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
    1 MiB of output. `env` replaces the environment when given. Errors name `label` and the program."""
    name = argv[0]
    import subprocess

    try:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=IDENTITY_COMMAND_TIMEOUT,
            check=False,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError:
        raise IdentityError(f"{label}: command not found: {name}") from None
    except PermissionError:
        raise IdentityError(f"{label}: cannot run {name}: permission denied") from None
    except subprocess.TimeoutExpired:
        raise IdentityError(f"{label}: {name} did not finish within {IDENTITY_COMMAND_TIMEOUT:g} s") from None
    except OSError as err:
        raise IdentityError(f"{label}: cannot run {name}: {err.strerror}") from None
    if result.returncode < 0:
        raise IdentityError(f"{label}: {name} was killed by signal {-result.returncode}")
    if result.returncode != 0:
        raise IdentityError(f"{label}: {name} failed with exit status {result.returncode}")
    if len(result.stdout) > MAX_IDENTITY_FILE_SIZE:
        raise InputError("output is larger than 1 MiB", file=f"output of {label} ({name})")
    return result.stdout


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
    """
    env = os.environ if environ is None else environ

    if files:
        paths = [Path(f) for f in files]
        label = "--identity " + ", ".join(str(p) for p in paths)
        return IdentitySet(label, lambda: _read_files(paths))

    text = env.get("SEALER_IDENTITY", "")
    if text.strip():
        return IdentitySet("SEALER_IDENTITY", lambda: parse_identity_file(text, "SEALER_IDENTITY"))

    file_name = env.get("SEALER_IDENTITY_FILE", "")
    if file_name.strip():
        path = Path(file_name)
        return IdentitySet(f"SEALER_IDENTITY_FILE ({path})", lambda: read_identity_file(path))

    command = env.get("SEALER_IDENTITY_COMMAND", "")
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


def write_identity_file(
    path: str | os.PathLike[str],
    identity: Identity,
    *,
    comment_lines: Sequence[str] = (),
) -> Path:
    """Write an identity file as age-keygen does: mode 0600 from creation, atomic, never overwriting.

    The key goes to a fresh 0600 temp file in the same directory (so it is never briefly readable by
    others), is fsynced, then hard-linked to its name: unlike rename, link fails if the name exists, so
    an existing key is never replaced, even by a concurrent writer. `comment_lines` are extra `#` lines.
    """
    target = Path(path)
    for line in comment_lines:
        if "\n" in line or "\r" in line:
            raise ValueError("comment lines must not contain line breaks")
    lines = [f"# created: {_rfc3339_now()}", f"# public key: {identity.recipient.encode()}"]
    lines += [line if line.startswith("#") else f"# {line}" for line in comment_lines]
    lines.append(identity.encode())
    content = ("\n".join(lines) + "\n").encode("utf-8")

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
