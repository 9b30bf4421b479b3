"""sealer._pool: worker processes die with their parent, whatever the start method.

Real processes and real signals: a parent that made a pool (directly, and as `sealer controller`
with `--workers 2`) is killed with SIGKILL, and every process it left behind must be gone within
seconds. The workers hold private keys and ignore SIGTERM; nothing else would ever end them.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

SEALER = str(Path(sys.executable).parent / "sealer")

CHILD = textwrap.dedent(
    """
    import multiprocessing, signal, sys, time
    from sealer._pool import worker_pool

    # Workers that ignore SIGTERM, as the controller's do.
    pool = worker_pool(2, signal.signal, (signal.SIGTERM, signal.SIG_IGN), start=sys.argv[1])
    for f in [pool.submit(time.sleep, 0.3) for _ in range(2)]:  # two at once: both workers start
        f.result()
    print(*(p.pid for p in multiprocessing.active_children()), flush=True)
    time.sleep(600)
    """
)


def _stat(pid: int | str) -> list[str] | None:
    """state, ppid, pgrp, ... of a process; None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie holds no memory, no keys


def group(pgid: int) -> dict[int, int]:
    """pid -> parent of the live processes in a process group."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            fields = _stat(d.name)
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                out[int(d.name)] = int(fields[1])
    return out


def wait_gone(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@contextlib.contextmanager
def session(args: list[str], **kw: object) -> Iterator[subprocess.Popen[str]]:
    """A process in a new session; whatever is left of it, at the end, is killed."""
    p = subprocess.Popen(args, start_new_session=True, text=True, **kw)  # type: ignore[call-overload]
    try:
        yield p
    finally:
        for pid in group(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if p.poll() is None:
            p.kill()
        p.wait(30)


def read_line(p: subprocess.Popen[str], timeout: float = 60) -> str:
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    assert ready, "the child printed nothing"
    return p.stdout.readline()


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_workers_die_with_a_parent_killed_with_sigkill(start: str) -> None:
    with session([sys.executable, "-c", CHILD, start], stdout=subprocess.PIPE) as p:
        workers = {int(w) for w in read_line(p).split()}
        assert len(workers) == 2 and all(alive(w) for w in workers)
        left_behind = set(group(p.pid)) - {p.pid}  # the workers, and a forkserver, a resource tracker
        assert workers <= left_behind
        if start == "forkserver":
            assert {group(p.pid)[w] for w in workers} != {p.pid}, "the workers should be the forkserver's"

        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
        assert wait_gone(left_behind) == set(), f"processes outlived the parent they were started by ({start})"


def test_controller_workers_die_with_the_controller(tmp_path: Path) -> None:
    """The controller bug: its pool outlived a kill -9, four processes holding the key per restart."""
    from sealer._config import load_config
    from sealer._controller.work import Pool
    from sealer._seal import seal_text, target

    root, key, out = tmp_path / "repo", tmp_path / "prod.txt", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    env["SEALER_CONFIG_DIR"] = str(tmp_path / "home")
    root.mkdir()
    for args in (["init", "--env", "prod"], ["keys", "generate", "prod", "--out", str(key)]):
        subprocess.run([SEALER, *args], cwd=root, env=env, check=True, capture_output=True, timeout=60)
    cfg = load_config(root)
    for i in range(Pool.MIN_JOBS + 8):  # enough files for a full render to use the workers
        rel = f"deploy/prod/s{i:03d}.yaml"
        doc = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i:03d}\nstringData:\n  a: value-{i}\n"
        t = target(cfg, rel, None)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(seal_text(doc, rel, env=t.env, recipients=t.recipients)[0])
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "dev")
        cw.set_value("user", "email", "dev@example.invalid")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "sealed")

    args = [SEALER, "controller", "--repo", str(root), "--env", "prod", "--target", f"dir:{out}"]
    args += ["--state-dir", str(tmp_path / "state"), "-i", str(key), "--workers", "2", "--interval", "1h"]
    with (tmp_path / "controller.log").open("w") as log, session(args, env=env, stderr=log) as p:
        deadline = time.monotonic() + 60
        while not (out / ".sealer-output").exists():
            assert p.poll() is None, (tmp_path / "controller.log").read_text()
            assert time.monotonic() < deadline, "no render within 60 s"
            time.sleep(0.05)
        procs = group(p.pid)
        children = {pid for pid, parent in procs.items() if parent == p.pid}
        workers = {pid for pid, parent in procs.items() if parent in children}  # forked by the forkserver
        assert len(workers) == 2, f"expected the forkserver's 2 workers under {p.pid}: {procs}"

        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
        survivors = wait_gone(set(procs) - {p.pid})
        assert survivors == set(), f"{survivors} outlived the killed controller (workers: {workers})"
