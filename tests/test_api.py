"""The public API: `import sealer` names everything a CLI command does, lazily, and the
library's defaults are the CLI's (rules applied, errors typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sealer
from sealer import errors


def test_every_public_name_resolves_and_is_typed() -> None:
    assert sealer.__all__, "the API lists its names"
    for name in sealer.__all__:
        assert getattr(sealer, name) is not None, name
    assert (Path(sealer.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError):
        sealer.no_such_name


def test_import_sealer_loads_no_heavy_module() -> None:
    heavy = "('sealer', 'ruamel', 'click', 'git', 'cryptography')"
    code = f"import sys, sealer; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['sealer']"


def test_errors_carry_fields_and_format_themselves() -> None:
    e = errors.UnsealError("does not open", file="deploy/prod/db.yaml", path="stringData.password", hint="set it again")
    assert (e.message, e.file, e.path, e.hint) == (
        "does not open",
        "deploy/prod/db.yaml",
        "stringData.password",
        "set it again",
    )
    assert str(e) == "deploy/prod/db.yaml: stringData.password: does not open (set it again)"
    assert errors.Refused("x").exit_code == 1 and errors.UsageError("x").exit_code == 2
    assert issubclass(errors.UnsafePath, errors.InputError)


def test_seal_and_unseal_through_the_public_api(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    sealer.init_repo(root, ["prod"])
    _record, key_file = sealer.generate_key(root, "prod", out=tmp_path / "prod.txt")
    f = root / "deploy" / "prod" / "db.yaml"
    f.parent.mkdir(parents=True)
    f.write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: pw-CANARY\n")
    repo = sealer.Repository.open(root)
    sealer.seal_file(repo.config, f)
    assert "pw-CANARY" not in f.read_text()
    ids = sealer.find_identities([str(key_file)])
    files, _notes = sealer.unseal([f], ids.for_kid)
    text, _ = sealer.render(files, "k8s")
    assert "pw-CANARY" in text
    # The library has no fail-open default: rules are required, skipping them is said by name.
    sf = sealer.load(f.read_text(), str(f))
    with pytest.raises(TypeError):
        sealer.unseal_file(sf, ids.for_kid)  # type: ignore[call-arg]
    opened = sealer.unseal_file(sf, ids.for_kid, rules=repo.rules("prod"))
    assert opened.values == 1
