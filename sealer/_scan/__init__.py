"""`sealer scan`: plaintext secrets and private keys in what is about to be committed (or any files).

Three detectors, each reporting `FILE:LINE: what` and never the secret itself:

- private keys, by their formats: age identities (`AGE-SECRET-KEY-1…`, the post-quantum
  `AGE-SECRET-KEY-PQ-1…`), sealer signer keys, PEM private keys, OpenSSH and PGP private keys;
- plaintext secrets, by detect-secrets (keywords like `password:`, cloud and SaaS token formats,
  credentials in URLs), with a filter so that sealer's own public material (tokens, recipients,
  key ids, signatures) is never reported;
- files under an environment's path rules holding unsealed values (the part of `sealer check` that
  needs no registry: `sealer._check.leaks`).

Binary, non-UTF-8 and huge files are not parsed: they are searched for private keys only (in
chunks, so size costs no memory) and reported as such. `--staged` reads the blobs of the index
through gitpython, so what is checked is what will be committed, not the working tree.

The modules: `detectors` (the key formats, detect-secrets and its filter), `sources` (what to scan:
paths, the working tree, the index), `scan` (running the detectors over the files), `hook` (`sealer
hook install`). gitpython and detect-secrets are imported only when used: they are slow to import.
"""

from .detectors import CHUNK, KEY_PATTERNS, Finding, find_keys, not_a_secret
from .hook import HOOK_MARKER, hook_text, install_hook, sealer_executable
from .scan import MAX_TEXT_BYTES, ScanReport, scan_items
from .sources import Item, all_items, path_items, staged_items

__all__ = [
    "CHUNK",
    "HOOK_MARKER",
    "KEY_PATTERNS",
    "MAX_TEXT_BYTES",
    "Finding",
    "Item",
    "ScanReport",
    "all_items",
    "find_keys",
    "hook_text",
    "install_hook",
    "not_a_secret",
    "path_items",
    "scan_items",
    "sealer_executable",
    "staged_items",
]
