"""Unsealed output, read back by the programs that consume it, is the data that was sealed.

Values that YAML readers love to reinterpret (`yes`, `on`, `0777`, `1:20`, `2024-01-01`, `=`, `<<`,
multi-line certificates, leading spaces, trailing newlines, control characters) are sealed through the
real CLI as Secret stringData strings, as Secret data bytes, as mapping keys, and as typed values of a
plain config; then `sealer unseal --format k8s|yaml|json|dotenv` is read by:

- PyYAML `safe_load` (YAML 1.1, the pure reader and libyaml's, whose rules Go's yaml.v2 ports),
- ruamel.yaml's safe loader (YAML 1.2),
- kubectl: `kubectl annotate --local -f FILE -o json` parses the file exactly as `kubectl apply -f`
  does (sigs.k8s.io/yaml over yaml.v2) and prints JSON without any API server; and `kubectl
  kustomize DIR` (kyaml, yaml.v3) with the output as a resource, its result read by kubectl again,
- `json.loads` refusing NaN and Infinity,
- bash and dash sourcing the dotenv file (`set -a; . ./out.env`), compared through `env -0`.

Plus a property test of the encoder itself (sealer._yamlout) against both Python readers, and one batch
of generated strings through kubectl. No tool is mocked; a missing one skips locally and fails in CI.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Repo, require_tool
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from sealer import _yamlout

# --- the values ----------------------------------------------------------------------------------

# Plain, each of these is a bool, null, int, float, timestamp, merge key, value key or syntax to some
# YAML reader (1.1: PyYAML, kubectl's yaml.v2; 1.2: ruamel, yaml.v3).
NASTY = (
    *("yes", "no", "on", "off", "y", "n", "Y", "N", "Yes", "NO", "On", "OFF", "True", "FALSE", "true"),
    *("~", "null", "Null", "NULL"),
    *("0777", "0o17", "0x1F", "0b101", "1e3", "1E3", "1_000", "1:20", "190:20:30", "-1:20", "+12", "-0", "0"),
    *(".inf", "-.inf", "+.inf", ".Inf", ".NaN", ".nan", ".5", "1.", "1.0", "12e03", "6.8523015e+5"),
    *("2024-01-01", "2024-01-01 10:00:00", "2024-01-01T10:00:00Z", "2001-12-14t21:59:43.10-05:00"),
    *("=", "<<", "-", "--", "---", "...", "?", ":", "x:", "x: y", "#c", "a #b", "- a", "? q", "!tag", "!!str"),
    *("&a", "*a", "%TAG", "@x", "`x", "[a]", "{a}", "|", ">", "'q'", '"q"', ",", " ", " lead", "trail "),
)
MULTILINE = (
    "line1\nline2",
    "line1\nline2\n",
    "a\n\n",
    "a\n\n\n",
    " lead\nx\n",
    "\n lead",
    "\nx",
    "x \ny ",
    "  two\n",
    "x\n \ny",
    "tab\tinside\nnext",
    "cr\r\nlf\n",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUY2FuYXJ5LWNlcnQ=\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUY2FuYXJ5LWNlcnQ=\n-----END CERTIFICATE-----",
    "key: value\n- item\n# comment\n---\n",
)
SHELL = (
    *("it's", "'", "''", '"', "$HOME", "${HOME}", "$(touch PWNED)", "`touch PWNED2`", "\\", "\\n", "a\\"),
    *("*", "~", "~/x", "!!", "a;b", "a&b", "a|b", "<x", ">x", "  spaced  ", "\t", "-n", "a=b", "x\n", "\n", ""),
    "\r",
)
UNICODE = ("héllo", "日本語", "é\u2028x", "\u0085", "\ufeff", "\u00a0nbsp", "😀", "\x7f", "\x01\x1b[31m", "ø:1")
TEXTS = tuple(dict.fromkeys(NASTY + MULTILINE + SHELL + UNICODE))
KEYS = tuple(k for k in dict.fromkeys(NASTY + UNICODE) if k.strip())  # as mapping keys
BLOBS = {
    "all": bytes(range(256)),
    "nul": b"\0",
    "empty": b"",
    "ff": b"\xff\xfe",
    "plus": b"\xfb\xff",
    # base64 text that YAML reads as a number: `1234`, `1e10` (see test_yaml_format_quotes_numeric_base64)
    "num": base64.b64decode("1234"),
    "exp": base64.b64decode("1e10"),
}
TYPED = {  # app.typed.NAME: (--type, text on stdin, the value every reader must see)
    "count": ("int", "42", 42),
    "neg": ("int", "-7", -7),
    "ratio": ("float", "1.5", 1.5),
    "small": ("float", "-0.25", -0.25),
    "huge": ("float", "1.0e+20", 1e20),
    "enabled": ("bool", "true", True),
    "off": ("bool", "false", False),
}


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def src(s: str) -> str:
    """A YAML double-quoted scalar for the plaintext source files, written independently of sealer."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= ord(c) < 0x7F:
            out.append(c)
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def block(mapping: dict[str, str], indent: str = "  ") -> str:
    return "".join(f"{indent}{src(k)}: {src(v)}\n" for k, v in mapping.items())


STRING_DATA = {f"s{i:02}": t for i, t in enumerate(TEXTS)} | {k: f"key-{i}" for i, k in enumerate(KEYS)}
DATA = {f"d{i:02}": b64(t.encode()) for i, t in enumerate(TEXTS)}
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "db", "namespace": "shop"},
    "type": "Opaque",
    "stringData": STRING_DATA,
    "data": DATA,
}
BINARY = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "bin"},
    "data": {k: b64(v) for k, v in BLOBS.items()},
}
CONFIG_DATA = {k: TEXTS[i % len(TEXTS)] for i, k in enumerate(KEYS)} | {f"v{i:02}": t for i, t in enumerate(TEXTS)}
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": CONFIG_DATA}
# kustomize re-encodes with yaml.v3, which refuses control characters: its resource gets the rest
PRINTABLE = tuple(t for t in TEXTS if all(c in "\n\t" or c.isprintable() for c in t))
KUSTOMIZED = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "kz"},
    "stringData": {f"s{i:02}": t for i, t in enumerate(PRINTABLE)} | {k: "v" for k in KEYS if k in PRINTABLE},
    "data": {f"d{i:02}": b64(t.encode()) for i, t in enumerate(TEXTS)},
}
APP = {"app": {"name": "shop", "values": list(TEXTS), "typed": {k: v[2] for k, v in TYPED.items()}}}


def _secret_source(doc: dict[str, Any]) -> str:
    text = f"# sealed by the output consumer tests\napiVersion: v1\nkind: {doc['kind']}\nmetadata:\n"
    text += "".join(f"  {k}: {v}\n" for k, v in doc["metadata"].items())
    if "type" in doc:
        text += f"type: {doc['type']}\n"
    for section in ("stringData", "data"):
        if section in doc:
            text += f"{section}:\n" + block(doc[section])
    return text


# --- the repository --------------------------------------------------------------------------------


class Consumers(Repo):
    def unseal(self, fmt: str, *files: str) -> str:
        """`sealer unseal --format FMT -o OUT`: the bytes written, as text (a new OUT each time)."""
        out = self.root.parent / f"out-{fmt}-{len(list(self.root.parent.glob('out-*')))}"
        self.ok("unseal", *files, "--format", fmt, "-i", str(self.keys["prod"]), "-o", str(out))
        return out.read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Consumers:
    base = tmp_path_factory.mktemp("consumers")
    r = Consumers.create(base, "prod", keys=("prod",))
    # A ConfigMap is a plain manifest: sealed only where a rule selects its values.
    cfg = r.root / ".sealer.yaml"
    cfg.write_text(cfg.read_text() + 'rules:\n  - files: "deploy/prod/config.yaml"\n    encrypted_regex: "^data"\n')
    d = r.root / "deploy" / "prod"
    d.mkdir(parents=True)
    (d / "secret.yaml").write_text(_secret_source(SECRET))
    (d / "binary.yaml").write_text(_secret_source(BINARY))
    (d / "kustomized.yaml").write_text(_secret_source(KUSTOMIZED))
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n" + block(CONFIG_DATA)
    (d / "config.yaml").write_text(config)
    values = "".join(f"    - {src(t)}\n" for t in TEXTS)
    (d / "app.yaml").write_text(f"app:\n  name: shop\n  values:\n{values}  typed:\n    placeholder: x\n")
    (d / "nul.yaml").write_text(_secret_source({"kind": "Secret", "metadata": {"name": "nul"}}))
    (d / "nan.yaml").write_text("app:\n  name: CANARY-nan-name\n  ratio: 1.5\n")
    r.ok("seal", *(str(f.relative_to(r.root)) for f in sorted(d.iterdir()) if f.name != "nul.yaml"))
    for name, (vtype, text, _) in TYPED.items():
        r.ok("set", "deploy/prod/app.yaml", f"app.typed.{name}", "--type", vtype, stdin=text)
    # the placeholder made `typed` a mapping to set into; drop its line (sealed values stay as they are)
    app = (d / "app.yaml").read_text().splitlines(keepends=True)
    (d / "app.yaml").write_text("".join(line for line in app if not line.startswith("    placeholder:")))
    r.ok("set", "deploy/prod/nul.yaml", "stringData.token", "--from-file", str(_file(base, "CANARY-nul\0after")))
    r.ok("set", "deploy/prod/nan.yaml", "app.ratio", "--type", "float", stdin=".nan")
    r.ok("set", "deploy/prod/nan.yaml", "app.low", "--type", "float", stdin="-.inf")
    for f in d.iterdir():
        text = f.read_text()
        assert "CANARY" not in text and "ENC[sealer.v1," in text, f
    return r


def _file(base: Path, text: str) -> Path:
    p = base / "value.bin"
    p.write_bytes(text.encode())
    return p


# --- the consumers ---------------------------------------------------------------------------------


def pyyaml_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=yaml.SafeLoader))


def libyaml_all(text: str) -> list[Any]:
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PyYAML is built without libyaml in CI", pytrace=False)
        pytest.skip("PyYAML without libyaml")
    return list(yaml.load_all(text, Loader=loader))


def ruamel_all(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(text))


def json_objects(text: str) -> list[Any]:
    """kubectl -o json prints one JSON object per resource, one after the other."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


def kubectl_env(home: Path) -> dict[str, str]:
    """No cluster, no kubeconfig: nothing here may need an API server."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": os.devnull}


def kubectl_read(path: Path | None, stdin: str | None = None, *, home: Path | None = None) -> list[dict[str, Any]]:
    """What `kubectl apply -f` would send: kubectl's own parse of the file (`-` for stdin), offline.
    `annotate --local` reads through the same builder and sigs.k8s.io/yaml as apply and prints JSON."""
    kubectl = require_tool("kubectl")
    env = kubectl_env(home or (path.parent if path else Path(os.devnull).parent))
    r = subprocess.run(
        [kubectl, "annotate", "--local", "-o", "json", "-f", str(path) if path else "-", "sealer.test/read=1"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    objs = json_objects(r.stdout)
    for o in objs:
        annotations = o["metadata"]["annotations"]
        del annotations["sealer.test/read"]
        if not annotations:
            del o["metadata"]["annotations"]
    return objs


def managed(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """A Secret as `--format k8s` renders it for the cluster: labelled as managed by sealer and
    annotated with the repository path it came from. Other kinds as they are."""
    if doc["kind"] != "Secret":
        return doc
    metadata = {
        **doc["metadata"],
        "labels": {"app.kubernetes.io/managed-by": "sealer"},
        "annotations": {"sealer.dev/source": source},
    }
    return {**doc, "metadata": metadata}


def no_nan(name: str) -> None:
    raise ValueError(f"{name} in JSON output")


# --- k8s --------------------------------------------------------------------------------------------


def test_k8s_output_reads_back_the_same_in_every_reader(repo: Consumers) -> None:
    out = repo.unseal("k8s", "deploy/prod/secret.yaml", "deploy/prod/binary.yaml", "deploy/prod/config.yaml")
    want = [managed(SECRET, "deploy/prod/secret.yaml"), managed(BINARY, "deploy/prod/binary.yaml"), CONFIG]
    for read in (pyyaml_all, libyaml_all, ruamel_all):
        assert read(out) == want, read.__name__
    path = repo.root.parent / "k8s.yaml"
    path.write_text(out)
    assert kubectl_read(path) == want
    # Certificates stay literal blocks, never folded; strings a 1.1 reader would retype are quoted.
    assert '  s00: "yes"\n' in out and '  "on": key-' in out and '  "0777": key-' in out
    cert = TEXTS.index(MULTILINE[12])
    assert f"  s{cert:02}: |\n    -----BEGIN CERTIFICATE-----\n    MIIB" in out
    assert f"  s{cert + 1:02}: |-\n    -----BEGIN CERTIFICATE-----\n    MIIB" in out


def test_k8s_output_through_kustomize(repo: Consumers, tmp_path: Path) -> None:
    """`kubectl kustomize` (kyaml) takes the output as a resource; kubectl reads what it builds."""
    kubectl = require_tool("kubectl")
    out = repo.unseal("k8s", "deploy/prod/kustomized.yaml")
    (tmp_path / "unsealed.yaml").write_text(out)
    (tmp_path / "kustomization.yaml").write_text("resources:\n- unsealed.yaml\n")
    env = kubectl_env(tmp_path)
    r = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    # kyaml takes a mapping key `<<` for a merge key even when it is quoted, and drops it: kustomize's
    # own limitation (the file itself reads right in kubectl, above).
    string_data = {k: v for k, v in KUSTOMIZED["stringData"].items() if k != "<<"}
    want = managed({**KUSTOMIZED, "stringData": string_data}, "deploy/prod/kustomized.yaml")
    assert kubectl_read(None, stdin=r.stdout, home=tmp_path) == [want]


# --- yaml (the file as written, values spliced in) -------------------------------------------------


def test_yaml_output_reads_back_the_same(repo: Consumers) -> None:
    files = ("deploy/prod/secret.yaml", "deploy/prod/config.yaml", "deploy/prod/app.yaml")
    out = repo.unseal("yaml", *files)
    want = [SECRET, CONFIG, APP]
    for read in (pyyaml_all, libyaml_all, ruamel_all):
        assert read(out) == want, read.__name__
    assert "# sealed by the output consumer tests" in out and "sealer:" not in out
    path = repo.root.parent / "yaml-manifests.yaml"
    path.write_text(repo.unseal("yaml", *files[:2]))
    assert kubectl_read(path) == [SECRET, CONFIG]


def test_yaml_format_quotes_numeric_base64(repo: Consumers) -> None:
    out = repo.unseal("yaml", "deploy/prod/binary.yaml")
    assert pyyaml_all(out) == [BINARY]


# --- json ---------------------------------------------------------------------------------------------


def test_json_output_reads_back_the_same(repo: Consumers) -> None:
    files = ("secret.yaml", "binary.yaml", "config.yaml", "app.yaml")
    out = repo.unseal("json", *(f"deploy/prod/{f}" for f in files))
    items = json.loads(out, parse_constant=no_nan)
    assert [i["file"] for i in items] == [f"deploy/prod/{f}" for f in files]
    assert [i["content"] for i in items] == [SECRET, BINARY, CONFIG, APP]
    typed = items[3]["content"]["app"]["typed"]
    assert all(type(typed[k]) is type(v[2]) for k, v in TYPED.items())


def test_json_refuses_nan_and_infinity_naming_the_path(repo: Consumers) -> None:
    r = repo.run("unseal", "deploy/prod/nan.yaml", "--format", "json", "-i", str(repo.keys["prod"]))
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0] == (
        "sealer: error: deploy/prod/nan.yaml: app.ratio is NaN/infinite, which JSON cannot represent; use --format yaml"
    )
    assert "CANARY" not in r.stderr and ".nan" not in r.stderr.lower()
    # YAML can say it: every reader sees the NaN and the -infinity.
    for fmt in ("yaml", "k8s"):
        text = repo.unseal(fmt, "deploy/prod/nan.yaml") if fmt == "yaml" else _yamlout.dumps(_nan_doc())
        for read in (pyyaml_all, libyaml_all, ruamel_all):
            (doc,) = read(text)
            assert math.isnan(doc["app"]["ratio"]) and doc["app"]["low"] == -math.inf, (fmt, read.__name__)


def _nan_doc() -> dict[str, Any]:
    return {"app": {"name": "x", "ratio": math.nan, "low": -math.inf, "high": math.inf}}


# --- dotenv ---------------------------------------------------------------------------------------------


def _expected_env() -> dict[str, str]:
    env = {k: v for k, v in STRING_DATA.items() if k.isidentifier() and k.isascii()}
    env |= {k: base64.b64decode(v).decode() for k, v in DATA.items()}
    env |= {f"APP_VALUES_{i}": t for i, t in enumerate(TEXTS)}
    env["APP_NAME"] = "shop"
    env |= {f"APP_TYPED_{k.upper()}": str(v).lower() for k, (_, _, v) in TYPED.items()}  # 1e+20, true
    return env


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_dotenv_sourced_by_a_shell_gives_the_same_environment(repo: Consumers, shell: str, tmp_path: Path) -> None:
    sh = require_tool(shell)
    out = repo.unseal("dotenv", "deploy/prod/secret.yaml", "deploy/prod/app.yaml")
    (tmp_path / "out.env").write_text(out)
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    r = subprocess.run(
        [sh, "-c", "set -a; . ./out.env; env -0"], cwd=tmp_path, capture_output=True, env=clean, timeout=60
    )
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    got = dict(item.split("=", 1) for item in r.stdout.decode("utf-8").split("\0") if item)
    want = _expected_env()
    assert {k: got.get(k) for k in want} == want
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    # ordinary values stay bare, as before; the rest is single-quoted
    index = TEXTS.index("it's")
    quoted = f"APP_VALUES_{index}='it'\\''s'\n"  # it's as 'it'\''s'
    assert "APP_NAME=shop\n" in out and quoted in out


def test_dotenv_refuses_a_nul_without_echoing_it(repo: Consumers) -> None:
    for cmd in (("unseal", "deploy/prod/nul.yaml", "--format", "dotenv"), ("exec", "deploy/prod/nul.yaml")):
        args = [*cmd, "-i", str(repo.keys["prod"])] + (["--", "true"] if cmd[0] == "exec" else [])
        r = repo.run(*args)
        assert r.returncode == 1 and r.stdout == "", (cmd, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "deploy/prod/nul.yaml" in lines[0] and "stringData.token" in lines[0] and "NUL" in lines[0]
        assert "CANARY" not in r.stderr
    # the other formats carry it
    assert json.loads(repo.unseal("json", "deploy/prod/nul.yaml"))[0]["content"]["stringData"]["token"] == (
        "CANARY-nul\0after"
    )
    (doc,) = pyyaml_all(repo.unseal("k8s", "deploy/prod/nul.yaml"))
    assert doc["stringData"]["token"] == "CANARY-nul\0after"


# --- the encoder itself ---------------------------------------------------------------------------------

_READERS = (pyyaml_all, libyaml_all, ruamel_all)


@given(key=st.text(), text=st.text())
def test_encoder_round_trips_any_text(key: str, text: str) -> None:
    out = _yamlout.dumps({key: text})
    for read in _READERS:
        assert read(out) == [{key: text}], (read.__name__, out)


_NASTY_TEXT = st.lists(
    st.sampled_from([*TEXTS, " ", "\n", "\n\n", "  ", ":", "#", "\t", "'", '"', "\\", "-", "é"]), max_size=6
).map("".join)
_LEAF = st.one_of(
    _NASTY_TEXT,
    st.text(),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
_DATA = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_NASTY_TEXT, inner, max_size=4), max_leaves=12
)


@given(data=_DATA)
def test_encoder_round_trips_json_like_data(data: Any) -> None:
    out = _yamlout.dumps(data)
    for read in _READERS:
        assert read(out) == [data], (read.__name__, out)


def test_encoder_special_cases() -> None:
    long_key = "k" * 2000
    cases: list[Any] = [
        {long_key: "v", "x": {long_key: [1, {long_key: "multi\nline\n"}]}},
        {"f": [0.1, -0.0, 1e20, 5e-324, 1.7976931348623157e308, math.inf, -math.inf]},
        {"e": {}, "l": [], "n": None, "nested": [[], {}, [[1]], [{"a": []}]]},
        [" lead\nx", {"k": "\n\n"}, ["a\n\n\n"]],
        "top\nlevel\n",
        " lead\ntop",
        "",
        None,
    ]
    for data in cases:
        out = _yamlout.dumps(data)
        for read in _READERS:
            assert read(out) == [data], (read.__name__, out)
    assert _yamlout.dumps({"f": math.nan}) == "f: .nan\n"
    assert _yamlout.dumps({"f": 1e20, "g": 1.5}) == "f: 1.0e+20\ng: 1.5\n"
    assert _yamlout.dump_documents([{"a": 1}, {"b": "on"}]) == '---\na: 1\n---\nb: "on"\n'
    with pytest.raises(TypeError):
        _yamlout.dumps({1: "x"})


def test_encoder_layout_is_kubectl_style() -> None:
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27", "args": ["--port", "8080"], "env": []},
                    ]
                }
            },
        },
        "data": {"tls.crt": "LS0tLS1CRUdJTg==", ".dockerconfigjson": "eyJhdXRocyI6e319", "url": "https://a:b@c/d?e=f"},
    }
    assert _yamlout.dumps(doc) == (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: web\n"
        "  labels:\n"
        "    app: web\n"
        "spec:\n"
        "  replicas: 3\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "      - name: web\n"
        "        image: nginx:1.27\n"
        "        args:\n"
        "        - --port\n"
        '        - "8080"\n'
        "        env: []\n"
        "data:\n"
        "  tls.crt: LS0tLS1CRUdJTg==\n"
        "  .dockerconfigjson: eyJhdXRocyI6e319\n"
        "  url: https://a:b@c/d?e=f\n"
    )


def test_generated_strings_through_kubectl(tmp_path: Path) -> None:
    """One batch of generated strings and keys, read by kubectl's own YAML parser."""
    rng = random.Random(20240101)
    alphabet = [*"aZ09 .:-_#'\"\\/\n\t=<>|!&*?%@`,[]{}~+é", "\u2028", "\x00", "\x85", "\ufeff", "😀", "yes", "0x"]
    strings = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(400)})
    strings += [t for t in TEXTS if t not in strings]
    string_data = {f"k{i:03}": s for i, s in enumerate(strings)}
    string_data |= {s: "v" for s in strings if s and s not in string_data}
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gen"}, "stringData": string_data}
    path = tmp_path / "gen.yaml"
    path.write_text(_yamlout.dump_documents([doc]))
    assert kubectl_read(path) == [doc]
