"""Untrusted YAML through the CLI (DESIGN.md §10): size cap, alias bombs, custom tags, paths that
escape the repository, non-UTF-8 input. Each case must end in one clear line on stderr (or, where the
input is harmless, a bounded success), never a traceback, and never a constructed object.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEALER, Repo, assert_clean_failure

from sealer._fsio import MAX_FILE_BYTES

SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\nstringData:\n  password: CANARY-un7\n"
BOMB = "".join(
    [
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        *(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
    ]
)  # 9^9 (387 million) leaves once expanded


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path, "prod", keys=("prod",))


def peak_rss_run(repo: Repo, *args: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run through a tiny wrapper so that wait4 gives the child's own peak RSS (KiB)."""
    code = (
        "import os,subprocess,sys,time,json;t=time.perf_counter();"
        "p=subprocess.Popen(sys.argv[1:],stdout=subprocess.PIPE,stderr=subprocess.PIPE);"
        "o,e=p.communicate();"
        "print(json.dumps([p.returncode,e.decode(),time.perf_counter()-t,"
        "__import__('resource').getrusage(__import__('resource').RUSAGE_CHILDREN).ru_maxrss]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, SEALER, *args],
        cwd=repo.root,
        env=repo.env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    import json

    rc, err, wall, rss = json.loads(r.stdout)
    return subprocess.CompletedProcess(args, rc, "", err), wall, rss


# --- size cap ----------------------------------------------------------------------------------------


def test_file_over_the_size_cap_is_refused_by_every_reader(repo: Repo) -> None:
    big = SECRET + "# " + "x" * (MAX_FILE_BYTES - len(SECRET)) + "\n"
    repo.write("deploy/prod/big.yaml", big)
    assert (repo.root / "deploy/prod/big.yaml").stat().st_size > MAX_FILE_BYTES
    for args in (
        ["seal", "deploy/prod/big.yaml"],
        ["set", "deploy/prod/big.yaml", "stringData.x"],
        ["unseal", "deploy/prod/big.yaml", "--format", "json", "-i", str(repo.keys["prod"])],
    ):
        assert_clean_failure(repo.run(*args, stdin="v"), "deploy/prod/big.yaml", "8 MiB limit")
    r = repo.run("check", "deploy/prod/big.yaml")
    assert r.returncode == 1 and "8 MiB limit" in r.stdout and "Traceback" not in r.stderr
    r = repo.run("seal", "-", "--env", "prod", stdin=big)
    assert_clean_failure(r, "8 MiB limit")


# --- alias bombs ------------------------------------------------------------------------------------


def test_alias_bomb_in_a_file_to_seal_fails_fast(repo: Repo) -> None:
    repo.write("deploy/prod/bomb.yaml", BOMB)
    r, wall, rss = peak_rss_run(repo, "seal", "deploy/prod/bomb.yaml")
    assert_clean_failure(r, "deploy/prod/bomb.yaml", "anchors and aliases")
    assert wall < 10 and rss < 200_000, (wall, rss)
    print(f"\nalias bomb, seal: exit {r.returncode} in {wall * 1000:.0f} ms, peak RSS {rss // 1024} MiB")


def test_alias_bomb_in_a_sealed_file_unsealed_as_json_fails_fast(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    p = repo.root / "deploy/prod/db.yaml"
    # The bomb lives where nothing is sealed (an annotation-like top-level key), so seal and check
    # accept the file; building JSON would expand it.
    p.write_text(p.read_text() + "extra:\n" + "".join("  " + ln + "\n" for ln in BOMB.splitlines()))
    for fmt in ("json", "k8s", "yaml", "dotenv"):
        r, wall, rss = peak_rss_run(
            repo, "unseal", "deploy/prod/db.yaml", "--format", fmt, "-i", str(repo.keys["prod"])
        )
        took = f"exit {r.returncode} in {wall * 1000:.0f} ms, peak RSS {rss // 1024} MiB"
        print(f"\nalias bomb, unseal --format {fmt}: {took}")
        assert wall < 10 and rss < 300_000, (fmt, wall, rss)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
        if r.returncode != 0:
            assert_clean_failure(r, "deploy/prod/db.yaml")


# --- tags ------------------------------------------------------------------------------------------------


def test_custom_tags_are_never_constructed(repo: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f'!!python/object/apply:os.system ["touch {marker}"]'
    repo.write("deploy/prod/tag.yaml", SECRET + f"  evil: {payload}\n")
    assert_clean_failure(repo.run("seal", "deploy/prod/tag.yaml"), "deploy/prod/tag.yaml", "stringData.evil")
    repo.write("deploy/prod/foo.yaml", "app:\n  token: !foo CANARY-un7\n")
    assert_clean_failure(repo.run("seal", "deploy/prod/foo.yaml"), "app.token", "custom tag !foo")
    # Where nothing is sealed, a tag may stay, and unsealing does not construct it either.
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    p = repo.root / "deploy/prod/db.yaml"
    p.write_text(p.read_text() + f"hook: {payload}\nobj: !!python/object:os.system {{}}\nfoo: !foo bar\n")
    for fmt in ("json", "k8s", "yaml"):
        r = repo.run("unseal", "deploy/prod/db.yaml", "--format", fmt, "-i", str(repo.keys["prod"]))
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
        if r.returncode != 0:
            assert_clean_failure(r)
    repo.run("check")
    assert not marker.exists()


# --- non-UTF-8 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"a: \xff\xfe\n", b"\xef\xbb\xbfa: caf\xe9\n", b"a: \xed\xa0\x80\n", b"\xff\xfea\x00:\x00"]
)
def test_non_utf8_input_is_one_clear_line(repo: Repo, raw: bytes) -> None:
    repo.write("deploy/prod/bin.yaml", raw)
    for args in (
        ["seal", "deploy/prod/bin.yaml"],
        ["set", "deploy/prod/bin.yaml", "a"],
        ["unseal", "deploy/prod/bin.yaml", "--format", "json", "-i", str(repo.keys["prod"])],
    ):
        assert_clean_failure(repo.run(*args, stdin="v"), "deploy/prod/bin.yaml", "not UTF-8")
    assert (repo.root / "deploy/prod/bin.yaml").read_bytes() == raw
    r = repo.run("check", "deploy/prod/bin.yaml")
    assert r.returncode == 1 and "not UTF-8" in r.stdout and "Traceback" not in r.stderr


# --- paths that escape the repository ---------------------------------------------------------------------


@pytest.fixture
def outside(repo: Repo) -> Path:
    """A directory next to the repository, with a plaintext Secret; and two ways in from deploy/prod:
    a symlinked file (link.yaml) and a symlinked directory (sub/)."""
    out = repo.tmp / "outside"
    out.mkdir()
    (out / "s.yaml").write_text(SECRET)
    (repo.root / "deploy/prod").mkdir(parents=True)
    (repo.root / "deploy/prod/link.yaml").symlink_to(out / "s.yaml")
    (repo.root / "deploy/prod/sub").symlink_to(out)
    return out


@pytest.mark.parametrize(
    "rel", ["deploy/prod/link.yaml", "deploy/prod/sub/s.yaml", "deploy/prod/../../../outside/s.yaml"]
)
def test_a_path_escaping_the_repository_is_refused_without_env(repo: Repo, outside: Path, rel: str) -> None:
    assert_clean_failure(repo.run("seal", rel), "outside the sealer repository", code=2)
    assert_clean_failure(repo.run("set", rel, "stringData.x", stdin="v"), "outside the sealer repository", code=2)
    assert (outside / "s.yaml").read_text() == SECRET
    assert (repo.root / "deploy/prod/link.yaml").is_symlink()


def test_reading_commands_do_not_follow_symlinked_directories(repo: Repo, outside: Path) -> None:
    """Walks of the repository (check, reseal, unseal DIR) see no file behind deploy/prod/sub/."""
    r = repo.run("unseal", "deploy/prod", "--format", "json", "-i", str(repo.keys["prod"]))
    assert "sub/s.yaml" not in r.stdout + r.stderr
    r = repo.run("check")
    assert "sub/s.yaml" not in r.stdout + r.stderr
    assert (outside / "s.yaml").read_text() == SECRET


@pytest.mark.parametrize("command", ["seal", "set"])
def test_writes_never_land_outside_the_repository_through_a_symlink(repo: Repo, outside: Path, command: str) -> None:
    args = ["seal", "deploy/prod/sub/s.yaml", "--env", "prod"]
    if command == "set":
        args = ["set", "deploy/prod/sub/s.yaml", "stringData.x", "--env", "prod"]
    r = repo.run(*args, stdin="v")
    assert (outside / "s.yaml").read_text() == SECRET, "a write landed outside the repository"
    assert_clean_failure(r, "outside", code=r.returncode)
