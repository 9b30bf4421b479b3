"""Recovery-unseal: the Secret the controller would create from a SealedSecret, opened with the
controller's private keys (kubeseal --recovery-unseal).

Why a module of its own: this is the controller's side of the object, all or nothing as it is (one
value that does not open fails the whole object), reading the label from the SealedSecret's own
metadata and never from its template, applying the template's literal data, refusing what only the
controller can do (the deprecated v1 `spec.data`, Go templates), and naming the first value that
fails with the most precise cause `_crypto` can prove.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..._format.valuepath import format_path
from ._controllerkeys import load_private_keys
from ._crypto import Blob, BodyFailed, altered, attempt, diagnose, parse_blob
from ._document import API_VERSION, KIND, mapping, opt_str, place_of, str_map
from ._errors import KEY_HINT, ControllerKeyError, MalformedSealedSecret, UnsupportedSealedSecret
from ._scopes import SCOPES, Place


def _alternates(place: Place, template_md: Mapping[str, Any]) -> list[Place]:
    """Other places a value could have been sealed for: the template's name and namespace (kubeseal
    copies them there, and a move usually edits only the top-level metadata) and the other scopes."""
    spots = [(place.namespace, place.name)]
    t_ns, t_name = template_md.get("namespace"), template_md.get("name")
    if isinstance(t_ns, str) and isinstance(t_name, str) and (t_ns, t_name) != spots[0]:
        spots.append((t_ns, t_name))
    out: list[Place] = []
    seen = {place.label}
    for ns, name in spots:
        for scope in SCOPES:
            p = Place(
                "" if scope == "cluster-wide" else ns,
                name if scope == "strict" else "",
                scope,
            )
            if p.label not in seen:
                seen.add(p.label)
                out.append(p)
    return out


def unseal(
    sealed: Mapping[str, Any],
    private_key_pem_or_secret_yaml: bytes,
    *,
    namespace: str | None = None,
    source: str | None = None,
    key_source: str | None = None,
) -> dict[str, Any]:
    """Recovery-unseal: the Secret the controller would create from `sealed`, with `data` in base64."""
    keys = load_private_keys(private_key_pem_or_secret_yaml, source=key_source)
    return unseal_with_keys(sealed, keys, namespace=namespace, source=source)


def unseal_with_keys(
    sealed: Mapping[str, Any],
    keys: Sequence[rsa.RSAPrivateKey],
    *,
    namespace: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """As `unseal`, with keys already loaded (several key files: concatenate their lists).

    `namespace` stands for `kubectl apply -n` when the file has no metadata.namespace. All or nothing,
    like the controller: one value that does not open fails the whole object, and the error names it.
    """
    if not isinstance(sealed, Mapping):
        raise MalformedSealedSecret("is not a mapping", file=source)
    if sealed.get("apiVersion") != API_VERSION or sealed.get("kind") != KIND:
        raise MalformedSealedSecret(
            f"is a {sealed.get('kind')!r} of {sealed.get('apiVersion')!r}, not a {KIND} of {API_VERSION}",
            file=source,
        )
    if not keys:
        raise ControllerKeyError("no controller private key given", file=source, hint=KEY_HINT)
    place = place_of(sealed, namespace=namespace, source=source)
    if "spec" not in sealed or not isinstance(sealed["spec"], Mapping):
        raise MalformedSealedSecret("spec must be a mapping", file=source)
    spec = sealed["spec"]
    if spec.get("data") is not None:
        if spec.get("encryptedData"):
            raise MalformedSealedSecret("spec has both encryptedData and the deprecated data", file=source)
        raise UnsupportedSealedSecret(
            "uses the deprecated v1 format (spec.data, one blob for the whole Secret)",
            file=source,
            hint="re-seal it with a current kubeseal first (kubeseal --re-encrypt)",
        )
    encrypted = mapping(spec.get("encryptedData"), "spec.encryptedData", source, MalformedSealedSecret)
    template = mapping(spec.get("template"), "spec.template", source, MalformedSealedSecret)
    t_md = mapping(template.get("metadata"), "spec.template.metadata", source, MalformedSealedSecret)
    labels = str_map(t_md.get("labels"), "spec.template.metadata.labels", source, MalformedSealedSecret)
    annotations = str_map(t_md.get("annotations"), "spec.template.metadata.annotations", source, MalformedSealedSecret)
    s_type = opt_str(template, "type", "spec.template", source, MalformedSealedSecret)
    immutable = template.get("immutable")
    if immutable is not None and not isinstance(immutable, bool):
        raise MalformedSealedSecret("spec.template.immutable must be true or false", file=source)
    literal = _template_data(template.get("data"), source)

    blobs: dict[str, Blob] = {}
    for item, value in encrypted.items():
        if not isinstance(item, str):
            raise MalformedSealedSecret("spec.encryptedData has a key that is not a string", file=source)
        blobs[item] = parse_blob(value, format_path(("spec", "encryptedData", item)), source)
    opened: dict[str, bytes] = {}
    failed: list[tuple[str, bool]] = []  # (item, authenticated body failed)
    for item, blob in blobs.items():
        try:
            plaintext = attempt(blob, keys, place.label)
        except BodyFailed:
            failed.append((item, True))
            continue
        if plaintext is None:
            failed.append((item, False))
        else:
            opened[item] = plaintext
    if failed:
        item, body_failed = failed[0]
        where = format_path(("spec", "encryptedData", item))
        if body_failed:
            raise altered(where, source)
        also = [format_path(("spec", "encryptedData", i)) for i, _ in failed[1:]]
        raise diagnose(
            blobs[item], keys, place, _alternates(place, t_md), where, source, others_open=bool(opened), also=also
        )

    data = {k: base64.b64encode(v).decode("ascii") for k, v in opened.items()}
    for k, v in literal.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = base64.b64encode(v.encode()).decode("ascii")
    metadata: dict[str, Any] = {}
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    if labels:
        metadata["labels"] = dict(sorted(labels.items()))
    metadata["name"] = place.name
    if place.namespace:
        metadata["namespace"] = place.namespace
    secret: dict[str, Any] = {"apiVersion": "v1", "data": dict(sorted(data.items()))}
    if immutable is not None:
        secret["immutable"] = immutable
    secret.update({"kind": "Secret", "metadata": metadata, "type": s_type or "Opaque"})
    return secret


def _template_data(value: Any, source: str | None) -> dict[str, str | None]:
    """`spec.template.data`: literal entries are kept, null entries remove a key; Go templates are refused
    (rendering text/template + sprig faithfully is the controller's job, not ours)."""
    out: dict[str, str | None] = {}
    for k, v in mapping(value, "spec.template.data", source, MalformedSealedSecret).items():
        where = format_path(("spec", "template", "data", str(k)))
        if v is not None and not isinstance(v, str):
            raise MalformedSealedSecret(f"{where} must be a string", file=source)
        if v is not None and "{{" in v:
            raise UnsupportedSealedSecret(
                f"{where} is a Go template; sealer does not render templates",
                file=source,
                hint="kubeseal --recovery-unseal renders it; or move the value into encryptedData",
            )
        out[str(k)] = v
    return out
