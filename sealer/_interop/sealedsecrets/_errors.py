"""The errors of Sealed Secrets interop, one class per failure a user must tell apart: a Secret or
SealedSecret of the wrong shape, a certificate or controller key that cannot be used, and the
reasons a value does not open (label moved, wrong key, value altered, cause not provable).

Why a module of its own: sealing, unsealing, key loading and the hybrid crypto all raise them, and
callers (the CLI, the tests) catch them by class. Messages never carry plaintext or key material.
"""

from __future__ import annotations

from ...errors import InputError, KeyFormatError, UnsealError

# Where the controller's keys are, for every "which key?" hint.
KEY_HINT = "kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml"


class InvalidSecret(InputError):
    """The Secret to seal is not one kubeseal would accept (no name, no namespace, bad base64, ...)."""


class MalformedSealedSecret(InputError):
    """Not a SealedSecret, or a field of it has the wrong shape."""


class TruncatedBlob(MalformedSealedSecret):
    """A value is shorter than its length prefix says (the controller's ErrTooShort)."""


class UnsupportedSealedSecret(InputError):
    """Valid for the controller but not opened here: the deprecated v1 `spec.data`, Go templates."""


class CertificateError(KeyFormatError):
    """The controller certificate cannot be used to seal."""


class CertificateNotRSA(CertificateError):
    """The certificate's key is not RSA; the controller only has RSA keys."""


class CertificateExpired(CertificateError):
    """The certificate is past its NotAfter date; kubeseal refuses those too."""


class ControllerKeyError(KeyFormatError):
    """The controller private key input holds no usable RSA private key."""


class NoKeyCouldDecrypt(UnsealError):
    """No key given unwraps the value under this SealedSecret's label, and the cause is not provable:
    a key not given, or a value sealed for another name/namespace (OAEP cannot tell them apart)."""


class LabelMismatch(NoKeyCouldDecrypt):
    """Proven move: the value opens under another place's label, not under this SealedSecret's."""


class WrongKey(NoKeyCouldDecrypt):
    """Proven: the value was sealed for an RSA key of a size none of the given keys has."""


class AlteredValue(UnsealError):
    """The key and label unwrap the session key, but AES-GCM authentication fails: the value was edited."""
