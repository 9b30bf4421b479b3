"""sealer: sealed secrets for GitOps.

The public API: `sealer.seal` (seal files and values, public keys only), `sealer.unseal` (open
them), `sealer.render` (outputs), `sealer.keys` / `sealer.identities` (key kinds and where private
keys come from), `sealer.config` / `sealer.registry` (the repository's rules and public keys), and
`sealer.errors`. Kept import-free so the CLI starts fast.
"""

__version__ = "0.1.0"
