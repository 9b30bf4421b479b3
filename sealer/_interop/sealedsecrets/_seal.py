"""Sealing: a v1 Secret into a SealedSecret, in kubeseal's exact layout, for a controller's
certificate or an already loaded public key.

Why a module of its own: this is where a Secret is checked the way kubeseal checks it (a name, a
namespace unless cluster-wide, Secret key syntax, base64 `data`, string `stringData`), where the
scope is chosen and written back as annotations, and where server-set metadata and the plaintext
copies kept in last-applied annotations are dropped; the crypto of one value is `_crypto`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..._format.valuepath import format_path
from ._controllerkeys import load_certificate
from ._crypto import seal_value
from ._document import API_VERSION, KIND, b64decode, mapping, namespace_of, opt_str, str_map
from ._errors import InvalidSecret
from ._scopes import SCOPES, Scope, encryption_label, scope_annotations, scope_of

# kubectl and kubecfg keep a full copy of the applied object here, plaintext included (their #227).
_LAST_APPLIED = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
)
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # what the API server accepts as a Secret data key


def seal(
    secret: Mapping[str, Any],
    cert_pem: bytes,
    scope: Scope | None = None,
    now: datetime | None = None,
    *,
    namespace: str | None = None,
    allow_empty: bool = False,
    source: str | None = None,
    cert_source: str | None = None,
) -> dict[str, Any]:
    """A SealedSecret for the controller holding `cert_pem`'s key, in kubeseal's exact format.

    `now` is the time the certificate's expiry is checked against (naive means UTC); the other
    arguments are those of `seal_with_key`.
    """
    key = load_certificate(cert_pem, now=now, source=cert_source)
    return seal_with_key(secret, key, scope, namespace=namespace, allow_empty=allow_empty, source=source)


def seal_with_key(
    secret: Mapping[str, Any],
    public_key: rsa.RSAPublicKey,
    scope: Scope | None = None,
    *,
    namespace: str | None = None,
    allow_empty: bool = False,
    source: str | None = None,
) -> dict[str, Any]:
    """As `seal`, with the key already loaded (and checked) by `load_certificate`.

    `scope` None takes it from the Secret's scope annotations (strict without any), as kubeseal does
    without --scope; an explicit scope rewrites those annotations, strict included. `namespace` stands
    for the kubeconfig namespace kubeseal uses when the Secret has none. Server-set metadata (uid,
    resourceVersion, ownerReferences, ...) and the last-applied annotations are left out, as kubeseal
    does; `creationTimestamp: null` is written as Go writes an unset time.
    """
    err = InvalidSecret
    if not isinstance(secret, Mapping):
        raise err("is not a mapping", file=source)
    if secret.get("kind") != "Secret" or secret.get("apiVersion", "v1") != "v1":
        raise err(f"is a {secret.get('kind')!r} of {secret.get('apiVersion')!r}, not a v1 Secret", file=source)
    if scope is not None and scope not in SCOPES:
        raise err(f"scope {scope!r} is not one of {', '.join(SCOPES)}", file=source)
    md = mapping(secret.get("metadata"), "metadata", source, err)
    name = opt_str(md, "name", "metadata", source, err)
    if not name:
        raise err("missing metadata.name in the Secret", file=source, hint="SealedSecrets are bound to a name")
    ns = namespace_of(opt_str(md, "namespace", "metadata", source, err), namespace, source, err)
    annotations = str_map(md.get("annotations"), "metadata.annotations", source, err)
    labels = str_map(md.get("labels"), "metadata.labels", source, err)
    if scope is None:
        scope = scope_of(annotations)
    else:
        annotations = scope_annotations(annotations, scope)
    if scope != "cluster-wide" and not ns:
        raise err(
            f"has no metadata.namespace; a {scope} SealedSecret is bound to one",
            file=source,
            hint="add metadata.namespace, pass a namespace, or use the cluster-wide scope",
        )
    s_type = secret.get("type") or ""
    if not isinstance(s_type, str):
        raise err("type must be a string", file=source)
    immutable = secret.get("immutable")
    if immutable is not None and not isinstance(immutable, bool):
        raise err("immutable must be true or false", file=source)

    items: dict[str, bytes] = {}
    for section in ("data", "stringData"):  # stringData second: it wins on a shared key, as in kubeseal
        for k, v in mapping(secret.get(section), section, source, err).items():
            where = format_path((section, str(k)))
            if not isinstance(k, str) or not _SECRET_KEY.fullmatch(k) or len(k) > 253:
                raise err(f"{where}: a Secret key is 1-253 of A-Z a-z 0-9 - _ .", file=source)
            if v is None:
                items[k] = b""
            elif not isinstance(v, str):
                raise err(f"{where} must be a string, not {_kind_of(v)}", file=source, hint='quote it, e.g. "5432"')
            elif section == "stringData":
                items[k] = v.encode("utf-8")
            else:
                raw = b64decode(v)
                if raw is None:
                    raise err(f"{where} is not valid base64", file=source, hint="put plain text under stringData")
                items[k] = raw
    if not items and not allow_empty:
        raise err(
            "has no data or stringData; kubeseal refuses that as a likely mistake",
            file=source,
            hint="allow an empty SealedSecret explicitly if that is what you want",
        )

    label = encryption_label(ns, name, scope)
    encrypted = {k: seal_value(public_key, v, label) for k, v in sorted(items.items())}
    t_md: dict[str, Any] = {}
    kept = {k: v for k, v in annotations.items() if k not in _LAST_APPLIED}
    if kept:
        t_md["annotations"] = dict(sorted(kept.items()))
    t_md["creationTimestamp"] = None
    if labels:
        t_md["labels"] = dict(sorted(labels.items()))
    t_md["name"] = name
    if ns:
        t_md["namespace"] = ns
    template: dict[str, Any] = {}
    if immutable is not None:
        template["immutable"] = immutable
    template["metadata"] = t_md
    if s_type:
        template["type"] = s_type
    ss_md: dict[str, Any] = {}
    scope_ann = scope_annotations({}, scope)
    if scope_ann:
        ss_md["annotations"] = scope_ann
    ss_md["creationTimestamp"] = None
    ss_md["name"] = name
    if ns:
        ss_md["namespace"] = ns
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": ss_md,
        "spec": {"encryptedData": encrypted, "template": template},
    }


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int | float):
        return "a number"
    return "a mapping" if isinstance(v, Mapping) else "a list" if isinstance(v, list) else "a non-string value"
