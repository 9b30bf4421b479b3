"""Many files at once: `sealer seal FILE…` and then `sealer unseal DIR` over 300 Secrets × 5 values,
against a parallel loop of `sops encrypt -i` / `sops decrypt` over the same values in 300 sops
files, and of `age -e` / `age -d` over the same 1,500 values one file each.

The loops use `xargs -P CORES`: one process per core, as sealer itself uses every core. The
encryption runs come first and leave their files behind; the decryption runs then open exactly
those files, and the output of each side's first (untimed) decryption run is checked against the
plaintext, so both halves of every side are proven correct.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from harness import (
    CORES,
    SOPS_ENCRYPT_ARGS,
    Row,
    Workspace,
    benchmark,
    faster,
    median_ms,
    peer,
    random_value,
    secret_text,
    sops_outputs,
    spread,
    write_list,
    xargs,
)

FILES = int(os.environ.get("SEALER_BENCH_BULK_FILES", "300"))
VALUES = 5


def _restore(pristine: Path, where: Path) -> Callable[[], None]:
    def again() -> None:
        shutil.rmtree(where, ignore_errors=True)
        shutil.copytree(pristine, where)

    return again


def _no_plaintext(where: Path, files: dict[str, dict[str, str]], who: str) -> None:
    for name, values in files.items():
        text = (where / f"{name}.yaml").read_text()
        if any(v in text for v in values.values()):
            raise SystemExit(f"bench: {who} left a plaintext value in {where / name}.yaml")


@benchmark
def bench_bulk(ws: Workspace) -> list[Row]:
    """Seal 300 files, then unseal them as a directory; sops and age do the same work as loops."""
    files = {f"app{i:03d}": {f"KEY_{j}": random_value() for j in range(VALUES)} for i in range(FILES)}
    everything = sorted(v for values in files.values() for v in values.values())
    pristine = ws.root / "bulk-plain"
    pristine.mkdir()
    for name, values in files.items():
        (pristine / f"{name}.yaml").write_text(secret_text(name, values))
    n = FILES * VALUES
    repeat = max(2, ws.repeat // 7)  # the peer loops take seconds a run

    bulk = ws.deploy / "bulk"
    rel = bulk.relative_to(ws.repo)
    enc: dict[str, list[list[str]]] = {"sealer": [[ws.sealer, "seal", *(f"{rel}/{f}.yaml" for f in sorted(files))]]}
    dec: dict[str, list[list[str]]] = {
        "sealer": [[ws.sealer, "unseal", str(rel), "--format", "k8s", "-i", str(ws.key)]]
    }
    setup = {"sealer": _restore(pristine, bulk)}
    # sealer prints every document of the directory: each value must be there
    check: dict[str, Callable[[str], object]] = {"sealer": lambda out: _all_in("sealer unseal DIR", everything, out)}

    sops_dir = ws.root / "sops-bulk"
    if ws.sops:
        listing = write_list(ws.root / "sops-bulk.list", [sops_dir / f"{f}.yaml" for f in sorted(files)])
        enc["sops"] = [xargs(listing, ws.sops, "encrypt", "-i", *SOPS_ENCRYPT_ARGS, "--age", ws.recipient)]
        dec["sops"] = [xargs(listing, ws.sops, "decrypt")]
        setup["sops"] = _restore(pristine, sops_dir)
        check["sops"] = lambda out: sops_outputs(out, files)
    if ws.age:
        age_dir = ws.root / "age-bulk"
        age_dir.mkdir()
        plain = []
        for name, values in files.items():
            for k, v in values.items():
                (age_dir / f"{name}.{k}").write_text(v)
                plain.append(age_dir / f"{name}.{k}")
        each = write_list(ws.root / "age-bulk.plain", plain)
        enc["age"] = [xargs(each, ws.age, "-r", ws.recipient, "-o", "{}.age", "{}", each="{}")]
        dec["age"] = [
            xargs(write_list(ws.root / "age-bulk.list", [f"{p}.age" for p in plain]), ws.age, "-d", "-i", str(ws.key))
        ]
        check["age"] = lambda out: _age_outputs(out, everything)

    sealed = ws.compare(enc, repeat=repeat, warmup=1, setup=setup)
    _no_plaintext(bulk, files, "sealer seal")
    if ws.sops:
        _no_plaintext(sops_dir, files, "sops encrypt")
    opened = ws.compare(dec, repeat=repeat, warmup=1, check=check)

    rows = []
    for what, samples, sops_label, age_label in (
        ("bulk unseal DIR", opened, "sops decrypt", "age -d"),
        ("seal (1 process)", sealed, "sops encrypt -i", "age -e"),
    ):
        med = {k: median_ms(v) for k, v in samples.items()}
        sops_p = peer(
            med.get("sops"), f"xargs -P{CORES} {sops_label}", med["sealer"], note="" if ws.sops else "sops missing"
        )
        age_p = peer(
            med.get("age"),
            f"xargs -P{CORES} {age_label}, {n} values",
            med["sealer"],
            note="" if ws.age else "age CLI missing",
        )
        rows.append(
            Row(
                name=f"{what}, {FILES} files × {VALUES} values (median of {repeat})",
                value=med["sealer"],
                unit="ms",
                sops=sops_p,
                age=age_p,
                # the goal is for unseal; seal is informational (and must not get slower: see its figure)
                goals=[faster(30, sops_p, "sops")] if samples is opened else [],
                extra={k: spread(v) for k, v in samples.items()},
            )
        )
    return rows


def _all_in(who: str, values: list[str], out: str) -> None:
    if any(v not in out for v in values):
        raise SystemExit(f"bench: {who} does not print every plaintext value")


def _age_outputs(out: str, values: list[str]) -> None:
    """The concatenated output of the `age -d` loop: every value once (all 44 characters long)."""
    size = len(values[0])
    chunks = sorted(out[i : i + size] for i in range(0, len(out), size))
    if chunks != values:
        raise SystemExit("bench: the age -d loop did not give every value back")
