"""SOPS with age recipients: the real sops samples, our exports read back, our exports opened by an
independent composition (the real `age` CLI for the data key, AES-GCM per value, the MAC), sops's
key sources, and every bad input as a typed one-line error.

The sops samples and their keys are public test keys from the sops repository
(`tests/vectors/sops/`); none of them protects anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from sealer._identities import read_identity_file
from sealer._interop import age, sops
from sealer._interop.sops import (
    SopsError,
    SopsFormatError,
    SopsMACError,
    SopsNoKeyError,
    SopsUnsupportedError,
    SopsValueError,
)
from sealer._interop.sops._goyaml import go_resolve
from sealer._interop.sops._tree import go_float
from sealer._keys import Identity, generate_identity
from sealer.errors import IdentityError, SealerError

VECTOR_DIR = Path(__file__).parent / "vectors"  # public peer test data, see vectors/README.md
SAMPLES = VECTOR_DIR / "sops"
SAMPLE_NAMES = ["example.yaml", "example.json", "example.ini", "example.txt"]


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads((SAMPLES / "expected_plaintext.json").read_text())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The samples' keys.txt, copied with the mode sealer requires of private key files."""
    path = tmp_path / "keys.txt"
    path.write_bytes((SAMPLES / "keys.txt").read_bytes())
    path.chmod(0o600)
    return path


@pytest.fixture
def sample_ids(key_file: Path) -> list[Identity]:
    return read_identity_file(key_file)


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    assert isinstance(err, SealerError)
    return text


# --- the real sops samples -------------------------------------------------------------------------


@pytest.mark.parametrize("key_index", [0, 1])
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_decrypts_with_each_key(
    name: str, key_index: int, sample_ids: list[Identity], expected: dict[str, Any]
) -> None:
    want = expected[name]
    doc = sops.read_file(SAMPLES / name, [sample_ids[key_index]])
    assert doc.documents == [want["plaintext"]]
    assert doc.metadata.version == "3.7.1"
    assert doc.format == sops.format_for_path(name)
    if "data_key_hex" in want:
        assert doc.data_key.hex() == want["data_key_hex"]
        assert doc.mac == want["mac_plaintext"]
        assert doc.metadata.lastmodified == want["mac_aad"]
    if name == "example.yaml":
        assert doc.comments == [(c["aad"], c["comment"]) for c in want["decrypted_comments"]]
    if name == "example.ini":
        assert doc.comments == [("name:", "An example file for use with sops!")]
    if name == "example.txt":
        assert doc.raw == want["plaintext"]["data"].encode()


def test_sample_yaml_prints_like_sops_decrypt(sample_ids: list[Identity]) -> None:
    text = sops.read_file(SAMPLES / "example.yaml", sample_ids).to_yaml()
    assert "    db:\n        user: eve\n        password: c4r1b0u\n        # private key for" in text
    assert "    key: |\n        -----BEGIN RSA PRIVATE KEY-----\n" in text
    assert "somebooleans:\n    - true\n    - false\n" in text
    # and it is YAML that means the plaintext
    assert YAML(typ="safe", pure=True).load(text)["app2"]["db"]["password"] == "c4r1b0u"


def test_sample_mac_is_recomputed_not_trusted(sample_ids: list[Identity], expected: dict[str, Any]) -> None:
    """The MAC we compute from the values equals the one the sample carries (independently known)."""
    for name in ("example.yaml", "example.json", "example.txt"):
        assert sops.read_file(SAMPLES / name, sample_ids).mac == expected[name]["mac_plaintext"]


# --- identity sources, as sops finds them -----------------------------------------------------------


def test_sops_age_key_file(key_file: Path) -> None:
    doc = sops.read_file(SAMPLES / "example.json", environ={"SOPS_AGE_KEY_FILE": str(key_file)})
    assert doc.documents[0]["firstName"] == "John"


def test_sops_age_key_several_per_line(key_file: Path) -> None:
    keys = [line for line in key_file.read_text().splitlines() if line.startswith("AGE-")]
    ids = sops.sops_identities({"SOPS_AGE_KEY": " ".join(keys) + "\n# comment\n"})
    assert len(ids) == 2
    doc = sops.read_file(SAMPLES / "example.yaml", environ={"SOPS_AGE_KEY": keys[1]})
    assert doc.documents[0]["app2"]["db"]["user"] == "eve"


def test_sops_age_key_cmd_runs_once_without_shell(key_file: Path, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    script = tmp_path / "print key.py"  # a space: the command line is split like a shell would, no shell runs
    script.write_text(
        f"import sys\nopen({str(counter)!r}, 'a').write('x')\nsys.stdout.write(open({str(key_file)!r}).read())\n"
    )
    command = f"{sys.executable} '{script}' ; echo not-a-shell"
    env = {"SOPS_AGE_KEY_CMD": command, "PATH": "/usr/bin:/bin"}
    doc = sops.read_file(SAMPLES / "example.ini", environ=env)
    assert doc.documents[0]["name"]["firstName"] == "John"
    assert counter.read_text() == "x"


def test_sops_default_keys_file(key_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "xdg"
    (config / "sops" / "age").mkdir(parents=True)
    target = config / "sops" / "age" / "keys.txt"
    target.write_bytes(key_file.read_bytes())
    target.chmod(0o600)
    doc = sops.read_file(SAMPLES / "example.txt", environ={"XDG_CONFIG_HOME": str(config)})
    assert doc.raw is not None and doc.raw.startswith(b"Welcome to SOPS!")


def test_key_sources_refuse_unsafe_files_and_report_problems(key_file: Path, tmp_path: Path) -> None:
    key_file.chmod(0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        sops.sops_identities({"SOPS_AGE_KEY_FILE": str(key_file)})
    with pytest.raises(IdentityError, match="not found"):
        sops.sops_identities({"SOPS_AGE_KEY_FILE": str(tmp_path / "missing.txt")})
    with pytest.raises(IdentityError, match="exit status 3"):
        sops.sops_identities({"SOPS_AGE_KEY_CMD": f"{sys.executable} -c 'raise SystemExit(3)'"})
    with pytest.raises(SealerError, match="line 1") as info:
        sops.sops_identities({"SOPS_AGE_KEY": "AGE-SECRET-KEY-1NOTAKEY"})
    assert "NOTAKEY" not in str(info.value)
    assert sops.sops_identities({"HOME": str(tmp_path)}) == []


def test_passphrase_protected_keys_file(key_file: Path, tmp_path: Path) -> None:
    protected = tmp_path / "keys.age"
    protected.write_bytes(age.encrypt_identity_file(key_file.read_text(), "sesame", work_factor=4))
    protected.chmod(0o600)
    env = {"SOPS_AGE_KEY_FILE": str(protected)}
    with pytest.raises(IdentityError, match="passphrase-protected"):
        sops.sops_identities(env)
    assert len(sops.sops_identities(env, passphrase=lambda source: "sesame")) == 2


# --- export, then our own reader -------------------------------------------------------------------

DOCUMENT: dict[str, Any] = {
    "name": "db",
    "port": 5432,
    "ratio": 0.25,
    "big": 1e21,
    "whole": 3.0,
    "enabled": True,
    "off": False,
    "nothing": None,
    "empty": "",
    "unicode": "päss wörd ✓",
    "multi": "line one\nline two\n",
    "tricky": ["yes", "123", "true", "null", "2024-01-01", "- dash", "a: b", "#hash", " lead", "0x1F", "~"],
    "nested": {"list": [1, {"deep": "x"}, [2, 3]], "keep_unencrypted": "visible", "map": {}},
    "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    "offset": datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=2))),
}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_reads_back(fmt: str) -> None:
    alice, bob = generate_identity(), generate_identity()
    data = sops.write([DOCUMENT], [alice.recipient, str(bob.recipient)], fmt=fmt)
    for who in (alice, bob):
        doc = sops.read(data, fmt, [who])
        assert doc.documents == [DOCUMENT]
        assert doc.metadata.version == sops.SOPS_VERSION
        assert [k.recipient for k in doc.metadata.age_keys] == [str(alice.recipient), str(bob.recipient)]
    assert b"visible" in data and b"line one" not in data and "päss".encode() not in data


def test_export_multi_document_yaml_each_document_has_the_metadata() -> None:
    me = generate_identity()
    data = sops.write([{"a": "1"}, {"b": 2}], [me.recipient])
    assert data.count(b"\nsops:\n") == 2 and data.count(b"\n---\n") == 1
    assert sops.read(data, "yaml", [me]).documents == [{"a": "1"}, {"b": 2}]


def test_export_text_keeps_and_encrypts_comments() -> None:
    me = generate_identity()
    text = (
        "# top of file\n"
        "db:\n"
        "    # about the user\n"
        "    user: admin # inline note\n"
        "    password: hunter2\n"
        "    # trailing in db\n"
        "list:\n"
        "    - one\n"
        "    # between items\n"
        "    - two\n"
        "    - k: v\n"
        "      # inside an item\n"
        "      k2: w\n"
        "port: 5432\n"
    )
    data = sops.write_text(text, [me.recipient])
    assert b"hunter2" not in data and b"about the user" not in data
    doc = sops.read(data, "yaml", [me])
    assert doc.comments == [
        (":", " top of file"),
        ("db:", " about the user"),
        ("db:", " inline note"),
        ("db:", " trailing in db"),
        ("list:", " between items"),
        ("list:", " inside an item"),
    ]
    assert doc.documents == [
        {"db": {"user": "admin", "password": "hunter2"}, "list": ["one", "two", {"k": "v", "k2": "w"}], "port": 5432}
    ]
    assert doc.to_yaml() == text


def test_export_rules() -> None:
    me = generate_identity()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "pw"}}
    data = sops.write([secret], [me.recipient], encrypted_regex="^(data|stringData)$")
    assert b"kind: Secret" in data and b"name: db" in data and b"pw\n" not in data
    assert b"encrypted_regex: ^(data|stringData)$" in data and b"unencrypted_suffix" not in data
    assert sops.read(data, "yaml", [me]).documents == [secret]
    mac_only = sops.write([secret], [me.recipient], encrypted_regex="^stringData$", mac_only_encrypted=True)
    edited = mac_only.replace(b"name: db", b"name: other")
    assert sops.read(edited, "yaml", [me]).documents[0]["metadata"]["name"] == "other"
    with pytest.raises(SopsFormatError):
        sops.write([secret], [me.recipient], encrypted_regex="x", unencrypted_suffix="_u")


def test_export_refuses_what_sops_cannot_hold() -> None:
    me = generate_identity()
    with pytest.raises(SopsFormatError, match="reserved"):
        sops.write([{"sops": 1}], [me.recipient])
    with pytest.raises(SopsUnsupportedError, match="string"):
        sops.write([{1: "x"}], [me.recipient])  # type: ignore[dict-item]
    with pytest.raises(SopsUnsupportedError, match="64 bits"):
        sops.write([{"n": 2**70}], [me.recipient])
    with pytest.raises(SopsUnsupportedError, match="one document"):
        sops.write([{"a": 1}, {"b": 2}], [me.recipient], fmt="json")
    with pytest.raises(SopsFormatError, match="semver"):
        sops.write([{"a": 1}], [me.recipient], version="3.13")
    with pytest.raises(SealerError):
        sops.write([{"a": 1}], ["AGE-SECRET-KEY-1QQQQ"])


# --- export, then an independent composition -------------------------------------------------------

ENC = re.compile(r"ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:(\w+)\]")


def _go_float(value: float) -> str:
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _open_independently(data: bytes, fmt: str, key_file: Path, age_bin: str) -> tuple[list[Any], bytes]:
    """Decrypt a SOPS file with nothing from sealer: the data key through `age -d`, AES-256-GCM per
    value with AAD "key:key:", the MAC as SHA-512 over the plaintext values in order."""
    docs = [json.loads(data)] if fmt == "json" else list(YAML(typ="safe", pure=True).load_all(data.decode()))
    meta = docs[0]["sops"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["lastmodified"])
    keys = set()
    for entry in meta["age"]:
        assert entry["enc"].startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")
        out = subprocess.run([age_bin, "-d", "-i", str(key_file)], input=entry["enc"].encode(), capture_output=True)
        if out.returncode == 0:
            keys.add(out.stdout)
    assert len(keys) == 1
    key = keys.pop()
    assert len(key) == 32
    mac = hashlib.sha512()

    def walk(value: Any, path: list[str]) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, [*path, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path) for v in value]
        if value is None:
            return None
        m = ENC.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            plain = (
                str(value).encode()
                if not isinstance(value, (bool, float))
                else (str(value).encode() if isinstance(value, bool) else _go_float(value).encode())
            )
            mac.update(plain)
            return value
        ciphertext, iv, tag = (base64.b64decode(g) for g in m.group(1, 2, 3))
        assert len(iv) == 32 and len(tag) == 16
        plain = AESGCM(key).decrypt(iv, ciphertext + tag, (":".join(path) + ":").encode())
        mac.update(plain)
        text = plain.decode()
        return {
            "str": lambda: text,
            "int": lambda: int(text),
            "float": lambda: float(text),
            "bool": lambda: text == "True",
            "time": lambda: text,
        }[m.group(4)]()

    plaintext = [walk({k: v for k, v in doc.items() if k != "sops"}, []) for doc in docs]
    m = ENC.fullmatch(meta["mac"])
    assert m is not None and m.group(4) == "str"
    ciphertext, iv, tag = (base64.b64decode(g) for g in m.group(1, 2, 3))
    stored = AESGCM(key).decrypt(iv, ciphertext + tag, meta["lastmodified"].encode())
    assert stored == mac.hexdigest().upper().encode()
    return plaintext, key


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_opens_with_independent_composition(fmt: str, tmp_path: Path) -> None:
    age_bin = require_tool("age")
    me = generate_identity()
    key_file = tmp_path / "me.txt"
    key_file.write_text(me.encode() + "\n")
    document = {k: v for k, v in DOCUMENT.items() if k not in ("when", "offset")}
    data = sops.write([document], [generate_identity().recipient, me.recipient], fmt=fmt)
    plaintext, key = _open_independently(data, fmt, key_file, age_bin)
    assert plaintext == [document]
    assert key == sops.read(data, fmt, [me]).data_key


def test_export_comments_open_independently(tmp_path: Path) -> None:
    """Each encrypted comment opens with the AAD of the mapping or list it sits in."""
    age_bin = require_tool("age")
    me = generate_identity()
    key_file = tmp_path / "me.txt"
    key_file.write_text(me.encode() + "\n")
    text = "# head\na:\n    # in a\n    b: 1 # inline in a\n    c:\n        - x\n        # in c\n        - y\nd: 2\n"
    data = sops.write_text(text, [me.recipient])
    _, key = _open_independently(data, "yaml", key_file, age_bin)
    found = []
    for line in data.decode().splitlines():
        m = re.search(r"#(ENC\[[^\]]+\])", line)
        if m:
            found.append(ENC.fullmatch(m.group(1)))
    aads = [":", "a:", "a:", "a:c:"]
    assert len(found) == len(aads)
    for m, aad in zip(found, aads, strict=True):
        assert m is not None and m.group(4) == "comment"
        ciphertext, iv, tag = (base64.b64decode(g) for g in m.group(1, 2, 3))
        AESGCM(key).decrypt(iv, ciphertext + tag, aad.encode())


def test_export_layout_is_sops_3_13() -> None:
    me = generate_identity()
    data = sops.write([{"db": {"password": "x"}, "list": ["a"]}], [me.recipient]).decode()
    assert data.startswith("db:\n    password: ENC[AES256_GCM,data:")
    assert "\nlist:\n    - ENC[AES256_GCM," in data
    assert "\nsops:\n    age:\n        - enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n" in data
    assert f"            -----END AGE ENCRYPTED FILE-----\n          recipient: {me.recipient}\n" in data
    assert re.search(r'\n    lastmodified: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\n    mac: ENC\[AES256_GCM,', data)
    assert data.endswith(f"    unencrypted_suffix: _unencrypted\n    version: {sops.SOPS_VERSION}\n")
    for iv in re.findall(r"iv:([^,]+),", data):
        assert len(base64.b64decode(iv)) == 32
    js = sops.write([{"a": "x"}], [me.recipient], fmt="json").decode()
    assert js.startswith('{\n\t"a": "ENC[AES256_GCM,') and js.endswith('\t\t"version": "3.13.2"\n\t}\n}\n')


# --- dotenv and INI in the 3.13 flattened layout (built here, independently of our writer) ---------


def _flat_metadata(key: bytes, recipient: str, mac_hex: str, lastmodified: str) -> dict[str, str]:
    iv = bytes(range(32))
    out = AESGCM(key).encrypt(iv, mac_hex.encode(), lastmodified.encode())
    mac = f"ENC[AES256_GCM,data:{base64.b64encode(out[:-16]).decode()},iv:{base64.b64encode(iv).decode()},"
    mac += f"tag:{base64.b64encode(out[-16:]).decode()},type:str]"
    return {
        "age__list_0__map_enc": age.encrypt(key, [recipient], armor=True).decode(),
        "age__list_0__map_recipient": recipient,
        "lastmodified": lastmodified,
        "mac": mac,
        "unencrypted_suffix": "_unencrypted",
        "version": "3.13.2",
    }


def _enc(key: bytes, value: str, aad: str, vtype: str = "str") -> str:
    iv = hashlib.sha256(aad.encode() + value.encode()).digest()
    out = AESGCM(key).encrypt(iv, value.encode(), aad.encode())
    data, nonce, tag = (base64.b64encode(x).decode() for x in (out[:-16], iv, out[-16:]))
    return f"ENC[AES256_GCM,data:{data},iv:{nonce},tag:{tag},type:{vtype}]"


def test_dotenv_and_ini_with_flattened_metadata() -> None:
    me = generate_identity()
    key = bytes(range(32))
    stamp = "2025-06-01T10:00:00Z"
    mac = hashlib.sha512(b"s3cret\nwithnewlineclear").hexdigest().upper()
    meta = _flat_metadata(key, str(me.recipient), mac, stamp)
    env_lines = [
        "#" + _enc(key, " a comment", ":", "comment"),
        "PASSWORD=" + _enc(key, "s3cret\nwithnewline", "PASSWORD:"),
        "NOTE_unencrypted=clear",
        *(f"sops_{k}={v.replace(chr(10), chr(92) + 'n')}" for k, v in sorted(meta.items())),
    ]
    doc = sops.read("\n".join(env_lines).encode() + b"\n", "dotenv", [me])
    assert doc.documents == [{"PASSWORD": "s3cret\nwithnewline", "NOTE_unencrypted": "clear"}]
    assert doc.comments == [(":", " a comment")]

    ini_mac = hashlib.sha512(b"s3cretclear").hexdigest().upper()
    meta = _flat_metadata(key, str(me.recipient), ini_mac, stamp)
    ini = [
        "; " + _enc(key, "about app", "app:", "comment"),
        "[app]",
        "password = " + _enc(key, "s3cret", "app:password:"),
        "note_unencrypted = clear",
        "",
        "[sops]",
        *(f"{k} = {v.replace(chr(10), chr(92) + 'n')}" for k, v in meta.items()),
    ]
    doc = sops.read("\n".join(ini).encode(), "ini", [me])
    assert doc.documents == [{"app": {"password": "s3cret", "note_unencrypted": "clear"}}]
    assert doc.comments == [("app:", "about app")]


# --- bad input: typed, one line, nothing secret ----------------------------------------------------


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace(b"- remain in clear text", b"- remain in clear text!"),  # an unencrypted value
        lambda t: t.replace(  # two list items swapped: each still opens at its place, the order is covered
            b"    - ENC[AES256_GCM,data:Kz5fYNAguRjkRY4=,iv:pmunK+mDtaAZr8inbSIJWBMDPUHp8/YyJjnYJ76RCpo=,"
            b"tag:K7EtHFPMiQZDbJ73zFIErw==,type:str]\n    - ENC[AES256_GCM,data:nQSYDNgm6hKdvbU=,"
            b"iv:VyZHyQktkO4fk6ahGL84nWvxkmLBAwosr0eXzlimZOY=,tag:F5lTnici87PZ7zbHyrKTTg==,type:str]\n",
            b"    - ENC[AES256_GCM,data:nQSYDNgm6hKdvbU=,iv:VyZHyQktkO4fk6ahGL84nWvxkmLBAwosr0eXzlimZOY=,"
            b"tag:F5lTnici87PZ7zbHyrKTTg==,type:str]\n    - ENC[AES256_GCM,data:Kz5fYNAguRjkRY4=,"
            b"iv:pmunK+mDtaAZr8inbSIJWBMDPUHp8/YyJjnYJ76RCpo=,tag:K7EtHFPMiQZDbJ73zFIErw==,type:str]\n",
        ),
        lambda t: re.sub(rb"\n    - ENC\[[^\n]*type:bool\]", b"", t, count=1),  # a value removed
        lambda t: t.replace(b'lastmodified: "2022-03-15T22:11:15Z"', b'lastmodified: "2022-03-15T22:11:16Z"'),
        lambda t: re.sub(rb"\n    mac: [^\n]*", b"\n    mac: ''", t),
    ],
)
def test_bad_mac(edit: Any, sample_ids: list[Identity]) -> None:
    data = edit(_sample("example.yaml"))
    assert data != _sample("example.yaml")
    with pytest.raises(SopsMACError) as info:
        sops.read(data, "yaml", sample_ids, source="example.yaml")
    assert _one_line(info.value).startswith("example.yaml: ")


def test_no_age_stanza_for_our_identities(sample_ids: list[Identity]) -> None:
    stranger = generate_identity()
    with pytest.raises(SopsNoKeyError) as info:
        sops.read(_sample("example.json"), "json", [stranger])
    text = _one_line(info.value)
    assert stranger.kid in text and "2 age stanzas" in text
    with pytest.raises(SopsNoKeyError, match="SOPS_AGE_KEY_FILE"):
        sops.read(_sample("example.json"), "json", [])
    with pytest.raises(SopsNoKeyError):
        sops.read(_sample("example.json"), "json", environ={"HOME": "/nonexistent"})


PGP = {"fp": "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4", "created_at": "2022-03-15T22:11:15Z", "enc": "x"}
OTHER_KEYS = {
    "pgp": ("PGP", [PGP]),
    "kms": ("AWS KMS", [{"arn": "arn:aws:kms:eu-west-1:1:key/x", "created_at": "2022-03-15T22:11:15Z", "enc": "x"}]),
    "gcp_kms": ("GCP KMS", [{"resource_id": "projects/p/keys/k", "created_at": "2022-03-15T22:11:15Z", "enc": "x"}]),
    "azure_kv": ("Azure Key Vault", [{"vault_url": "https://v", "name": "k", "version": "1", "enc": "x"}]),
    "hc_vault": ("HashiCorp Vault", [{"vault_address": "https://v", "key_name": "k", "enc": "x"}]),
}


def _with_metadata(change: Any) -> bytes:
    data = json.loads(_sample("example.json"))
    change(data["sops"])
    return json.dumps(data).encode()


@pytest.mark.parametrize("kinds", [["pgp"], ["kms"], ["gcp_kms"], ["azure_kv"], ["hc_vault"], ["kms", "pgp"]])
def test_unsupported_master_keys_are_named(kinds: list[str], sample_ids: list[Identity]) -> None:
    def change(meta: dict[str, Any]) -> None:
        meta["age"] = None
        for kind in kinds:
            meta[kind] = OTHER_KEYS[kind][1]

    with pytest.raises(SopsUnsupportedError) as info:
        sops.read(_with_metadata(change), "json", sample_ids)
    text = _one_line(info.value)
    for kind in kinds:
        assert OTHER_KEYS[kind][0] in text
    assert "age recipients only" in text


def test_other_key_types_beside_age_are_fine(sample_ids: list[Identity]) -> None:
    data = _with_metadata(lambda meta: meta.update(pgp=[PGP]))
    assert sops.read(data, "json", sample_ids).documents[0]["lastName"] == "Smith"


def test_shamir_key_groups_are_refused(sample_ids: list[Identity]) -> None:
    def change(meta: dict[str, Any]) -> None:
        ages = meta.pop("age")
        meta["key_groups"] = [{"age": [ages[0]]}, {"age": [ages[1]]}]
        meta["shamir_threshold"] = 2

    with pytest.raises(SopsUnsupportedError, match="Shamir"):
        sops.read(_with_metadata(change), "json", sample_ids)


def test_one_key_group_is_read(sample_ids: list[Identity]) -> None:
    def change(meta: dict[str, Any]) -> None:
        meta["key_groups"] = [{"age": meta.pop("age")}]

    assert sops.read(_with_metadata(change), "json", sample_ids).documents[0]["firstName"] == "John"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"data:yCl85sw=,", b"data:yCl8,"),  # truncated ciphertext (still base64)
        (b"tag:Gd9PMhhJeF/fcnC0WR2g1A==", b"tag:Gd9PMhhJeF/fcnC0WR2g"),  # truncated tag
        (b"data:yCl85sw=,", b"data:yCl8!5sw=,"),  # garbled base64
        (b"iv:tOpTIExH/3ECW1a9iyu6M/tQOK+nQegnSQrvC/kDyJU=", b"iv:AAAA"),  # short IV
        (b'type:str]",\n\t"age"', b'type:xml]",\n\t"age"'),  # unknown type tag
        (b'"ENC[AES256_GCM,data:yCl85sw=', b'"ENC[AES256_GCM,dat:yCl85sw='),  # not the ENC syntax
        (b'"ENC[AES256_GCM,data:yCl85sw=', b'"Smith", "x": "'),  # plaintext where a value must be encrypted
    ],
)
def test_garbled_or_truncated_values(old: bytes, new: bytes, sample_ids: list[Identity]) -> None:
    data = _sample("example.json")
    assert old in data
    with pytest.raises(SopsValueError) as info:
        sops.read(data.replace(old, new, 1), "json", sample_ids)
    assert "Smith" not in _one_line(info.value)


def test_value_moved_to_another_key_does_not_open(sample_ids: list[Identity]) -> None:
    data = json.loads(_sample("example.json"))
    data["lastName"], data["firstName"] = data["firstName"], data["lastName"]
    with pytest.raises(SopsValueError, match=r"lastName|firstName"):
        sops.read(json.dumps(data).encode(), "json", sample_ids)


@pytest.mark.parametrize(
    ("fmt", "data", "match"),
    [
        ("yaml", b"a: 1\n", "no sops metadata"),
        ("yaml", b"a: [1\n", "malformed YAML"),
        ("yaml", b"- 1\n- 2\n", "not a mapping"),
        ("json", b'{"a": 1', "malformed JSON"),
        ("json", b"[1]", "top level"),
        ("dotenv", b"A=1\n", "no sops_"),
        ("ini", b"[a]\nb = 1\n", "no \\[sops\\]"),
        ("yaml", b"\xff\xfe", "UTF-8"),
        ("toml", b"", "unknown SOPS store"),
    ],
)
def test_not_sops_files(fmt: str, data: bytes, match: str) -> None:
    with pytest.raises(SopsFormatError, match=match) as info:
        sops.read(data, fmt, [generate_identity()])
    _one_line(info.value)


def test_truncated_file(sample_ids: list[Identity]) -> None:
    data = _sample("example.yaml")
    for cut in (len(data) // 3, len(data) // 2, len(data) - 40):
        with pytest.raises(SopsError) as info:
            sops.read(data[:cut], "yaml", sample_ids)
        _one_line(info.value)


def test_errors_never_show_plaintext_or_keys(sample_ids: list[Identity], key_file: Path) -> None:
    data = _sample("example.yaml").replace(b"- remain in clear text", b"- changed")
    with pytest.raises(SopsError) as info:
        sops.read(data, "yaml", sample_ids)
    text = str(info.value)
    for secret in ("c4r1b0u", "t00m4nys3cr3t", *(i.encode() for i in sample_ids)):
        assert secret not in text


# --- go-yaml's scalar rules, which decide what a value hashes as ---------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("true", True),
        ("False", False),
        ("~", None),
        ("0777", 511),
        ("0o17", 15),
        ("0x1F", 31),
        ("0b101", 5),
        ("1_000", 1000),
        ("08", 8.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-.inf", float("-inf")),
        ("2024-1-2", sops.GoTime("2024-01-02T00:00:00Z")),
        ("2024-01-02T03:04:05.500+00:00", sops.GoTime("2024-01-02T03:04:05.5Z")),
        ("2024-01-02 03:04:05", sops.GoTime("2024-01-02T03:04:05Z")),
        ("2024-13-02", "2024-13-02"),
        ("1.2.3", "1.2.3"),
    ],
)
def test_go_yaml_resolution(text: str, value: Any) -> None:
    assert go_resolve(text) == value
    assert type(go_resolve(text)) is type(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (25.4, "25.4"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"), (-0.0, "-0")],
)
def test_go_float_format(value: float, text: str) -> None:
    assert go_float(value) == text


def test_suggested_rule_mirrors_sealer_selection() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "dg=="}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"k": "v"}}
    assert sops.suggested_rule([secret, secret]) == {"encrypted_regex": "^(data|stringData)$"}
    assert sops.suggested_rule([secret, config]) == {"unencrypted_regex": "^(apiVersion|kind|metadata)$"}
    assert sops.suggested_rule([{"db": {"password": "x"}}]) == {}
    me = generate_identity()
    data = sops.write([secret, config], [me.recipient], **sops.suggested_rule([secret, config]))
    assert b"kind: ConfigMap" in data and b"name: b" in data and b"k: v\n" not in data


# --- property: whatever we write, our reader and a YAML 1.2 reader read back ------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=16)
_LEAF = st.one_of(_TEXT, st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.booleans(), st.none())
_TREE = st.recursive(_LEAF, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_TEXT, c, max_size=3)))
_ME = generate_identity()


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(_TEXT.filter(lambda k: k != "sops"), _TREE, max_size=4), st.sampled_from(["yaml", "json"]))
def test_any_document_round_trips(document: dict[str, Any], fmt: str) -> None:
    back = sops.read(sops.write([document], [_ME.recipient], fmt=fmt), fmt, [_ME])
    assert back.documents == [document]
    printed = back.to_yaml()
    assert sops.read(sops.write_text(printed, [_ME.recipient]), "yaml", [_ME]).documents == [document]
    if all(isinstance(v, str) for v in document.values()):
        assert (YAML(typ="safe", pure=True).load(printed) or {}) == document


# --- whole numbers, binary payloads, bytes that are not text (issue 14, item 12) -------------------


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_whole_floats_come_back_as_ints(fmt: str) -> None:
    """sops before 3.13 stores every JSON number (and every `sops set` number) as type:float with
    Go's text, `7`; `sops decrypt` prints 7, so the reader gives an int. The MAC is unchanged."""
    me = generate_identity()
    doc = {"n": 7.0, "neg": -3.0, "half": 0.5, "big": 2.0**63, "minus_zero": -0.0, "top": float(2**62), "i": 7}
    data = sops.write([doc], [me.recipient], fmt=fmt)
    assert data.count(b"type:float") == 6  # as sops 3.11 writes them
    back = sops.read(data, fmt, [me]).documents[0]
    assert {k: type(v) for k, v in back.items()} == {
        "n": int,
        "neg": int,
        "half": float,
        "big": float,  # outside int64
        "minus_zero": float,
        "top": int,
        "i": int,
    }
    assert back == doc and back["top"] == 2**62


def _binary_file(payload: bytes, me: Identity) -> bytes:
    """A binary-store SOPS file as sops writes one: the JSON envelope with one `data` value."""
    return sops.write([{"data": payload}], [me.recipient], fmt="json")


def test_binary_payload_as_a_secret() -> None:
    me = generate_identity()
    payload = bytes(range(256))
    doc = sops.read(_binary_file(payload, me), "binary", [me], source="secrets/TLS_key.bin")
    assert doc.raw == payload
    secret = YAML(typ="safe", pure=True).load(doc.to_secret())
    assert secret["metadata"] == {"name": "tls-key.bin"} and secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["TLS_key.bin"]) == payload
    chosen = YAML(typ="safe", pure=True).load(doc.to_secret(name="tls", key="tls.key", namespace="shop"))
    assert chosen["metadata"] == {"name": "tls", "namespace": "shop"} and list(chosen["data"]) == ["tls.key"]
    for bad, needle in (
        ({"name": "Bad_Name"}, "--name"),
        ({"key": "a/b"}, "--key"),
        ({"namespace": "a.b"}, "--namespace"),
    ):
        with pytest.raises(SopsUnsupportedError, match=needle) as err:
            doc.to_secret(**bad)
        assert _one_line(err.value).startswith("secrets/TLS_key.bin: ")
    text = sops.read(sops.write([{"a": "b"}], [me.recipient]), "yaml", [me], source="t.yaml")
    with pytest.raises(SopsUnsupportedError, match=r"^t\.yaml: .*to_yaml"):
        text.to_secret()


def test_bytes_that_are_not_text_are_named_by_file_and_place() -> None:
    """Before: 'a key, comment or clear value is not UTF-8 text', naming neither file nor value."""
    me = generate_identity()
    raw = b"CANARY\xff\xfe"
    data = sops.write([{"db": {"pw": raw.decode("utf-8", "surrogateescape")}}], [me.recipient], fmt="json")
    doc = sops.read(data, "json", [me], source="secrets/app.json")
    assert doc.documents == [{"db": {"pw": raw.decode("utf-8", "surrogateescape")}}]  # read() keeps the bytes
    with pytest.raises(SopsUnsupportedError) as err:
        doc.to_yaml()
    line = _one_line(err.value)
    assert line.startswith("secrets/app.json: the value at db.pw is not UTF-8 text") and "binary" in line
    assert "CANARY" not in line and "\\xff" not in line


def test_ini_comments_stay_above_their_key(sample_ids: list[Identity]) -> None:
    """go-ini holds a key's comment after the key; sops writes it above, and so does to_yaml."""
    text = sops.read_file(SAMPLES / "example.ini", sample_ids).to_yaml()
    assert text.startswith("name:\n    # An example file for use with sops!\n"), text
