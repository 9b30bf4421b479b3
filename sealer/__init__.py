"""sealer: sealed secrets for GitOps.

The public API. Everything the `sealer` command does is a call here; the modules behind
underscores are internal and may change. Names load on first use (PEP 562), so `import sealer`
and the CLI stay fast.

    import sealer

    repo = sealer.Repository.open("path/to/repo")              # .sealer.yaml, keys/, the path rules
    sealer.seal_file(repo.config, Path("deploy/prod/db.yaml"))  # public keys only
    ids = sealer.find_identities()                              # --identity, SEALER_IDENTITY*, config dir
    files, notes = sealer.unseal([Path("deploy/prod")], ids.for_kid, env="prod")
    text, notes = sealer.render(files, "k8s")

Unsealing applies the environment's rules (accepted keys, `not_before`, signatures) unless the
caller passes `rules=sealer.UNCHECKED` (or `checked=False`), by name. Every error is a
`sealer.errors.SealerError` with `message`, `file`, `path` and `hint`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (internal module, attribute)
_API: dict[str, tuple[str, str]] = {
    # the repository and its rules
    "Repository": ("_repository", "Repository"),
    "EnvRules": ("_repository", "EnvRules"),
    "Config": ("_config", "Config"),
    "load_config": ("_config", "load_config"),
    "init_repo": ("_repo_init", "init_repo"),
    # sealing (public keys only)
    "seal_file": ("_seal", "seal_file"),
    "seal_text": ("_seal", "seal_text"),
    "set_in_file": ("_seal", "set_in_file"),
    "set_value": ("_seal", "set_value"),
    "SealReport": ("_seal", "SealReport"),
    "parse_path": ("_format.valuepath", "parse_path"),
    "format_path": ("_format.valuepath", "format_path"),
    # opening (private keys)
    "unseal": ("_unseal", "unseal_paths"),
    "unseal_file": ("_unseal", "unseal_file"),
    "Unsealed": ("_unseal", "Unsealed"),
    "UNCHECKED": ("_unseal", "UNCHECKED"),
    "render": ("_render", "render"),
    "environment": ("_render", "environment"),
    "load": ("_document", "load"),
    # what a sealed file holds, without a key
    "show": ("_show", "show"),
    "show_file": ("_show", "show_file"),
    "show_text": ("_show", "show_text"),
    "Shown": ("_show", "Shown"),
    # identities and keys
    "find_identities": ("_identities", "find_identities"),
    "IdentitySet": ("_identities", "IdentitySet"),
    "Identity": ("_keys", "Identity"),
    "Recipient": ("_keys", "Recipient"),
    "generate_identity": ("_keys", "generate_identity"),
    "parse_identity": ("_keys", "parse_identity"),
    "parse_recipient": ("_keys", "parse_recipient"),
    # guardrails and rotation
    "check": ("_check", "check"),
    "CheckReport": ("_check", "CheckReport"),
    "refs": ("_refs", "refs"),
    "EnvRefs": ("_refs", "EnvRefs"),
    "status": ("_status", "status"),
    "make_plan": ("_rotation", "make_plan"),
    "reseal": ("_rotation", "reseal"),
    "retire": ("_rotation", "retire"),
    # key custodians
    "generate_key": ("_registry", "generate_key"),
    "rotate_key": ("_registry", "rotate_key"),
    "add_key": ("_registry", "add_key"),
    "revoke_before": ("_registry", "revoke_before"),
    "add_signer": ("_registry", "add_signer"),
    "remove_signer": ("_registry", "remove_signer"),
    "SignerKey": ("_signing", "SignerKey"),
    "read_signer_file": ("_signing", "read_signer_file"),
    "write_signer_file": ("_signing", "write_signer_file"),
    # scan, audit, the controller
    "scan_items": ("_scan", "scan_items"),
    "path_items": ("_scan", "path_items"),
    "staged_items": ("_scan", "staged_items"),
    "install_hook": ("_scan", "install_hook"),
    "verify_audit_log": ("_audit", "verify"),
    "audit_stats": ("_audit.stats", "audit_stats"),
    "AuditStats": ("_audit.stats", "AuditStats"),
    "audit_review": ("_audit.review", "audit_review"),
    "AuditReview": ("_audit.review", "AuditReview"),
    "ReviewSettings": ("_config", "ReviewSettings"),
    "krm": ("_krm", ""),  # render pipelines: run_function, run_plugin, run_stream over a krm.Door
    "ControllerOptions": ("_controller.service", "ControllerOptions"),
    "run_controller": ("_controller.service", "run_controller"),
    # interop: the modules behind `sealer import|export`
    "sops": ("_interop.sops", ""),
    "sealedsecrets": ("_interop.sealedsecrets", ""),
    "age": ("_interop.age", ""),
    "errors": ("errors", ""),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'sealer' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"{__name__}.{target[0]}")
    value = getattr(module, target[1]) if target[1] else module
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from . import _krm as krm  # noqa: F401 - the module behind `sealer krm`
    from . import errors as errors
    from ._audit import verify as verify_audit_log  # noqa: F401 - named unlike its module function
    from ._audit.review import AuditReview as AuditReview
    from ._audit.review import audit_review as audit_review
    from ._audit.stats import AuditStats as AuditStats
    from ._audit.stats import audit_stats as audit_stats
    from ._check import CheckReport as CheckReport
    from ._check import check as check
    from ._config import Config as Config
    from ._config import ReviewSettings as ReviewSettings
    from ._config import load_config as load_config
    from ._controller.service import ControllerOptions as ControllerOptions
    from ._controller.service import run_controller as run_controller
    from ._document import load as load
    from ._format.valuepath import format_path as format_path
    from ._format.valuepath import parse_path as parse_path
    from ._identities import IdentitySet as IdentitySet
    from ._identities import find_identities as find_identities
    from ._interop import age as age
    from ._interop import sealedsecrets as sealedsecrets
    from ._interop import sops as sops
    from ._keys import Identity as Identity
    from ._keys import Recipient as Recipient
    from ._keys import generate_identity as generate_identity
    from ._keys import parse_identity as parse_identity
    from ._keys import parse_recipient as parse_recipient
    from ._refs import EnvRefs as EnvRefs
    from ._refs import refs as refs
    from ._registry import add_key as add_key
    from ._registry import add_signer as add_signer
    from ._registry import generate_key as generate_key
    from ._registry import remove_signer as remove_signer
    from ._registry import revoke_before as revoke_before
    from ._registry import rotate_key as rotate_key
    from ._render import environment as environment
    from ._render import render as render
    from ._repo_init import init_repo as init_repo
    from ._repository import EnvRules as EnvRules
    from ._repository import Repository as Repository
    from ._rotation import make_plan as make_plan
    from ._rotation import reseal as reseal
    from ._rotation import retire as retire
    from ._scan import install_hook as install_hook
    from ._scan import path_items as path_items
    from ._scan import scan_items as scan_items
    from ._scan import staged_items as staged_items
    from ._seal import SealReport as SealReport
    from ._seal import seal_file as seal_file
    from ._seal import seal_text as seal_text
    from ._seal import set_in_file as set_in_file
    from ._seal import set_value as set_value
    from ._show import Shown as Shown
    from ._show import show as show
    from ._show import show_file as show_file
    from ._show import show_text as show_text
    from ._signing import SignerKey as SignerKey
    from ._signing import read_signer_file as read_signer_file
    from ._signing import write_signer_file as write_signer_file
    from ._status import status as status
    from ._unseal import UNCHECKED as UNCHECKED
    from ._unseal import Unsealed as Unsealed
    from ._unseal import unseal_file as unseal_file
    from ._unseal import unseal_paths as unseal  # noqa: F401 - named unlike its module function
