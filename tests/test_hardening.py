"""Process hardening of every process that holds a private key (issue 14, item 4), with real parts:
the real CLI and controller by subprocess, real `cmd:` target children reading
`/proc/$PPID/environ`, real core dumps (SIGQUIT) and the kernel's own accounting of peak memory.

- The key leaves the environment: `del os.environ[...]` alone is not enough, because
  /proc/PID/environ shows the environment block the process started with; these tests read that
  file from a child, as an attacker's `cmd:` target would.
- No core dump: PR_SET_DUMPABLE 0 and RLIMIT_CORE 0 in the CLI, the controller and its workers.
  The kernel writes a `core` file into the process's working directory when
  /proc/sys/kernel/core_pattern is a plain name; a control process proves that it does here (where
  the kernel writes no core file at all, even for an unhardened process, these two tests skip: it is
  the machine, not sealer, that cannot show the difference).
- The SEALER_IDENTITY_COMMAND output cap holds while reading.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure
from test_passphrase import WORDS, Terminal, private, protect

SPY = """#!{python}
import json, os, sys
parent = os.getppid()
def read(name):
    try:
        with open(f"/proc/{{parent}}/{{name}}", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError as e:
        return f"unreadable: {{e.strerror}}"
report = {{"environ": read("environ"), "limits": read("limits"), "own_env": sorted(os.environ)}}
with open({out!r}, "w") as f:
    json.dump(report, f)
{tail}
"""


def spy(path: Path, out: Path, tail: str = "sys.stdin.buffer.read()") -> Path:
    """A program that records what it can see of its parent: /proc/PPID/environ and limits."""
    path.write_text(SPY.format(python=sys.executable, out=str(out), tail=tail))
    path.chmod(0o700)
    return path


def controller(repo: Repo, target: str, *extra: str) -> list[str]:
    args = [SEALER, "controller", "--repo", str(repo.root), "--env", "prod", "--target", target]
    return [*args, "--state-dir", str(repo.tmp / "state"), "--listen", "none", *extra]


def variables(environ: str) -> list[str]:
    """The names in a /proc/PID/environ text."""
    return [entry.split("=", 1)[0] for entry in environ.split("\0") if entry]


def key_text(repo: Repo) -> str:
    return next(line for line in repo.keys["prod"].read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))


def core_limit(limits: str) -> str:
    """The soft limit from a /proc/PID/limits text."""
    line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    return line.split()[4]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo.create(tmp_path, "prod", keys=("prod",))
    r.seal("deploy/prod/db.yaml", SECRET)
    r.git_init(commit="initial")
    return r


# --- the key out of the environment --------------------------------------------------------------------


@pytest.mark.parametrize("source", ["SEALER_IDENTITY", "SEALER_IDENTITY_FILE", "SEALER_IDENTITY_COMMAND"])
def test_a_cmd_target_child_cannot_read_the_key_from_the_controllers_environ(repo: Repo, source: str) -> None:
    """Before: `cat /proc/$PPID/environ` in a cmd: target printed SEALER_IDENTITY=AGE-SECRET-KEY-1…"""
    seen = repo.tmp / "seen.json"
    target = spy(repo.tmp / "target", seen)
    printer = repo.tmp / "vault"
    printer.write_text(f"#!/bin/sh\ncat '{repo.keys['prod']}'\n")
    printer.chmod(0o700)
    value = {
        "SEALER_IDENTITY": key_text(repo),
        "SEALER_IDENTITY_FILE": str(repo.keys["prod"]),
        "SEALER_IDENTITY_COMMAND": f"{printer} --token CANARY-vault-token",
    }[source]
    r = subprocess.run(
        controller(repo, f"cmd:{target}", "--once"),
        capture_output=True,
        text=True,
        env=repo.env({source: value}),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(seen.read_text())
    assert not report["environ"].startswith("unreadable"), report["environ"]  # root reads it: still clean
    assert value not in report["environ"] and "AGE-SECRET-KEY" not in report["environ"]
    assert not [n for n in variables(report["environ"]) if n.startswith("SEALER_IDENTITY")]
    assert "CANARY" not in report["environ"]
    assert not [k for k in report["own_env"] if k.startswith("SEALER_IDENTITY")]
    assert core_limit(report["limits"]) == "0"


def test_the_cli_takes_the_key_variables_out_of_its_environment(repo: Repo) -> None:
    """The vault command (a child of the CLI, as a git hook or any child would be) does not find
    SEALER_IDENTITY_COMMAND, with the token in it, in its parent's environment."""
    seen = repo.tmp / "seen.json"
    vault = spy(repo.tmp / "vault", seen, tail=f"sys.stdout.write(open({str(repo.keys['prod'])!r}).read())")
    command = f"{vault} --token CANARY-vault-token"
    r = repo.run("unseal", "deploy/prod/db.yaml", "--format", "dotenv", env={"SEALER_IDENTITY_COMMAND": command})
    assert r.returncode == 0 and "password=pw-CANARY-7f3a9" in r.stdout, r.stderr
    report = json.loads(seen.read_text())
    assert "CANARY-vault-token" not in report["environ"]
    assert not [n for n in variables(report["environ"]) if n.startswith("SEALER_IDENTITY")]
    assert core_limit(report["limits"]) == "0"


class Running:
    """A long-running process, its stderr lines collected as they come."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
            preexec_fn=allow_core_dumps,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            self._new.put(line)

    def wait_line(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        for line in list(self.lines):
            if needle in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self._new.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r}:\n{''.join(self.lines)}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def test_the_controller_keeps_finding_a_key_file_that_arrives_late(repo: Repo) -> None:
    """SEALER_IDENTITY_FILE leaves the environment at start-up, yet the controller's retries still
    use it: a mounted Secret that appears after start-up is loaded."""
    late = repo.tmp / "mounted" / "key.txt"
    ctl = Running(
        controller(repo, f"dir:{repo.tmp / 'out'}", "--interval", "200ms", "--max-backoff", "300ms"),
        env=repo.env({"SEALER_IDENTITY_FILE": str(late)}),
        cwd=repo.tmp,
    )
    try:
        ctl.wait_line("reason=identity")
        environ = Path(f"/proc/{ctl.proc.pid}/environ").read_bytes()
        assert "SEALER_IDENTITY_FILE" not in variables(environ.decode()) and str(late).encode() not in environ
        late.parent.mkdir()
        private(late, repo.keys["prod"].read_text())
        ctl.wait_line("event=keys-loaded")
        ctl.wait_line("result=applied")
    finally:
        ctl.close()


# --- no core dumps -------------------------------------------------------------------------------------


def allow_core_dumps() -> None:
    """In the child before exec: the soft core limit as high as the hard one (the test's own
    process may have lowered its soft limit by loading a key in-process)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def cores(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name == "core" or p.name.startswith("core."))


@pytest.fixture
def dumps(tmp_path: Path) -> Path:
    """A working directory where this machine's kernel demonstrably writes core files."""
    where = tmp_path / "dumps"
    where.mkdir()
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        reason = f"core_pattern is {pattern!r}: core files do not land in the working directory"
        pytest.skip(reason)
    control = subprocess.run(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGQUIT)"],
        cwd=where,
        preexec_fn=allow_core_dumps,
        timeout=60,
    )
    assert control.returncode == -signal.SIGQUIT
    found = cores(where)
    if not found:
        reason = "this machine writes no core file even for an unhardened process"
        pytest.skip(reason)
    for p in found:
        p.unlink()
    return where


def quit_and_check(pid: int, where: Path, wait: Callable[[], object]) -> None:
    """SIGQUIT (whose default action is a core dump) to `pid`; once it is gone, no core file.

    Each guard is checked alone: the soft core limit is 0, and once it is raised again from
    outside (prlimit), PR_SET_DUMPABLE 0 still keeps the kernel from writing a dump."""
    assert core_limit(Path(f"/proc/{pid}/limits").read_text()) == "0", pid
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.prlimit(pid, resource.RLIMIT_CORE, (hard, hard))
    os.kill(pid, signal.SIGQUIT)
    wait()
    assert cores(where) == [], f"process {pid} left a core dump"


def test_the_controller_and_its_workers_leave_no_core_dump(repo: Repo, dumps: Path) -> None:
    """Before: SIGQUIT of the controller (or a worker) wrote a core file holding the raw key."""
    for i in range(40):  # enough files for the worker pool (Pool.MIN_JOBS)
        repo.write(f"deploy/prod/s{i:02d}.yaml", SECRET.replace("name: db", f"name: s{i:02d}"))
    repo.ok("seal", *(f"deploy/prod/s{i:02d}.yaml" for i in range(40)))
    repo.commit("many")
    ctl = Running(
        controller(repo, f"dir:{repo.tmp / 'out'}", "--workers", "2", "--interval", "1h"),
        env=repo.env({"SEALER_IDENTITY": key_text(repo)}),
        cwd=dumps,
    )
    try:
        ctl.wait_line("result=applied")
        workers = pool_workers(ctl.proc.pid)
        assert workers, "the controller started no worker processes"

        def worker_gone() -> None:
            deadline = time.monotonic() + 30
            while Path(f"/proc/{workers[0]}").exists() and not _zombie(workers[0]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)  # a dump, if any, is written before the parent can reap

        quit_and_check(workers[0], dumps, worker_gone)
        quit_and_check(ctl.proc.pid, dumps, lambda: ctl.proc.wait(timeout=30))
        assert ctl.proc.returncode == -signal.SIGQUIT
    finally:
        ctl.close()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def pool_workers(controller: int) -> list[int]:
    """The controller's pool workers: the children of its forkserver."""
    for child in _children(controller):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmdline:
            return _children(child)
    return []


def test_the_cli_holding_a_key_leaves_no_core_dump_and_no_key_in_its_environ(repo: Repo, dumps: Path) -> None:
    """`unseal -i plain.txt -i protected.age` holds the first key while it asks for the second's
    passphrase; SEALER_IDENTITY is in its environment too. Neither is in /proc/PID/environ, and a
    SIGQUIT then leaves no core file."""
    protected = protect(repo)
    env = repo.env({"SEALER_IDENTITY": key_text(repo)})
    argv = [SEALER, "unseal", str(repo.root / "deploy/prod/db.yaml"), "--format", "dotenv"]
    argv += ["-i", str(repo.keys["prod"]), "-i", str(protected)]
    term = Terminal([sys.executable, "-c", RAISE_CORE_LIMIT_AND_EXEC, *argv], cwd=dumps, env=env)
    term.expect("passphrase for ")
    environ = Path(f"/proc/{term.pid}/environ").read_bytes()
    assert key_text(repo).encode() not in environ and "SEALER_IDENTITY" not in variables(environ.decode())
    codes: list[int] = []
    quit_and_check(term.pid, dumps, lambda: codes.append(term.wait()))
    assert codes == [-signal.SIGQUIT]
    assert WORDS not in term.text


RAISE_CORE_LIMIT_AND_EXEC = (
    "import os, resource, sys; h = resource.getrlimit(resource.RLIMIT_CORE)[1];"
    " resource.setrlimit(resource.RLIMIT_CORE, (h, h)); os.execv(sys.argv[1], sys.argv[1:])"
)


# --- SEALER_IDENTITY_COMMAND: the 1 MiB cap while streaming -----------------------------------------------


def peak_rss_run(repo: Repo, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run the CLI through a tiny wrapper so that wait4 gives the CLI's own peak RSS (KiB)."""
    code = (
        "import json, resource, subprocess, sys, time; t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True);"
        "print(json.dumps([p.returncode, p.stderr.decode(), time.perf_counter() - t,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, SEALER, *args],
        cwd=repo.root,
        env=repo.env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    rc, err, wall, rss = json.loads(r.stdout)
    return subprocess.CompletedProcess(args, rc, "", err), wall, rss


def test_identity_command_output_is_capped_while_it_streams(repo: Repo) -> None:
    """Before: all 50 MB were buffered (peak RSS ~130 MiB) and only then refused."""
    small = repo.tmp / "small"
    small.write_text(f"#!/bin/sh\ncat '{repo.keys['prod']}'\n")
    big = repo.tmp / "big"
    big.write_text("#!/bin/sh\nhead -c 50000000 /dev/zero | tr '\\0' A\n")
    for script in (small, big):
        script.chmod(0o700)
    args = ("unseal", "deploy/prod/db.yaml", "--format", "dotenv")
    ok, _, baseline = peak_rss_run(repo, {"SEALER_IDENTITY_COMMAND": str(small)}, *args)
    assert ok.returncode == 0, ok.stderr
    r, wall, rss = peak_rss_run(repo, {"SEALER_IDENTITY_COMMAND": str(big)}, *args)
    assert_clean_failure(r, f"output of SEALER_IDENTITY_COMMAND ({big})", "larger than 1 MiB")
    assert rss < baseline + 16 * 1024, (rss, baseline)  # KiB: a few MiB of buffers at most
    assert wall < 15


def test_identity_command_that_never_stops_printing_is_killed(repo: Repo) -> None:
    """`yes` never ends: before, it was read until the 30 s timeout (gigabytes); now it is killed
    as soon as it passes 1 MiB."""
    endless = repo.tmp / "endless"
    endless.write_text("#!/bin/sh\nexec yes AGE-SECRET-KEY-CANARY\n")
    endless.chmod(0o700)
    started = time.monotonic()
    r = repo.run("unseal", "deploy/prod/db.yaml", env={"SEALER_IDENTITY_COMMAND": str(endless)})
    assert_clean_failure(r, "larger than 1 MiB")
    assert time.monotonic() - started < 10
