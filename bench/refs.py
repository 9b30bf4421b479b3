#!/usr/bin/env python3
"""What reference resolution costs `sealer check`: a repository of 1,000 sealed Secrets and 300
workloads, checked with and without it (`check --no-refs`), median of several interleaved runs.

    .venv/bin/python bench/refs.py            # 5 timed runs per side
    .venv/bin/python bench/refs.py -n 9

Standalone (not part of bench/run.py). It builds the repository in a throwaway directory with the
`sealer` console script next to this interpreter: `sealer init`, a key, 1,000 Secrets of 3 values
each sealed in one `sealer seal`, 300 Deployments each referencing keys by env, envFrom and a
secret volume with items. Then the same repository once more with a `kustomization.yaml` over it
all, so `check` renders it with `kubectl kustomize` (one run), when kubectl is on PATH. Nothing of
yours is read: SEALER_* variables are dropped and SEALER_CONFIG_DIR points into the directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEALER = str(Path(sys.executable).parent / "sealer")
SECRETS = 1000
WORKLOADS = 300


def secret(i: int) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i:04d}\n  namespace: ns{i % 10}\n"
        f"stringData:\n  user: user-{i}\n  password: bench-password-{i}\n  token: bench-token-{i}\n"
    )


def workload(j: int) -> str:
    a, b, c = (j * 3) % SECRETS, (j * 3 + 1) % SECRETS, (j * 3 + 2) % SECRETS
    ns = lambda i: f"ns{i % 10}"  # noqa: E731
    # every secret the workload names must be in its namespace: pick three of it
    a, b, c = (x - x % 10 + j % 10 for x in (a, b, c))
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: w{j:03d}
  namespace: {ns(j)}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - name: DB_USER
              valueFrom: {{secretKeyRef: {{name: s{a:04d}, key: user}}}}
            - name: DB_PASSWORD
              valueFrom: {{secretKeyRef: {{name: s{a:04d}, key: password}}}}
          envFrom:
            - secretRef: {{name: s{b:04d}}}
          volumeMounts: [{{name: creds, mountPath: /creds}}]
      volumes:
        - name: creds
          secret:
            secretName: s{c:04d}
            items: [{{key: token, path: token}}]
"""


def build(root: Path, env: dict[str, str], *, kustomize: bool) -> None:
    def run(*args: str) -> None:
        subprocess.run([SEALER, *args], cwd=root, env=env, check=True, capture_output=True)

    root.mkdir(parents=True)
    run("init", "--env", "bench")
    run("keys", "generate", "bench", "--out", str(root.parent / f"{root.name}-key.txt"))
    d = root / "deploy" / "bench"
    (d / "secrets").mkdir(parents=True)
    (d / "apps").mkdir()
    names = []
    for i in range(SECRETS):
        (d / "secrets" / f"s{i:04d}.yaml").write_text(secret(i))
        names.append(f"secrets/s{i:04d}.yaml")
    for j in range(WORKLOADS):
        (d / "apps" / f"w{j:03d}.yaml").write_text(workload(j))
        names.append(f"apps/w{j:03d}.yaml")
    run("seal", *(str(p.relative_to(root)) for p in sorted((d / "secrets").glob("*.yaml"))))
    if kustomize:
        listing = "".join(f"  - {n}\n" for n in names)
        (d / "kustomization.yaml").write_text(
            f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{listing}"
        )


def timed(root: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    r = subprocess.run([SEALER, *args], cwd=root, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"sealer {' '.join(args)} failed in {root}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return elapsed


def measure(root: Path, env: dict[str, str], runs: int, sides: dict[str, tuple[str, ...]]) -> dict[str, list[float]]:
    for args in sides.values():
        timed(root, env, *args)  # warm-up: the page cache, the .pyc files
    samples: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(runs):
        for name, args in sides.items():  # interleaved, so load from other work hits every side alike
            samples[name].append(timed(root, env, *args))
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-n", "--runs", type=int, default=5, help="timed runs per side (default 5)")
    args = ap.parse_args()
    if not Path(SEALER).is_file():
        print(f"no sealer command at {SEALER}: run this with the virtualenv's python", file=sys.stderr)
        return 2
    top = Path(tempfile.mkdtemp(prefix="sealer-bench-refs-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    env.update(SEALER_CONFIG_DIR=str(top / "config"), SEALER_AUDIT_LOG="off")
    results: dict[str, dict[str, float]] = {}
    try:
        plans = [("files", False)] + ([("kustomize", True)] if shutil.which("kubectl") else [])
        for label, kustomize in plans:
            root = top / label
            build(root, env, kustomize=kustomize)
            check = json.loads(
                subprocess.run(
                    [SEALER, "check", "--output", "json"], cwd=root, env=env, capture_output=True, text=True
                ).stdout
            )
            assert check["ok"] and check["files"] == SECRETS + WORKLOADS + kustomize, check
            sides = {
                "check": ("check",),
                "check --no-refs": ("check", "--no-refs"),
                "refs --output json": ("refs", "--output", "json"),
            }
            samples = measure(root, env, args.runs, sides)
            results[label] = {k: statistics.median(v) for k, v in samples.items()}
            print(
                f"\n{label}: {SECRETS} Secrets ({SECRETS * 3} sealed values), {WORKLOADS} Deployments"
                f" ({WORKLOADS * 4} references){', one kustomization' if kustomize else ''}; median of {args.runs}"
            )
            for k, v in samples.items():
                runs = ", ".join(f"{x * 1000:.0f}" for x in v)
                print(f"  {k:<20} {statistics.median(v) * 1000:8.0f} ms   (runs: {runs})")
            with_refs, without = results[label]["check"], results[label]["check --no-refs"]
            print(f"  reference resolution adds {(with_refs - without) * 1000:.0f} ms ({with_refs / without - 1:+.0%})")
        if "kustomize" not in results:
            print("\n(kubectl is not on PATH: the kustomize variant was not measured)")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
