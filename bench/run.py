"""sealer benchmarks: `make bench` (or `.venv/bin/python bench/run.py`).

Prints one table and writes the same figures to bench/results.json. Each benchmark is a function
registered with `@benchmark`; it gets the shared `Workspace` (a throwaway repository with one
environment key, made once) and returns `Row`s. To add one, write a function and decorate it.

Stdlib only. Every sealer figure comes from the installed console script run as a fresh process,
as a user or a deploy job would run it.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
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
        values = {f"key{i:02d}": _random_value() for i in range(20)}
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


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _random_value() -> str:
    """32 random bytes as base64 text (44 characters), as a Secret's stringData value."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# ---------------------------------------------------------------------------------------------
# Benchmarks


@benchmark
def bench_token_size(ws: Workspace) -> list[Row]:
    """Length of one sealed token: a 32-byte secret, one recipient. Peer: the same value as `age -a`."""
    value = secrets.token_urlsafe(24)  # 32 random ASCII characters: a 32-byte stringData value
    assert len(value.encode()) == 32
    path = ws.secret_file("token-size", {"value": value})
    tokens = TOKEN_RE.findall(path.read_text())
    if len(tokens) != 1:
        raise SystemExit(f"bench: expected one token in {path}, found {len(tokens)}")
    size = len(tokens[0])
    peer: int | None = None
    if ws.age:
        armored = ws.run(ws.age, "-r", ws.recipient, "-a", stdin=value.encode()).stdout
        peer = len(armored.strip())
    return [
        Row(
            name="token size (32-byte value, 1 recipient)",
            value=size,
            unit="chars",
            peer=peer,
            peer_label="age -a",
            ratio=round(size / peer, 2) if peer else None,
            goal="≤ 160 chars",
            ok=size <= 160,
            note="" if ws.age else "age CLI missing",
            extra={"token": tokens[0]},
        )
    ]


@benchmark
def bench_cold_unseal(ws: Workspace) -> list[Row]:
    """Cold `sealer unseal` of a 20-value Secret vs 20 `age -d` processes; and the interpreter floor."""
    path, values = ws.twenty
    n = len(values)
    unseal = ws.unseal_cmd(path)

    # Correctness first: the figures mean nothing if either side does not decrypt.
    out = ws.run(*unseal).stdout
    missing = [k for k, v in values.items() if v not in out]
    if missing:
        raise SystemExit(f"bench: sealer unseal output lacks the values of {missing}")

    floor_cmd = [[ws.python, "-c", "pass"]]
    sides: dict[str, list[list[str]]] = {"sealer": [unseal], "floor": floor_cmd}
    if ws.age:
        age_dir = ws.root / "age"
        age_dir.mkdir()
        age_cmds = []
        for k, v in values.items():
            f = age_dir / f"{k}.age"
            ws.run(ws.age, "-r", ws.recipient, "-o", str(f), stdin=v.encode())
            if ws.run(ws.age, "-d", "-i", str(ws.key), str(f)).stdout != v:
                raise SystemExit(f"bench: age -d of {f} did not give the value back")
            age_cmds.append([ws.age, "-d", "-i", str(ws.key), str(f)])
        sides["age"] = age_cmds

    samples = ws.compare(sides)
    med = {k: statistics.median(v) for k, v in samples.items()}
    spread = {
        k: {"min_ms": _ms(min(v)), "max_ms": _ms(max(v)), "samples_ms": [_ms(x) for x in v]}
        for k, v in samples.items()
    }
    age_ms = _ms(med["age"]) if "age" in med else None
    ratio = round(med["sealer"] / med["age"], 2) if "age" in med else None
    note = "" if ws.age else "age CLI missing"
    return [
        Row(
            name=f"cold unseal, {n} values (median of {ws.repeat})",
            value=_ms(med["sealer"]),
            unit="ms",
            peer=age_ms,
            peer_label=f"{n}× age -d",
            ratio=ratio,
            goal="≤ 1.0 (ratio)",
            ok=ratio <= 1.0 if ratio is not None else None,
            note=note,
            extra={"command": " ".join(unseal), "sealer": spread["sealer"], "age": spread.get("age")},
        ),
        Row(
            name="python -c pass (interpreter floor)",
            value=_ms(med["floor"]),
            unit="ms",
            peer=age_ms,
            peer_label=f"{n}× age -d",
            ratio=round(med["floor"] / med["age"], 2) if "age" in med else None,
            note=note,  # ratio: the share of the age budget the bare interpreter already uses
            extra={"floor": spread["floor"], "python": ws.python},
        ),
    ]


@benchmark
def bench_import_cost(ws: Workspace) -> list[Row]:
    """`-X importtime`: what `import sealer.cli` costs, and what `sealer unseal` imports."""
    base = ws.importtime("-c", "pass")
    cli = ws.importtime("-c", "import sealer.cli")
    unseal = ws.importtime(*ws.unseal_cmd(ws.twenty[0]))
    git_mods = sorted(m for m in unseal.modules if m.split(".")[0] in GIT_MODULES)
    sealer_mods = sorted(m for m in unseal.modules if m.split(".")[0] == "sealer")
    return [
        Row(
            name="import sealer.cli: all imports (importtime)",
            value=round(cli.total_us / 1000, 2),
            unit="ms",
            peer=round(base.total_us / 1000, 2),
            peer_label="python -c pass",
            ratio=round(cli.total_us / base.total_us, 2) if base.total_us else None,
            extra={
                "sealer.cli_cumulative_ms": (cli.cumulative("sealer.cli") or 0) / 1000,
                "baseline_top_cumulative": base.top_cumulative(),
                "top_self": cli.top_self(),
                "top_cumulative": cli.top_cumulative(),
            },
        ),
        Row(
            name="sealer unseal: all imports (importtime)",
            value=round(unseal.total_us / 1000, 2),
            unit="ms",
            peer=round(base.total_us / 1000, 2),
            peer_label="python -c pass",
            ratio=round(unseal.total_us / base.total_us, 2) if base.total_us else None,
            extra={
                "modules": len(unseal.modules),
                "sealer_modules": sealer_mods,
                "top_self": unseal.top_self(),
                "top_cumulative": unseal.top_cumulative(),
            },
        ),
        Row(
            name="sealer unseal imports gitpython",
            value="yes" if git_mods else "no",
            unit="",
            goal="no",
            ok=not git_mods,
            extra={"git_modules": git_mods},
        ),
    ]


# A fresh interpreter doing what `sealer unseal FILE --format k8s -i KEY` does, clocking each phase.
# It calls library functions the CLI calls; if their signatures change, the rows say so (not a crash).
_PHASES = """
import json, sys, time
from pathlib import Path
t = [time.perf_counter()]
import sealer.cli
t.append(time.perf_counter())
from sealer.identities import find_identities
from sealer.render import render
from sealer.unseal import unseal_paths
t.append(time.perf_counter())
ids = find_identities((sys.argv[2],))
ids.kids()
t.append(time.perf_counter())
files = unseal_paths((Path(sys.argv[1]),), ids.for_kid, env=None, structured=True)
if isinstance(files, tuple):  # (files, skipped notes) since the directory-skip change
    files = files[0]
t.append(time.perf_counter())
text, notes = render(files, "k8s")
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
_PHASE_NAMES = (
    "import sealer.cli (click, CLI modules)",
    "import unseal modules (sealer.*, cryptography)",
    "load identity file (X25519 key)",
    "parse (lazy ruamel.yaml import) + decrypt 20",
    "render k8s output",
)


@benchmark
def bench_unseal_phases(ws: Workspace) -> list[Row]:
    """Where a cold `sealer unseal` of the 20-value file spends its time (median of fresh processes)."""
    path, _ = ws.twenty
    runs = max(5, ws.repeat // 2)
    cmd = [ws.python, "-c", _PHASES, str(path.relative_to(ws.repo)), str(ws.key)]
    walls: list[float] = []
    phases: list[list[float]] = []
    for i in range(ws.warmup + runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ws.repo, env=ws.env, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            return [Row(name="unseal phases", value=None, unit="ms", note=f"library API changed? {last}")]
        if i >= ws.warmup:
            walls.append(wall)
            phases.append(json.loads(proc.stdout))
    med = [statistics.median(p[k] for p in phases) for k in range(len(_PHASE_NAMES))]
    wall = statistics.median(walls)
    rows = [
        Row(name=f"  phase: {name}", value=_ms(x), unit="ms", ratio=round(x / wall, 2))
        for name, x in zip(_PHASE_NAMES, med, strict=True)
    ]
    rest = wall - sum(med)
    rows.insert(
        0,
        Row(
            name="  phase: interpreter start + exit", value=_ms(rest), unit="ms", ratio=round(rest / wall, 2)
        ),
    )
    rows.insert(
        0,
        Row(
            name=f"unseal phases (median of {runs}; ratio = share)",
            value=_ms(wall),
            unit="ms",
            extra={"phases_ms": dict(zip(_PHASE_NAMES, map(_ms, med), strict=True))},
        ),
    )
    return rows


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


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--repeat", type=int, default=15, help="timed runs per side (default 15)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    ap.add_argument(
        "-k",
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (repeatable): " + ", ".join(b.name for b in BENCHMARKS),
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    ap.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = ap.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    if not chosen:
        ap.error(f"no benchmark named {args.only}")

    started = time.perf_counter()
    rows: list[Row] = []
    per_bench: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sealer-bench-") as tmp:
        ws = Workspace(Path(tmp), args.repeat, args.warmup)
        for b in chosen:
            t0 = time.perf_counter()
            rows += [_tag(r, b.name) for r in b.func(ws)]
            per_bench[b.name] = round(time.perf_counter() - t0, 2)
        meta = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0],
            "executable": ws.python,
            "sealer": ws.sealer,
            "sealer_version": _version([ws.sealer, "--version"]),
            "age": ws.age,
            "age_version": _version([ws.age, "--version"]) if ws.age else None,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "warmup": args.warmup,
            "seconds": per_bench,
            "total_seconds": round(time.perf_counter() - started, 2),
        }

    print(table(rows))
    missed = [r.name for r in rows if r.ok is False]
    print(
        f"\n{len(rows)} figures in {meta['total_seconds']} s; goals missed: {len(missed)}; "
        f"details in {args.json}"
    )
    args.json.write_text(
        json.dumps({"meta": meta, "results": [asdict(r) for r in rows]}, indent=2, ensure_ascii=False) + "\n"
    )
    return 1 if args.strict and missed else 0


def _tag(row: Row, bench: str) -> Row:
    row.extra = {"benchmark": bench, **row.extra}
    return row


if __name__ == "__main__":
    sys.exit(main())
