"""sealer: sealed secrets for GitOps.

The public API: `sealer._seal` (seal files and values, public keys only), `sealer._unseal` (open
them), `sealer._render` (outputs), `sealer._keys` / `sealer._identities` (key kinds and where private
keys come from), `sealer._config` / `sealer._registry` (the repository's rules and public keys), and
`sealer.errors`. Kept import-free so the CLI starts fast.
"""

__version__ = "0.1.0"
