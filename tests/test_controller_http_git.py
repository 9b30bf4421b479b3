"""The controller over HTTP and git (issue 14, item 5).

A client that resets its connection costs one log line, not a traceback; the per-file label of
the error metric has a bounded number of values; a hanging remote is given up after
`--fetch-timeout`, and SIGTERM kills a running fetch (with its transport helper) instead of waiting
for it. Real processes: the CLI as a running controller with its HTTP server on 127.0.0.1, real git
fetching from a remote that never answers (a socket on 127.0.0.1 that accepts and stays silent).
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SEALER
from test_controller import GitOps, Running

LOGFMT = re.compile(r"time=\S+Z level=(info|warn|error) event=\S+( \w+=(\"([^\"\\]|\\.)*\"|\S+))*\n")
BROKEN = "sealer:\n  version: 1\n  env: prod\nstringData: [unclosed\n"


@pytest.fixture(scope="module")
def http_template(tmp_path_factory: pytest.TempPathFactory) -> GitOps:
    return GitOps(tmp_path_factory.mktemp("http"))


@pytest.fixture
def ops(tmp_path: Path, http_template: GitOps) -> GitOps:
    return GitOps(tmp_path, http_template)


@pytest.fixture
def running(ops: GitOps) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*extra: str, repo: str | None = None) -> Running:
        args = ops.controller_args("--interval", "0.2s", "--max-backoff", "0.5s", "--listen", "127.0.0.1:0", *extra)
        if repo is not None:
            args[args.index("--repo") + 1] = repo
        r = Running(args, ops.env())
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


@pytest.fixture
def silent_remote() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(30)
    with contextlib.closing(srv):
        yield srv


def assert_logfmt_only(lines: list[str]) -> None:
    for line in lines:
        assert LOGFMT.fullmatch(line), f"not one logfmt event: {line!r}\n{''.join(lines)}"


def reset_mid_request(host: str, port: int) -> None:
    """Send half a request, then close with RST (SO_LINGER 0): the server is still reading it."""
    with socket.create_connection((host, port), timeout=5) as c:
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.1)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_client_resetting_its_connection_is_one_log_line(running: Callable[..., Running]) -> None:
    ctl = running()
    ctl.until("ready", ctl.ready)
    for _ in range(3):
        reset_mid_request(ctl.host, ctl.port)
    ctl.until("three http-error events", lambda: sum(" event=http-error " in ln for ln in ctl.lines) >= 3)
    assert ctl.get("/healthz")[0] == 200 and ctl.ready()  # still serving
    assert ctl.stop() == 0
    errors = [ln for ln in ctl.lines if " event=http-error " in ln]
    assert all("level=warn" in ln and "error=ConnectionResetError" in ln and "client=127.0.0.1" in ln for ln in errors)
    assert_logfmt_only(ctl.lines)  # no traceback, no line that is not an event


def test_failing_files_give_a_bounded_number_of_metric_series(ops: GitOps, running: Callable[..., Running]) -> None:
    from sealer._controller.http import MAX_FILE_SERIES

    ctl = running()
    ctl.until("ready", ctl.ready)
    n = MAX_FILE_SERIES + 10
    for i in range(n):
        ops.write(f"deploy/prod/broken{i:03d}.yaml", BROKEN)
    ops.commit(f"{n} malformed files")

    def file_series() -> set[tuple[str, str]]:
        return {
            (dict(labels)["reason"], dict(labels)["file"])
            for name, labels in ctl.metrics()
            if name == "sealer_sync_errors_total" and dict(labels)["file"]
        }

    ctl.until("failures counted", lambda: len(file_series()) >= MAX_FILE_SERIES)
    first = file_series()
    assert len(first) == MAX_FILE_SERIES and {r for r, _ in first} == {"input"}
    assert f"deploy/prod/broken{n - 1:03d}.yaml" in {f for _, f in first}  # the most recent are kept

    for i in range(n):  # a rename: every failing file gets a new path
        (ops.root / f"deploy/prod/broken{i:03d}.yaml").rename(ops.root / f"deploy/prod/renamed{i:03d}.yaml")
    ops.commit("renamed")
    ctl.until("the renamed files counted", lambda: any("renamed" in f for _, f in file_series()))
    ctl.wait_line("file=deploy/prod/renamed")
    time.sleep(0.5)  # a few more retries
    after = file_series()
    assert len(after) == MAX_FILE_SERIES and all("renamed" in f for _, f in after)
    families = {name for name, _ in ctl.metrics()}
    assert "sealer_sync_errors_total" in families
    ctl.wait_line("file=deploy/prod/renamed000.yaml")  # the log still names every file
    assert ctl.stop() == 0


def test_fetch_timeout_is_a_flag(ops: GitOps, silent_remote: socket.socket) -> None:
    port = silent_remote.getsockname()[1]
    args = [SEALER, "controller", "--repo", f"git://127.0.0.1:{port}/team/gitops.git", "--env", "prod"]
    args += ["--target", f"dir:{ops.out}", "--state-dir", str(ops.state), "-i", str(ops.keys["prod"]), "--once"]
    r = subprocess.run([*args, "--fetch-timeout", "1s"], capture_output=True, text=True, env=ops.env(), timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("sealer: error: sync failed (fetch): ") and "no answer within 1 s" in lines[-1]
    assert "--fetch-timeout" in lines[-1] and "Traceback" not in r.stderr
    assert_logfmt_only([ln + "\n" for ln in lines[:-1]])
    assert not ops.out.exists()

    env = ops.env({"SEALER_CONTROLLER_FETCH_TIMEOUT": "500ms"})
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "no answer within 0.5 s" in r.stderr
    r = subprocess.run([*args, "--fetch-timeout", "never"], capture_output=True, text=True, env=ops.env(), timeout=60)
    assert r.returncode == 2 and "'never' is not a duration" in r.stderr and "Traceback" not in r.stderr


def test_sigterm_kills_a_hanging_fetch_and_its_helper(
    ops: GitOps, running: Callable[..., Running], silent_remote: socket.socket
) -> None:
    port = silent_remote.getsockname()[1]
    ctl = running(repo=f"http://127.0.0.1:{port}/team/gitops.git")  # fetch timeout: the default 120 s
    conn, _ = silent_remote.accept()  # git-remote-http is waiting for our answer: the fetch is under way
    with contextlib.closing(conn):
        ctl.proc.send_signal(signal.SIGTERM)
        code = ctl.proc.wait(timeout=30)  # not the 120 s the fetch could still take
        assert code == 0
        conn.settimeout(10)
        assert conn.recv(65536) is not None  # the request line(s) curl sent, or the end
        while conn.recv(65536):
            pass  # the end of the stream: the helper holding the connection is gone
    ctl._reader.join(timeout=10)
    events = [ln.split(" event=")[1].split()[0] for ln in ctl.lines if " event=" in ln]
    assert events[-4:] == ["signal", "sync-error", "sync", "stop"], ctl.lines
    assert "cancelled: the controller is stopping" in ctl.lines[-3]
    assert_logfmt_only(ctl.lines)
