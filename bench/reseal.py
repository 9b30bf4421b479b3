"""Re-sealing a repository after a key rotation, and checking it.

- 1,000 Secret files × 10 values (32 random bytes each, base64): `sealer reseal` against a shell loop
  of the `age` CLI (sampled: see AGE_SAMPLE) and against the bare HPKE cost of the same values.
- 300 files × 5 values: `sealer reseal` against `sops rotate -i --add-age NEW --rm-age OLD` over the
  same values in 300 sops files, one process per core.
- `sealer check` over the 1,000 files (informational: it must not get slower).
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (
    CORES,
    SOPS_ENCRYPT_ARGS,
    Row,
    Workspace,
    at_most,
    benchmark,
    faster,
    median_ms,
    ms,
    peer,
    random_value,
    secret_text,
    sops_outputs,
    spread,
    write_list,
    xargs,
)

FILES = int(os.environ.get("SEALER_BENCH_RESEAL_FILES", "1000"))
VALUES = 10
# The age loop runs one value at a time, two processes each: ~5 ms a value, so 10,000 values take
# a minute. It is timed over this many values spread over the repository, and scaled up.
AGE_SAMPLE = int(os.environ.get("SEALER_BENCH_AGE_SAMPLE", "2000"))
SOPS_FILES = int(os.environ.get("SEALER_BENCH_SOPS_FILES", "300"))
SOPS_VALUES = 5

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


@dataclass
class Rotated:
    """A sealer repository of sealed Secrets whose environment key was just rotated."""

    repo: Path
    old_key: Path
    new_key: Path
    new_recipient: str
    files: dict[str, dict[str, str]]  # name -> stringData values
    pristine: Path  # a copy of deploy/bench as sealed to the old key

    @property
    def deploy(self) -> Path:
        return self.repo / "deploy" / "bench"

    def restore(self) -> None:
        shutil.rmtree(self.deploy)
        shutil.copytree(self.pristine, self.deploy)


def _rotated(ws: Workspace, name: str, files: int, values: int) -> Rotated:
    """Init a repository, seal FILES Secrets × VALUES values with one `sealer seal`, rotate the key."""
    repo = ws.root / name
    old_key, new_key = ws.root / f"{name}-old.key", ws.root / f"{name}-new.key"
    repo.mkdir()
    ws.run(ws.sealer, "init", "--env", "bench", "--dir", str(repo))
    sealer = functools.partial(_sealer, ws, repo)
    sealer("keys", "generate", "bench", "--out", str(old_key))
    deploy = repo / "deploy" / "bench"
    deploy.mkdir(parents=True)
    plain = {f"app{i:04d}": {f"KEY_{j}": random_value() for j in range(values)} for i in range(files)}
    for n, v in plain.items():
        (deploy / f"{n}.yaml").write_text(secret_text(n, v))
    sealer("seal", *sorted(str(p.relative_to(repo)) for p in deploy.iterdir()))
    new_recipient = sealer("keys", "rotate", "bench", "--out", str(new_key)).stdout.strip()
    pristine = ws.root / f"{name}-pristine"
    shutil.copytree(deploy, pristine)
    return Rotated(repo, old_key, new_key, new_recipient, plain, pristine)


def _sealer(ws: Workspace, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([ws.sealer, *args], cwd=repo, env=ws.env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench: sealer {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def _check_resealed(ws: Workspace, r: Rotated) -> None:
    """Every value unseals to its plaintext with the new key alone."""
    out = _sealer(ws, r.repo, "unseal", "deploy/bench", "--format", "k8s", "-i", str(r.new_key)).stdout
    if any(v not in out for values in r.files.values() for v in values.values()):
        raise SystemExit("bench: the re-sealed files do not unseal to their plaintext with the new key")


def _thousand(ws: Workspace) -> Rotated:
    """The 1,000-file repository, made once per run (reseal and check share it)."""
    cache = ws.__dict__.setdefault("_reseal_repos", {})
    if "thousand" not in cache:
        cache["thousand"] = _rotated(ws, "reseal-repo", FILES, VALUES)
    return cache["thousand"]  # type: ignore[no-any-return]


@benchmark
def bench_reseal(ws: Workspace) -> list[Row]:
    """`sealer reseal` of 1,000 files × 10 values vs the age loop (sampled) and the bare HPKE floor."""
    r = _thousand(ws)
    reseal = [ws.sealer, "reseal", "--env", "bench", "-i", str(r.old_key)]
    times = []
    for _ in range(3):  # both cores, from the same starting point each time
        r.restore()
        t = time.perf_counter()
        _sealer(ws, r.repo, *reseal[1:])
        times.append(time.perf_counter() - t)
    _check_resealed(ws, r)
    reseal_ms = ms(statistics.median(times))
    plain = [v for values in r.files.values() for v in values.values()]

    # The bare HPKE cost of the same number of values, one process.
    size = len(plain[0].encode())
    bare = subprocess.run(
        [sys.executable, "-c", _BARE, str(len(plain)), str(size)], capture_output=True, text=True, check=True
    )
    bare_ms = ms(float(bare.stdout.strip()))

    # The age CLI: decrypt with the old key, encrypt to the new one, one value at a time, over an
    # evenly spread sample of the values, scaled to all of them.
    age_ms: float | None = None
    sample = plain[:: max(1, len(plain) // AGE_SAMPLE)][:AGE_SAMPLE]
    scale = len(plain) / len(sample)
    if ws.age:
        agedir = ws.root / "age-values"
        agedir.mkdir()
        old_recipient = _age_recipient(r.old_key)
        # Preparation (not timed): each value as its own age file, one process per core.
        for i, v in enumerate(sample):
            (agedir / f"v{i:05d}").write_text(v)
        listing = write_list(ws.root / "age-values.list", sorted(agedir.iterdir()))
        ws.run(*xargs(listing, ws.age, "-r", old_recipient, "-o", "{}.age", "{}", each="{}"))
        loop = f'for f in {agedir}/v*.age; do age -d -i {r.old_key} "$f" | age -r {r.new_recipient} -o "$f.new"; done'
        t = time.perf_counter()
        subprocess.run(["bash", "-c", loop], check=True)
        age_ms = ms((time.perf_counter() - t) * scale)
        for i in range(0, len(sample), max(1, len(sample) // 20)):  # spot check: the loop did the work
            f = agedir / f"v{i:05d}.age.new"
            if ws.run(ws.age, "-d", "-i", str(r.new_key), str(f)).stdout != sample[i]:
                raise SystemExit(f"bench: the age loop's {f} does not decrypt to its value with the new key")
    sampled = f"{len(sample)} of {len(plain)} values, ×{scale:g}" if scale > 1 else f"{len(plain)} values"
    age_p = peer(age_ms, f"age -d | age -e loop, {sampled}", reseal_ms, note="" if ws.age else "age CLI missing")
    floor_p = peer(bare_ms, "bare HPKE open+seal, 1 process", reseal_ms)
    return [
        Row(
            name=f"reseal {FILES} files × {VALUES} values, {CORES} cores (median of 3)",
            value=reseal_ms,
            unit="ms",
            age=age_p,
            floor=floor_p,
            goals=[faster(30, age_p, "age"), at_most(1.5, floor_p, "floor")],
            extra={"samples_s": times, "age_loop_ms": age_ms, "age_sample": len(sample), "age_scale": scale},
        )
    ]


def _age_recipient(key: Path) -> str:
    return subprocess.run(["age-keygen", "-y", str(key)], capture_output=True, text=True, check=True).stdout.strip()


@benchmark
def bench_reseal_vs_rotate(ws: Workspace) -> list[Row]:
    """`sealer reseal` of 300 files × 5 values vs `sops rotate -i` of the same values in 300 sops
    files, one process per core (both re-key to the new recipient, dropping the old one)."""
    r = _rotated(ws, "rotate-repo", SOPS_FILES, SOPS_VALUES)
    sides = {"sealer": [[ws.sealer, "reseal", "--env", "bench", "-i", str(r.old_key)]]}
    setup = {"sealer": r.restore}
    sops_dir = ws.root / "sops-rotate"
    if ws.sops:
        old_recipient = _age_recipient(r.old_key)
        sops_dir.mkdir()
        for n, v in r.files.items():
            (sops_dir / f"{n}.yaml").write_text(secret_text(n, v))
        listing = write_list(ws.root / "sops-rotate.list", sorted(sops_dir.iterdir()))
        ws.run(*xargs(listing, ws.sops, "encrypt", "-i", *SOPS_ENCRYPT_ARGS, "--age", old_recipient))
        sops_pristine = ws.root / "sops-rotate-pristine"
        shutil.copytree(sops_dir, sops_pristine)

        def restore_sops() -> None:
            shutil.rmtree(sops_dir)
            shutil.copytree(sops_pristine, sops_dir)

        # sops reads the identity from SOPS_AGE_KEY_FILE: the old key, which it drops
        rotate = ["env", f"SOPS_AGE_KEY_FILE={r.old_key}"]
        rotate += xargs(listing, ws.sops, "rotate", "-i", "--add-age", r.new_recipient, "--rm-age", old_recipient)
        sides["sops"] = [rotate]
        setup["sops"] = restore_sops
    repeat = max(3, ws.repeat // 5)
    samples = ws.compare(sides, repeat=repeat, warmup=1, setup=setup, cwd=r.repo)

    # Both sides re-keyed: the files open with the new key alone, to their plaintext.
    _check_resealed(ws, r)
    if ws.sops:
        env = {**ws.env, "SOPS_AGE_KEY_FILE": str(r.new_key)}
        proc = subprocess.run(xargs(listing, ws.sops, "decrypt"), capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"bench: the rotated sops files do not open with the new key:\n{proc.stderr[-500:]}")
        sops_outputs(proc.stdout, r.files)
    med = {k: median_ms(v) for k, v in samples.items()}
    sops_p = peer(
        med.get("sops"), f"xargs -P{CORES} sops rotate -i", med["sealer"], note="" if ws.sops else "sops missing"
    )
    return [
        Row(
            name=f"reseal {SOPS_FILES} files × {SOPS_VALUES} values, {CORES} cores (median of {repeat})",
            value=med["sealer"],
            unit="ms",
            sops=sops_p,
            goals=[faster(30, sops_p, "sops")],
            extra={k: spread(v) for k, v in samples.items()},
        )
    ]


@benchmark
def bench_check(ws: Workspace) -> list[Row]:
    """`sealer check` (no key) over the 1,000 sealed files: informational, it must not get slower."""
    r = _thousand(ws)
    _sealer(ws, r.repo, "reseal", "--env", "bench", "-i", str(r.old_key))  # a no-op after bench_reseal
    samples = ws.compare({"sealer": [[ws.sealer, "check"]]}, repeat=max(3, ws.repeat // 5), warmup=1, cwd=r.repo)
    return [
        Row(
            name=f"check {FILES} files × {VALUES} values, no key (median of {len(samples['sealer'])})",
            value=median_ms(samples["sealer"]),
            unit="ms",
            extra=spread(samples["sealer"]),
        )
    ]
