"""Bitnami Sealed Secrets: seal a Secret into a `bitnami.com/v1alpha1` SealedSecret for a controller's
certificate, and recovery-unseal one with the controller's private key.

The value format, as kubeseal and the controller compose it (bitnami-labs/sealed-secrets,
pkg/crypto/crypto.go and pkg/apis/sealedsecrets/v1alpha1; checked against a kubeseal v0.14.1 value):

    value = base64std( u16be(len(rsa)) ‖ rsa ‖ gcm )
    rsa   = RSA-OAEP(SHA-256, MGF1-SHA-256, label)(K)      K: 32 random bytes, one per value
    gcm   = AES-GCM(K, nonce = 12 zero bytes, no AAD)(plaintext)   ciphertext ‖ 16-byte tag
    label = "namespace/name" (strict) | "namespace" (namespace-wide) | "" (cluster-wide)

The OAEP label is the only binding, and the controller takes it from the SealedSecret's own
metadata (name, namespace and the scope annotations), never from `spec.template`. There is no key id
in a value: whoever holds several controller keys tries each one.

The modules, one job each: `_errors` (the error classes), `_scopes` (scopes, labels, places),
`_document` (object fields, `place_of`, YAML in and out), `_crypto` (one value: the hybrid
RSA-OAEP + AES-GCM encryption and the proof of why a value does not open), `_controllerkeys`
(certificates and controller private keys), `_seal` (Secret to SealedSecret) and `_unseal`
(recovery-unseal). This module only re-exports their public names.
"""

from __future__ import annotations

from ._controllerkeys import key_fingerprint, load_certificate, load_private_keys
from ._crypto import open_value, seal_value
from ._document import API_VERSION, load_documents, place_of, to_yaml
from ._document import KIND as KIND  # importable as before, though not in __all__
from ._errors import (
    AlteredValue,
    CertificateError,
    CertificateExpired,
    CertificateNotRSA,
    ControllerKeyError,
    InvalidSecret,
    LabelMismatch,
    MalformedSealedSecret,
    NoKeyCouldDecrypt,
    TruncatedBlob,
    UnsupportedSealedSecret,
    WrongKey,
)
from ._scopes import (
    ANNOTATION_CLUSTER_WIDE,
    ANNOTATION_NAMESPACE_WIDE,
    FROM_SEALER_SCOPE,
    SCOPES,
    TO_SEALER_SCOPE,
    Place,
    Scope,
    encryption_label,
    scope_of,
)
from ._seal import seal, seal_with_key
from ._unseal import unseal, unseal_with_keys

__all__ = [
    "ANNOTATION_CLUSTER_WIDE",
    "ANNOTATION_NAMESPACE_WIDE",
    "API_VERSION",
    "FROM_SEALER_SCOPE",
    "SCOPES",
    "TO_SEALER_SCOPE",
    "AlteredValue",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotRSA",
    "ControllerKeyError",
    "InvalidSecret",
    "LabelMismatch",
    "MalformedSealedSecret",
    "NoKeyCouldDecrypt",
    "Place",
    "Scope",
    "TruncatedBlob",
    "UnsupportedSealedSecret",
    "WrongKey",
    "encryption_label",
    "key_fingerprint",
    "load_certificate",
    "load_documents",
    "load_private_keys",
    "open_value",
    "place_of",
    "scope_of",
    "seal",
    "seal_value",
    "seal_with_key",
    "to_yaml",
    "unseal",
    "unseal_with_keys",
]
