"""Re-sealing a repository after a key rotation: `sealer reseal` against a shell loop of the `age` CLI
and against the bare HPKE cost of the same values, all in one run.

The repository: 1,000 Secret files × 10 values (32 random bytes each, base64) in environment `bench`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

from harness import Row, Workspace, benchmark, ms, random_value

FILES = int(os.environ.get("SEALER_BENCH_RESEAL_FILES", "1000"))
VALUES = 10

# One process, no sealer code: open each value's HPKE payload with the old key, seal it to the new
# one. Same suite, same sizes, an `info` of the length sealer's context has: the floor for the work.
_BARE = r"""
import os, sys, time
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
n, size = int(sys.argv[1]), int(sys.argv[2])
suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
old, new = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
new_pub = new.public_key()
info = os.urandom(120)
cts = [suite.encrypt(os.urandom(size), old.public_key(), info=info) for _ in range(n)]
t = time.perf_counter()
for ct in cts:
    suite.encrypt(suite.decrypt(ct, old, info=info), new_pub, info=info)
print(time.perf_counter() - t)
"""


@benchmark
def bench_reseal(ws: Workspace) -> list[Row]:
    root = ws.root
    repo = root / "reseal-repo"
    old_key = root / "reseal-old.key"
    new_key = root / "reseal-new.key"
    env = dict(ws.env)

    def sealer(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([ws.sealer, *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"bench: sealer {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    repo.mkdir()
    sealer("init", "--env", "bench")
    sealer("keys", "generate", "bench", "--out", str(old_key))
    deploy = repo / "deploy" / "bench"
    deploy.mkdir(parents=True)
    plain: list[str] = []
    for i in range(FILES):
        values = [random_value() for _ in range(VALUES)]
        plain += values
        body = "".join(f"  KEY_{j}: {v}\n" for j, v in enumerate(values))
        (deploy / f"app{i:04d}.yaml").write_text(
            f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app{i:04d}\n  namespace: bench\nstringData:\n{body}"
        )
    sealer("seal", *sorted(str(p.relative_to(repo)) for p in deploy.iterdir()))
    new_recipient = sealer("keys", "rotate", "bench", "--out", str(new_key)).stdout.strip()
    pristine = root / "reseal-pristine"
    shutil.copytree(deploy, pristine)

    # sealer reseal, both cores, from the same starting point each time.
    times = []
    for _ in range(3):
        shutil.rmtree(deploy)
        shutil.copytree(pristine, deploy)
        t = time.perf_counter()
        sealer("reseal", "--env", "bench", "-i", str(old_key))
        times.append(time.perf_counter() - t)
    check = sealer("unseal", "deploy/bench/app0000.yaml", "--format", "dotenv", "-i", str(new_key)).stdout
    if plain[0] not in check:
        raise SystemExit("bench: the re-sealed file does not unseal to its plaintext with the new key")
    reseal_s = statistics.median(times)
    values = FILES * VALUES

    # The bare HPKE cost of the same number of values, one process.
    size = len(plain[0].encode())
    bare = subprocess.run(
        [sys.executable, "-c", _BARE, str(values), str(size)], capture_output=True, text=True, check=True
    )
    bare_s = float(bare.stdout.strip())

    # The age CLI: decrypt with the old key, encrypt to the new one, one value at a time.
    age_s: float | None = None
    if ws.age:
        agedir = root / "age-values"
        agedir.mkdir()
        old_recipient = subprocess.run(
            ["age-keygen", "-y", str(old_key)], capture_output=True, text=True, check=True
        ).stdout.strip()
        # Preparation (not timed): each value as its own age file, two encryptions at a time.
        prep = "\n".join(
            f'printf %s "{v}" | age -r {old_recipient} -o {agedir}/v{i:05d}.age' for i, v in enumerate(plain)
        )
        subprocess.run(["xargs", "-P", "2", "-I", "{}", "sh", "-c", "{}"], input=prep, text=True, check=True)
        loop = f'for f in {agedir}/v*.age; do age -d -i {old_key} "$f" | age -r {new_recipient} -o "$f.new"; done'
        t = time.perf_counter()
        subprocess.run(["bash", "-c", loop], check=True)
        age_s = time.perf_counter() - t
    speedup = round(age_s / reseal_s, 1) if age_s else None
    return [
        Row(
            name=f"reseal {FILES} files x {VALUES} values, {os.cpu_count()} cores (median of 3)",
            value=ms(reseal_s),
            unit="ms",
            peer=ms(age_s) if age_s else None,
            peer_label="age -d | age -e loop",
            ratio=round(reseal_s / age_s, 4) if age_s else None,
            goal="≥ 30x faster",
            ok=(speedup >= 30) if speedup else None,
            note=f"{speedup}x faster" if speedup else "age CLI missing",
            extra={"samples_s": times, "age_loop_s": age_s, "speedup": speedup},
        ),
        Row(
            name="reseal vs bare HPKE open+seal (1 process)",
            value=ms(reseal_s),
            unit="ms",
            peer=ms(bare_s),
            peer_label="bare HPKE",
            ratio=round(reseal_s / bare_s, 2),
            goal="≤ 1.5 (ratio)",
            ok=reseal_s / bare_s <= 1.5,
            extra={"bare_s": bare_s},
        ),
    ]
