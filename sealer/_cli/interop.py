"""`sealer import` and `sealer export`: moving to and from peer formats (Sealed Secrets, SOPS).

Each command is glue between a peer's library module (`sealer._interop.*`) and sealer's own
seal/unseal. Plaintext exists only in memory between the two halves; output goes to `-o OUT`
(written atomically, mode 0600 when it holds plaintext) or stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import CONTEXT, AuditedGroup, F, identity_option, note, repo_config, write_output

if TYPE_CHECKING:
    from .._unseal import Unsealed


@click.group(name="import", cls=AuditedGroup, context_settings=CONTEXT)
def import_() -> None:
    """Turn a peer's sealed file into a sealer file."""


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def export() -> None:
    """Turn a sealer file into a peer's sealed format."""


def _out_option(f: F) -> F:
    return click.option(
        "-o",
        "--out",
        type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
        help="Write here (atomically) instead of stdout.",
    )(f)


_import_env_option = click.option(
    "--env", "env", metavar="ENV", help="Environment to seal for (default: from -o's path rule)."
)
_export_env_option = click.option("--env", "env", metavar="ENV", help="Refuse a file sealed for any other environment.")


def _seal_for_repo(plain: str, source: str, out: Path | None, env: str | None, scope: str | None) -> str:
    """Seal imported plaintext as sealer would seal the file at its destination (`-o`), else for --env."""
    from .._seal import target

    cfg = repo_config(out.parent if out is not None and str(out) != "-" else None)
    rel = cfg.relpath(out, env=env) if out is not None and str(out) != "-" else None
    t = target(cfg, rel, env)
    new, _report = t.seal_text(plain, source, scope=scope)  # new values: the policy's max_lifetime applies
    return new


@import_.command(name="sealedsecret", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The controller's private key: PEM, its key Secret, or the kind: List backup (repeatable).",
)
@click.option("--namespace", help="The namespace, when the SealedSecret names none (kubectl apply -n NS).")
@_import_env_option
@_out_option
def import_sealedsecret(
    file: Path, keys: tuple[Path, ...], namespace: str | None, env: str | None, out: Path | None
) -> None:
    """Recovery-unseal a Bitnami SealedSecret with the controller's key and seal it as sealer."""
    from .._fsio import read_text
    from .._interop import sealedsecrets as ss

    loaded = [k for p in keys for k in ss.load_private_keys(read_text(p).encode(), source=str(p))]
    docs = ss.load_documents(read_text(file), str(file))
    parts, scopes = [], set()
    for d in docs:
        parts.append(ss.to_yaml(ss.unseal_with_keys(d, loaded, namespace=namespace, source=str(file))))
        scopes.add(ss.TO_SEALER_SCOPE[ss.place_of(d, namespace=namespace, source=str(file)).scope])
    if len(scopes) > 1:
        from ..errors import UsageError

        raise UsageError(
            "the SealedSecrets in this file use different scopes", file=str(file), hint="import them one file each"
        )
    write_output(_seal_for_repo("".join(parts), str(file), out, env, scopes.pop() if scopes else None), out)


@export.command(name="sealedsecret", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--cert",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The controller's certificate (kubeseal --fetch-cert).",
)
@click.option(
    "--scope",
    type=click.Choice(["strict", "namespace-wide", "cluster-wide"]),
    help="Default: from the file's sealer scope (strict, namespace, env).",
)
@click.option("--namespace", help="Namespace for Secrets that name none.")
@_export_env_option
@identity_option
@_out_option
def export_sealedsecret(
    file: Path,
    cert: Path,
    scope: str | None,
    namespace: str | None,
    env: str | None,
    identities: tuple[str, ...],
    out: Path | None,
) -> None:
    """Unseal a sealer file with your identity and seal it for a Sealed Secrets controller."""
    from .._document import load
    from .._fsio import read_text
    from .._identities import find_identities
    from .._interop import sealedsecrets as ss
    from .._unseal import unseal_paths
    from ..errors import UsageError

    key = ss.load_certificate(read_text(cert).encode(), source=str(cert))  # fail fast, before unsealing
    (unsealed,), _notes = unseal_paths([file], find_identities(identities).for_kid, env=env)
    _released(unsealed, "export sealedsecret")
    sealed_doc = {d.index: d for d in load(read_text(file), str(file)).docs}
    parts = []
    for ud in unsealed.docs:
        if ud.kind != "Secret":
            raise UsageError(f"document {ud.index} is not a Secret; Sealed Secrets holds only Secrets", file=str(file))
        meta = sealed_doc[ud.index].meta
        chosen = scope or (ss.FROM_SEALER_SCOPE.get(meta.scope) if meta else None)
        if chosen is not None and chosen not in ss.SCOPES:
            raise UsageError(f"scope {chosen!r} has no Sealed Secrets equivalent", file=str(file))
        parts.append(ss.to_yaml(ss.seal_with_key(ud.content, key, chosen, namespace=namespace, source=str(file))))
    write_output("".join(parts), out)


@import_.command(name="sops", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_import_env_option
@click.option(
    "--input-type",
    type=click.Choice(["yaml", "json", "dotenv", "ini", "binary"]),
    help="The SOPS store, when the file name does not say (as sops --input-type).",
)
@click.option("--name", metavar="NAME", help="Binary store: the Secret's name (default: from the file name).")
@click.option("--namespace", metavar="NS", help="Binary store: the Secret's namespace (default: none).")
@click.option("--key", metavar="KEY", help="Binary store: the key under data (default: the file's base name).")
@identity_option
@_out_option
def import_sops(
    file: Path,
    env: str | None,
    input_type: str | None,
    name: str | None,
    namespace: str | None,
    key: str | None,
    identities: tuple[str, ...],
    out: Path | None,
) -> None:
    """Decrypt a SOPS file (age recipients; MAC checked) and seal it as sealer.

    The age key comes from --identity, else SOPS_AGE_KEY / SOPS_AGE_KEY_FILE / SOPS_AGE_KEY_CMD, else
    sealer's own identity sources. A binary-store file (any bytes) becomes a Kubernetes Secret with
    the payload as one data value.
    """
    from .._identities import find_identities, passphrase
    from .._interop import sops
    from ..errors import UsageError

    fmt = input_type or sops.format_for_path(file)
    if fmt != "binary" and (name, namespace, key) != (None, None, None):
        raise UsageError(
            f"--name, --namespace and --key are for a binary-store file, and this one is {fmt}", file=str(file)
        )
    ids = list(find_identities(identities).identities()) if identities else []
    if not ids:
        ids = sops.sops_identities(passphrase=lambda source: passphrase(source).decode())
    if not ids:
        own = find_identities(())
        # No key anywhere: the library's error names the file and the SOPS_AGE_KEY* variables.
        ids = list(own.identities()) if own.present else []
    doc = sops.read_file(file, ids, fmt=fmt)
    plain = doc.to_secret(name=name, key=key, namespace=namespace) if fmt == "binary" else doc.to_yaml()
    write_output(_seal_for_repo(plain, str(file), out, env, None), out)


@export.command(name="sops", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--age",
    "recipients",
    multiple=True,
    required=True,
    metavar="RECIPIENT",
    help="age recipient (age1…) to encrypt the data key to; repeatable, or comma-separated as in sops.",
)
@click.option("--output-type", type=click.Choice(["yaml", "json"]), help="Default: json for -o *.json, else yaml.")
@click.option("--encrypted-regex", metavar="RX", help="Encrypt only values under keys matching RX.")
@_export_env_option
@identity_option
@_out_option
def export_sops(
    file: Path,
    recipients: tuple[str, ...],
    output_type: str | None,
    encrypted_regex: str | None,
    env: str | None,
    identities: tuple[str, ...],
    out: Path | None,
) -> None:
    """Unseal a sealer file with your identity and encrypt it as a SOPS file for age recipients."""
    from .._identities import find_identities
    from .._interop import sops
    from .._unseal import unseal_paths

    names = [r.strip() for group in recipients for r in group.split(",") if r.strip()]
    (unsealed,), _notes = unseal_paths([file], find_identities(identities).for_kid, env=env)
    _released(unsealed, "export sops")
    fmt = output_type or ("json" if out is not None and out.suffix == ".json" else "yaml")
    rule = (
        {"encrypted_regex": encrypted_regex}
        if encrypted_regex
        else sops.suggested_rule([d.content for d in unsealed.docs])
    )
    options: dict[str, Any] = {"fmt": fmt, "source": str(file), **rule}
    write_output(sops.write_text(unsealed.text, names, **options).decode(), out)


def _released(unsealed: Unsealed, reason: str) -> None:
    """An export hands the plaintext to other keys: audited as an unseal before anything is written,
    with the expired values it releases under on_expiry: warn said on stderr, as unseal says them."""
    from .direct import audit_unseal

    audit_unseal([unsealed], reason, withheld="nothing was exported")
    for w in unsealed.warnings:
        note(w)
