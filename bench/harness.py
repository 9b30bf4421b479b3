"""The benchmark harness: a throwaway sealer repository, timing helpers, rows and the table.

Prints one table and writes the same figures to bench/results.json. Each benchmark is a function
registered with `@benchmark`; it gets the shared `Workspace` (a throwaway repository with one
environment key, made once) and returns `Row`s. To add one, write a function and decorate it.

Stdlib only. Every sealer figure comes from the installed console script run as a fresh process,
as a user or a deploy job would run it.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
ENV_NAME = "bench"
TOKEN_RE = re.compile(r"ENC\[sealer\.[^\]]*\]")
IMPORTTIME_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")
# Modules of gitpython and its dependencies: `sealer unseal` must import none of them.
GIT_MODULES = ("git", "gitdb", "smmap")


# ---------------------------------------------------------------------------------------------
# Rows, registry, workspace


@dataclass
class Row:
    name: str
    value: float | str | None  # None: could not be measured (see note)
    unit: str
    peer: float | str | None = None
    peer_label: str = ""  # what the peer figure is, e.g. "age -a"
    ratio: float | None = None  # sealer / peer
    goal: str = ""  # e.g. "≤ 1.0 (ratio)"; empty: informational
    ok: bool | None = None  # goal met? None: no goal, or not measured
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # JSON only: samples, top imports, …


@dataclass
class Benchmark:
    name: str
    func: Callable[[Workspace], list[Row]]


BENCHMARKS: list[Benchmark] = []


def benchmark(func: Callable[[Workspace], list[Row]]) -> Callable[[Workspace], list[Row]]:
    """Register a benchmark; they run in the order they are defined."""
    BENCHMARKS.append(Benchmark(func.__name__.removeprefix("bench_"), func))
    return func


class Workspace:
    """A temporary sealer repository with environment `bench`, its key, and helpers to run tools."""

    def __init__(self, root: Path, repeat: int, warmup: int) -> None:
        self.root = root
        self.repeat = repeat
        self.warmup = warmup
        self.python = sys.executable
        self.sealer = _find_sealer()
        self.age = shutil.which("age")
        self.repo = root / "repo"
        self.deploy = self.repo / "deploy" / ENV_NAME
        self.key = root / f"{ENV_NAME}.key"  # outside the repository, as sealer asks
        self.env = _clean_env(root / "config")
        self.repo.mkdir()
        self.deploy.mkdir(parents=True)
        self.sealer_run("init", "--env", ENV_NAME, "--dir", str(self.repo))
        out = self.sealer_run("keys", "generate", ENV_NAME, "--out", str(self.key)).stdout
        found = re.search(r"\bage1[0-9a-z]+\b", out)
        if not found:
            raise SystemExit(f"bench: `sealer keys generate` printed no age1 recipient: {out!r}")
        self.recipient = found.group(0)

    def run(self, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            input=stdin.decode() if stdin is not None else None,
            capture_output=True,
            text=True,
            cwd=self.repo,
            env=self.env,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def sealer_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.sealer, *args)

    def secret_file(self, name: str, values: dict[str, str]) -> Path:
        """Write deploy/bench/NAME.yaml, a Secret with these stringData values, and seal it in place."""
        lines = [
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            f"  name: {name}",
            "  namespace: bench",
            "type: Opaque",
            "stringData:",
        ]
        lines += [f'  {k}: "{v}"' for k, v in values.items()]
        path = self.deploy / f"{name}.yaml"
        path.write_text("\n".join(lines) + "\n")
        self.sealer_run("seal", str(path.relative_to(self.repo)))
        return path

    @functools.cached_property
    def twenty(self) -> tuple[Path, dict[str, str]]:
        """The shared test file: a sealed Secret with 20 stringData values (32 random bytes, base64)."""
        values = {f"key{i:02d}": random_value() for i in range(20)}
        return self.secret_file("twenty", values), values

    def unseal_cmd(self, path: Path) -> list[str]:
        return [
            self.sealer,
            "unseal",
            str(path.relative_to(self.repo)),
            "--format",
            "k8s",
            "-i",
            str(self.key),
        ]

    def time_cmds(self, cmds: Sequence[Sequence[str]]) -> float:
        """Wall seconds to run these commands one after another, output discarded."""
        t0 = time.perf_counter()
        for cmd in cmds:
            rc = subprocess.run(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.repo,
                env=self.env,
                check=False,
            ).returncode
            if rc != 0:
                raise SystemExit(f"bench: {' '.join(cmd)} failed ({rc})")
        return time.perf_counter() - t0

    def compare(self, sides: dict[str, Sequence[Sequence[str]]]) -> dict[str, list[float]]:
        """Time each side `repeat` times after `warmup` runs, interleaved so drift hits all alike."""
        samples: dict[str, list[float]] = {k: [] for k in sides}
        for i in range(self.warmup + self.repeat):
            for k, cmds in sides.items():
                t = self.time_cmds(cmds)
                if i >= self.warmup:
                    samples[k].append(t)
        return samples

    def importtime(self, *args: str, runs: int = 5) -> Imports:
        """`python -X importtime ARGS`, `runs` times; the run with the median total is kept."""
        results = []
        for _ in range(runs):
            proc = subprocess.run(
                [self.python, "-X", "importtime", *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.repo,
                env=self.env,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"bench: python -X importtime {' '.join(args)} failed:\n{proc.stderr}")
            results.append(Imports.parse(proc.stderr))
        results.sort(key=lambda r: r.total_us)
        return results[len(results) // 2]


@dataclass
class Imports:
    """Parsed `-X importtime` output (microseconds)."""

    entries: list[tuple[str, int, int, int]]  # name, self µs, cumulative µs, depth

    @classmethod
    def parse(cls, stderr: str) -> Imports:
        entries = []
        for line in stderr.splitlines():
            m = IMPORTTIME_RE.match(line)
            if m:
                entries.append((m.group(4), int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2))
        return cls(entries)

    @property
    def total_us(self) -> int:
        return sum(cum for _, _, cum, depth in self.entries if depth == 0)

    @property
    def modules(self) -> set[str]:
        return {name for name, *_ in self.entries}

    def cumulative(self, name: str) -> int | None:
        return next((cum for n, _, cum, _ in self.entries if n == name), None)

    def top_self(self, n: int = 12) -> list[dict[str, Any]]:
        top = sorted(self.entries, key=lambda e: e[1], reverse=True)[:n]
        return [{"module": m, "self_ms": s / 1000, "cumulative_ms": c / 1000} for m, s, c, _ in top]

    def top_cumulative(self, n: int = 12, prefix: str = "") -> list[dict[str, Any]]:
        pick = [e for e in self.entries if e[0].startswith(prefix)]
        top = sorted(pick, key=lambda e: e[2], reverse=True)[:n]
        return [{"module": m, "self_ms": s / 1000, "cumulative_ms": c / 1000} for m, s, c, _ in top]


def _find_sealer() -> str:
    """The console script installed next to this interpreter (the venv's bin), else on PATH."""
    here = Path(sys.executable).parent / "sealer"
    if here.exists():
        return str(here)
    found = shutil.which("sealer")
    if not found:
        raise SystemExit("bench: the `sealer` console script is not installed (make bench installs it)")
    return found


def _clean_env(config_dir: Path) -> dict[str, str]:
    """The caller's environment without sealer identities or Python knobs that change timings."""
    drop = (
        "SEALER_",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONDEVMODE",
        "PYTHONTRACEMALLOC",
        "PYTHONMALLOC",
        "PYTHONWARNINGS",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONINSPECT",
        "PYTHONVERBOSE",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["SEALER_CONFIG_DIR"] = str(config_dir)
    return env


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def random_value() -> str:
    """32 random bytes as base64 text (44 characters), as a Secret's stringData value."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# ---------------------------------------------------------------------------------------------
# Output


def _fmt(x: float | str | None, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        x = f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return f"{x} {unit}".strip()


def table(rows: list[Row]) -> str:
    head = ("benchmark", "sealer", "peer", "ratio", "goal")
    body = []
    for r in rows:
        if r.peer is not None:
            peer = f"{_fmt(r.peer, r.unit)} ({r.peer_label})" if r.peer_label else _fmt(r.peer, r.unit)
        else:
            peer = f"n/a ({r.note})" if r.peer_label and r.note else "n/a" if r.peer_label else "-"
        verdict = {True: "ok", False: "MISSED", None: "n/a"}[r.ok]
        goal = f"{r.goal} {verdict}" if r.goal else "-"
        body.append(
            (
                r.name,
                f"n/a ({r.note})" if r.value is None and r.note else _fmt(r.value, r.unit),
                peer,
                f"{r.ratio:.2f}" if r.ratio is not None else "-",
                goal,
            )
        )
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    out += [line.format(*b) for b in body]
    return "\n".join(out)


def version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def tag(row: Row, bench: str) -> Row:
    row.extra = {"benchmark": bench, **row.extra}
    return row
