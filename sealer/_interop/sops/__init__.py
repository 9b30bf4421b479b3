"""SOPS files with age recipients (getsops/sops 3.x): read them, every value and the MAC checked, and
write YAML and JSON files that sops reads back.

Why: teams hold SOPS files today; `sealer import sops` and `sealer export sops` move them in both
directions, so the format must be sops's own to the byte where it matters (value syntax, AAD, type
tags, MAC, metadata), not an approximation. The facts come from sops's source (read, not copied) and
are summed up in `shared/interop/sops/FORMAT.md`:

- one random 32-byte data key per file, wrapped for every age recipient as an armored age file
  (our `interop.age` opens and writes those);
- every selected leaf is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`: AES-256-GCM with a 32-byte IV,
  the AAD being the mapping keys from the root joined with ":" plus a trailing ":" (list indices are
  not part of it); comments are encrypted the same way with the path of the collection they sit in;
- the MAC is SHA-512 over the typed plaintext of the values in file order, upper-case hex, stored
  encrypted with the `lastmodified` time as AAD.

Stores: YAML (go-yaml v3 scalar resolution, reproduced here so unencrypted values hash as sops hashes
them), JSON, dotenv, INI and binary are read; YAML and JSON are written, in the sops 3.13 layout.
Only age master keys are used; files wrapped only for KMS, PGP, GCP KMS, Azure Key Vault, Vault or
HuaweiCloud KMS are refused by name, and so are Shamir key groups.

Errors are typed, one line each, and never carry key material or plaintext.

The modules, one job each: `_tree` (the tree sops holds, its walk, the encryption rule), `_crypto`
(data key, values, MAC), `_metadata` (the `sops:` block), `_goyaml` (go-yaml's scalars and layout),
`_yamlload` (YAML with comments), `_stores` (the five stores, JSON output), `_binary` (a binary
payload as a Kubernetes Secret; values that are not text), `_keysources` (where sops finds age keys)
and `_files` (read and write, end to end).
"""

from __future__ import annotations

from ._errors import (
    SopsError,
    SopsFormatError,
    SopsMACError,
    SopsNoKeyError,
    SopsUnsupportedError,
    SopsValueError,
)
from ._files import SOPS_VERSION, SopsFile, read, read_file, suggested_rule, write, write_text
from ._keysources import sops_identities
from ._metadata import AgeKey, SopsMetadata
from ._stores import FORMATS, format_for_path
from ._tree import DEFAULT_UNENCRYPTED_SUFFIX, RULES, Branch, Comment, GoTime

__all__ = [
    "DEFAULT_UNENCRYPTED_SUFFIX",
    "FORMATS",
    "RULES",
    "SOPS_VERSION",
    "AgeKey",
    "Branch",
    "Comment",
    "GoTime",
    "SopsError",
    "SopsFile",
    "SopsFormatError",
    "SopsMACError",
    "SopsMetadata",
    "SopsNoKeyError",
    "SopsUnsupportedError",
    "SopsValueError",
    "format_for_path",
    "read",
    "read_file",
    "sops_identities",
    "suggested_rule",
    "write",
    "write_text",
]
