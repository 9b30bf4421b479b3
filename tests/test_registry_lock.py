"""Registry edits under concurrency: `keys/ENV.yaml` is read, changed and rewritten, so two
custodians' commands at once must both land (they take the same lock as sealed-file writers)."""

from __future__ import annotations

import subprocess

from conftest import SEALER, Repo

from sealer._keys import generate_identity


def test_concurrent_registry_edits_all_land(repo: Repo) -> None:
    recipients = [generate_identity().recipient.encode() for _ in range(8)]
    procs = [
        subprocess.Popen(
            [SEALER, "keys", "add", "prod", "--recovery", r, "--label", f"r{i}"],
            cwd=repo.root,
            env=repo.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, r in enumerate(recipients)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    text = (repo.root / "keys" / "prod.yaml").read_text()
    assert all(r in text for r in recipients), "a concurrent keys add lost another one's update"
