"""The end-to-end demo (`make demo`) runs clean: it drives the real `sealer` command through a whole
adoption (init, keys, seal, set, unseal, exec) and checks every step itself, so here we run it and look
at its verdict and a few of its lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.py"


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    sealer = Path(sys.executable).parent / "sealer"
    assert sealer.is_file(), f"the sealer console script is not next to {sys.executable}"
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    # A private HOME and TMPDIR: the demo must not touch the user's config, and must clean up after itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    env.pop("XDG_CONFIG_HOME", None)
    env.update(HOME=str(home), TMPDIR=str(tmp), SEALER_IDENTITY="not a key: the demo must not use it")

    result = subprocess.run(
        [sys.executable, str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    out = result.stdout
    assert result.returncode == 0, f"demo failed:\n{out[-4000:]}\n{result.stderr[-4000:]}"

    assert "$ sealer init --env dev --env staging --env prod" in out
    assert "deploy/prod/values.yaml: sealed 4 value(s) for prod" in out
    assert "deploy/prod/db.yaml: unchanged" in out
    assert "-  DB_PASSWORD: 'ENC[sealer.v1," in out and "+  DB_PASSWORD: 'ENC[sealer.v1," in out
    assert "deploy/prod/deployment.yaml: nothing new to seal for prod" in out  # a plain manifest: left alone
    assert "$ SEALER_CONFIG_DIR=<empty dir> sealer check\n    checked 7 file(s), 21 value(s): no problems\n" in out
    assert "DB_PASSWORD: demo-rotated-prod-password-2" in out  # unsealed k8s output
    assert "    sealer: error: deploy/prod/db.yaml: sealed to key " in out  # staging cannot open prod
    assert "\n    28\n" in out  # the length of DB_PASSWORD, printed by the child of `sealer exec`
    # The references section: a missing key caught by check, a dormant key found by refs.
    assert (
        "    deploy/prod/settle.yaml: CronJob orders/settle, container settle: env PAYMENTS_API_KEY: Secret"
        " orders/payments in prod has no key 'PAYMENTS_APIKEY'" in out
    )
    assert "        PAYMENTS_OLD_API_KEY  key " in out and "          unused: no workload consumes it\n" in out
    assert "$ sealer refs --env prod --output mermaid\n    graph LR\n" in out
    assert "demo finished: all" in out and "checks passed" in out
    assert "Traceback" not in out + result.stderr

    assert not any(tmp.iterdir()), "the demo left temporary files behind"
    assert not (home / ".config" / "sealer").exists(), "the demo wrote into the user's config dir"
