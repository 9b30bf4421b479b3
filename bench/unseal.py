"""Benchmarks of the deploy path: token size, cold `sealer unseal` against `sops decrypt` and the
`age` CLI with the floors beneath it, import cost, and where the cold path's time goes."""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import time
from pathlib import Path

from harness import GIT_MODULES, TOKEN_RE, Goal, Row, Workspace, at_most, benchmark, median_ms, ms, peer, spread


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
    armored: int | None = None
    if ws.age:
        armored = len(ws.run(ws.age, "-r", ws.recipient, "-a", stdin=value.encode()).stdout.strip())
    return [
        Row(
            name="token size (32-byte value, 1 recipient)",
            value=size,
            unit="chars",
            age=peer(armored, "age -a", size, note="" if ws.age else "age CLI missing"),
            goals=[Goal("≤ 160 chars", size <= 160)],
            extra={"token": tokens[0]},
        )
    ]


# The physical floor of decrypting the 20 values in Python: a fresh interpreter imports
# cryptography's HPKE, reads one X25519 key and 20 payloads (the size of the values sealer opens,
# an `info` of the length of sealer's context) and opens them. No YAML, no CLI, no sealer code.
# With `--in-process N`, it instead prints the median seconds of opening the 20, N times over.
_BARE_OPEN = r"""
import statistics, sys, time
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
blob = open(sys.argv[1], "rb").read()
key, info, rest = x25519.X25519PrivateKey.from_private_bytes(blob[:32]), blob[32:152], blob[152:]
cts = []
while rest:
    n = int.from_bytes(rest[:2], "big")
    cts.append(rest[2 : 2 + n])
    rest = rest[2 + n :]
def once():
    return [suite.decrypt(ct, key, info=info) for ct in cts]
if len(sys.argv) > 2:
    times = []
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    print(statistics.median(times))
else:
    sys.stdout.buffer.write(b"".join(once()))
"""
_MAKE_PAYLOADS = r"""
import os, sys
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
key, info = x25519.X25519PrivateKey.generate(), os.urandom(120)
out = [key.private_bytes_raw(), info]
for v in sys.stdin.read().split():
    ct = suite.encrypt(v.encode(), key.public_key(), info=info)
    out += [len(ct).to_bytes(2, "big"), ct]
sys.stdout.buffer.write(b"".join(out))
"""


def _bare_payloads(ws: Workspace, values: list[str]) -> Path:
    """A file holding a fresh X25519 key, an `info` and the values sealed to it with HPKE (untimed)."""
    path = ws.root / "bare-hpke.bin"
    proc = subprocess.run(
        [ws.python, "-c", _MAKE_PAYLOADS], input="\n".join(values).encode(), capture_output=True, check=True
    )
    path.write_bytes(proc.stdout)
    opened = subprocess.run([ws.python, "-c", _BARE_OPEN, str(path)], capture_output=True, check=True).stdout
    if opened != "".join(values).encode():
        raise SystemExit("bench: the bare HPKE floor does not open its payloads to the plaintext")
    return path


@benchmark
def bench_cold_unseal(ws: Workspace) -> list[Row]:
    """Cold `sealer unseal` of a 20-value Secret vs one `sops decrypt` of the same values, vs 20
    `age -d` processes; and the floors: the bare interpreter, bare HPKE in a fresh process and in-process."""
    path, values = ws.twenty
    n = len(values)
    unseal = ws.unseal_cmd(path)

    # Correctness first: the figures mean nothing if a side does not decrypt.
    out = ws.run(*unseal).stdout
    missing = [k for k, v in values.items() if v not in out]
    if missing:
        raise SystemExit(f"bench: sealer unseal output lacks the values of {missing}")
    payloads = _bare_payloads(ws, list(values.values()))

    sides: dict[str, list[list[str]]] = {
        "sealer": [unseal],
        "interpreter": [[ws.python, "-c", "pass"]],
        "hpke": [[ws.python, "-c", _BARE_OPEN, str(payloads)]],
    }
    if ws.sops:
        (ws.root / "sops").mkdir(exist_ok=True)
        sops_file = ws.sops_file(ws.root / "sops" / "twenty.yaml", values)
        sides["sops"] = [[ws.sops, "decrypt", str(sops_file)]]
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
    med = {k: median_ms(v) for k, v in samples.items()}
    in_process = float(
        subprocess.run(
            [ws.python, "-c", _BARE_OPEN, str(payloads), str(max(50, ws.repeat))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    sops_label, age_label = "sops decrypt", f"{n}× age -d"
    sops_note, age_note = "" if ws.sops else "sops missing", "" if ws.age else "age CLI missing"
    sealer = med["sealer"]
    sops_p = peer(med.get("sops"), sops_label, sealer, note=sops_note)
    age_p = peer(med.get("age"), age_label, sealer, note=age_note)
    interp = med["interpreter"]
    return [
        Row(
            name=f"cold unseal, {n} values (median of {ws.repeat})",
            value=sealer,
            unit="ms",
            sops=sops_p,
            age=age_p,
            floor=peer(med["hpke"], f"python + {n} HPKE opens", sealer),
            goals=[at_most(1.0, sops_p, "sops"), at_most(1.0, age_p, "age")],
            extra={"command": " ".join(unseal), **{k: spread(v) for k, v in samples.items()}},
        ),
        Row(
            name="  floor: python -c pass (interpreter start + exit)",
            value=interp,
            unit="ms",
            # ratios: the share of each peer's budget the bare interpreter already uses
            sops=peer(med.get("sops"), sops_label, interp, note=sops_note),
            age=peer(med.get("age"), age_label, interp, note=age_note),
            extra={"python": ws.python},
        ),
        Row(
            name=f"  floor: python, import cryptography HPKE, open {n} (fresh process)",
            value=med["hpke"],
            unit="ms",
            sops=peer(med.get("sops"), sops_label, med["hpke"], note=sops_note),
            age=peer(med.get("age"), age_label, med["hpke"], note=age_note),
            floor=peer(interp, "python -c pass", med["hpke"]),
        ),
        Row(
            name=f"  floor: open {n} HPKE payloads (in-process, median of {max(50, ws.repeat)})",
            value=ms(in_process),
            unit="ms",
            note="X25519 + HKDF-SHA256 + ChaCha20-Poly1305 per value, nothing else",
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
    base_ms = round(base.total_us / 1000, 2)
    cli_ms, unseal_ms = round(cli.total_us / 1000, 2), round(unseal.total_us / 1000, 2)
    return [
        Row(
            name="import sealer._cli: all imports (importtime)",
            value=cli_ms,
            unit="ms",
            floor=peer(base_ms, "python -c pass", cli_ms),
            extra={
                "sealer.cli_cumulative_ms": (cli.cumulative("sealer._cli") or 0) / 1000,
                "baseline_top_cumulative": base.top_cumulative(),
                "top_self": cli.top_self(),
                "top_cumulative": cli.top_cumulative(),
            },
        ),
        Row(
            name="sealer unseal: all imports (importtime)",
            value=unseal_ms,
            unit="ms",
            floor=peer(base_ms, "python -c pass", unseal_ms),
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
            goals=[Goal("no", not git_mods)],
            extra={"git_modules": git_mods},
        ),
    ]


# A fresh interpreter doing what `sealer unseal FILE --format k8s -i KEY` does (the library calls of
# `sealer/_cli/direct.py`: find_identities, unseal_paths, the audit line, render, write), clocking
# each phase. If those calls change, the rows say so (not a crash): update this to match.
_PHASES = """
import time
start = time.time()
t = [time.perf_counter()]
import json, sys
from pathlib import Path
import sealer._cli
t.append(time.perf_counter())
from sealer._identities import find_identities
from sealer._render import render
from sealer._unseal import unseal_paths
from sealer._cli.direct import audit_unseal
t.append(time.perf_counter())
ids = find_identities((sys.argv[2],))
ids.kids()  # the CLI loads the key on first use, inside unseal_paths: forced here to clock it apart
t.append(time.perf_counter())
files, skipped = unseal_paths((Path(sys.argv[1]),), ids.for_kid, env=None, structured=True, checked=True)
t.append(time.perf_counter())
audit_unseal(files, None)
t.append(time.perf_counter())
text, notes = render(files, "k8s", allow_env=frozenset())
sys.stdout.write(text)
sys.stdout.flush()
t.append(time.perf_counter())
print(json.dumps([start, *(b - a for a, b in zip(t, t[1:])), time.time()]), file=sys.stderr)
sys.stderr.flush()
import os
os._exit(0)  # as sealer's main() ends: no interpreter teardown
"""
_PHASE_NAMES = (
    "import sealer._cli (entry and unseal's option table; click is not loaded)",
    "import unseal modules (sealer.*, cryptography)",
    "load identity file (X25519 key)",
    "read, parse (lazy ruamel.yaml import), check rules, decrypt 20",
    "audit log line (git HEAD, append)",
    "render k8s output + write",
)


@benchmark
def bench_unseal_phases(ws: Workspace) -> list[Row]:
    """Where a cold `sealer unseal` of the 20-value file spends its time (median of fresh processes)."""
    path, values = ws.twenty
    runs = max(5, ws.repeat // 2)
    cmd = [ws.python, "-c", _PHASES, str(path.relative_to(ws.repo)), str(ws.key)]
    walls: list[float] = []
    phases: list[list[float]] = []
    for i in range(ws.warmup + runs):
        before = time.time()  # the wall clock: the child reports its first and last moments in it
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ws.repo, env=ws.env, check=False)
        wall = time.perf_counter() - t0
        after = time.time()
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            return [Row(name="unseal phases", value=None, unit="ms", note=f"library API changed? {last}")]
        if i == 0 and any(v not in proc.stdout for v in values.values()):
            raise SystemExit("bench: the phases script does not print the plaintext sealer unseal prints")
        if i >= ws.warmup:
            first, *inner, last = json.loads(proc.stderr.strip().splitlines()[-1])
            walls.append(wall)
            phases.append([first - before, *inner, after - last])
    names = ("interpreter start (to the first line of the program)", *_PHASE_NAMES, "interpreter exit (teardown)")
    med = [statistics.median(p[k] for p in phases) for k in range(len(names))]
    wall = statistics.median(walls)
    parts = list(zip(names, med, strict=True))
    rest = wall - sum(med)
    if abs(rest) >= 0.0005:  # what no clock covered: rounding, and the medians of parts not adding up
        parts.append(("unaccounted (medians of the parts vs of the whole)", rest))
    rows = [
        Row(
            name=f"unseal phases (median of {runs}; % = share of the whole)",
            value=ms(wall),
            unit="ms",
            extra={"phases_ms": {name: ms(x) for name, x in parts}},
        )
    ]
    rows += [
        Row(name=f"  phase {x / wall:4.0%}: {name}", value=ms(x), unit="ms", extra={"share": round(x / wall, 3)})
        for name, x in parts
    ]
    return rows
