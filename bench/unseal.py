"""Benchmarks of the deploy path: token size, cold `sealer unseal` against the `age` CLI, import cost."""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import time

from harness import GIT_MODULES, TOKEN_RE, Row, Workspace, benchmark, ms


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
        k: {"min_ms": ms(min(v)), "max_ms": ms(max(v)), "samples_ms": [ms(x) for x in v]} for k, v in samples.items()
    }
    age_ms = ms(med["age"]) if "age" in med else None
    ratio = round(med["sealer"] / med["age"], 2) if "age" in med else None
    note = "" if ws.age else "age CLI missing"
    return [
        Row(
            name=f"cold unseal, {n} values (median of {ws.repeat})",
            value=ms(med["sealer"]),
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
            value=ms(med["floor"]),
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
    """`-X importtime`: what `import sealer._cli` costs, and what `sealer unseal` imports."""
    base = ws.importtime("-c", "pass")
    cli = ws.importtime("-c", "import sealer._cli")
    unseal = ws.importtime(*ws.unseal_cmd(ws.twenty[0]))
    git_mods = sorted(m for m in unseal.modules if m.split(".")[0] in GIT_MODULES)
    sealer_mods = sorted(m for m in unseal.modules if m.split(".")[0] == "sealer")
    return [
        Row(
            name="import sealer._cli: all imports (importtime)",
            value=round(cli.total_us / 1000, 2),
            unit="ms",
            peer=round(base.total_us / 1000, 2),
            peer_label="python -c pass",
            ratio=round(cli.total_us / base.total_us, 2) if base.total_us else None,
            extra={
                "sealer.cli_cumulative_ms": (cli.cumulative("sealer._cli") or 0) / 1000,
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
import sealer._cli
t.append(time.perf_counter())
from sealer._identities import find_identities
from sealer._render import render
from sealer._unseal import unseal_paths
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
    "import sealer._cli (click, CLI modules)",
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
        Row(name=f"  phase: {name}", value=ms(x), unit="ms", ratio=round(x / wall, 2))
        for name, x in zip(_PHASE_NAMES, med, strict=True)
    ]
    rest = wall - sum(med)
    rows.insert(
        0,
        Row(name="  phase: interpreter start + exit", value=ms(rest), unit="ms", ratio=round(rest / wall, 2)),
    )
    rows.insert(
        0,
        Row(
            name=f"unseal phases (median of {runs}; ratio = share)",
            value=ms(wall),
            unit="ms",
            extra={"phases_ms": dict(zip(_PHASE_NAMES, map(ms, med), strict=True))},
        ),
    )
    return rows
