"""Bitnami Sealed Secrets interop, against a real kubeseal value and independently made vectors.

Peer data: tests/vectors/sealed-secrets/ (README.md there says where each file came from).
Real crypto throughout; test certificates are made here with `cryptography`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealer._interop import sealedsecrets as ss
from sealer.errors import InputError, KeyFormatError, SealerError, UnsealError

VECTOR_DIR = Path(__file__).parent / "vectors"  # public peer test data, see vectors/README.md
PEER = VECTOR_DIR / "sealed-secrets"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
REAL_PLAINTEXT = b"sealed-secrets-example"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PEER / "selfmade-vectors.json").read_text())
    return data


@pytest.fixture(scope="module")
def vkeys(vectors: dict[str, Any]) -> dict[str, rsa.RSAPrivateKey]:
    """The two 2048-bit keys of the self-made vectors (fast private operations)."""
    out = {}
    for name, k in vectors["keys"].items():
        (key,) = ss.load_private_keys(k["pem"].encode())
        out[name] = key
    return out


@pytest.fixture(scope="module")
def real_keys() -> list[rsa.RSAPrivateKey]:
    return ss.load_private_keys((PEER / "wingkwong-tls.key.pem").read_bytes())


@pytest.fixture(scope="module")
def real_sealed() -> dict[str, Any]:
    path = PEER / "wingkwong-04-sealed-secret.yaml"
    (doc,) = ss.load_documents(path.read_text(), str(path))
    return doc


def make_cert(key: Any, not_before: datetime, not_after: datetime) -> bytes:
    """A self-signed certificate with empty subject and issuer, like the controller's."""
    name = x509.Name([])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def cert1(vkeys: dict[str, rsa.RSAPrivateKey]) -> bytes:
    return make_cert(vkeys["key1"], datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))


def secret(name: str = "db", namespace: str | None = "myns", **extra: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if namespace is not None:
        md["namespace"] = namespace
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": md,
        "type": "Opaque",
        "data": {"tls.crt": base64.b64encode(b"\x00\xffbinary").decode(), "empty": ""},
        "stringData": {"password": "hunter2-s3cret", "user": "admin"},
    }
    out.update(extra)
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def independent_open(value: str, key: rsa.RSAPrivateKey, label: bytes) -> bytes:
    """The controller's HybridDecrypt written out here from FORMAT.md, so sealed output is checked by
    something other than the module that made it."""
    raw = base64.b64decode(value)
    n = int.from_bytes(raw[:2], "big")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)
    session_key = key.decrypt(raw[2 : 2 + n], oaep)
    assert len(session_key) == 32
    return AESGCM(session_key).decrypt(bytes(12), raw[2 + n :], None)


def assert_no_leak(err: BaseException, *plaintexts: bytes) -> None:
    text = str(err)
    assert "\n" not in text
    for p in plaintexts:
        assert p.decode("latin-1") not in text
        assert b64(p) not in text


# --- the real kubeseal value ------------------------------------------------------------------------------


def test_real_kubeseal_value_opens_with_the_controller_key_pem(real_sealed: dict[str, Any]) -> None:
    key_pem = (PEER / "wingkwong-tls.key.pem").read_bytes()
    assert ss.unseal(real_sealed, key_pem) == {
        "apiVersion": "v1",
        "data": {"token": b64(REAL_PLAINTEXT)},
        "kind": "Secret",
        "metadata": {"name": "credentials", "namespace": "foo"},
        "type": "Opaque",
    }


def test_real_kubeseal_value_opens_with_the_controller_key_secret_yaml(real_sealed: dict[str, Any]) -> None:
    key_secret = (PEER / "wingkwong-sealed-secrets-keynvpcz.yaml").read_bytes()
    keys = ss.load_private_keys(key_secret)
    assert len(keys) == 1
    assert ss.key_fingerprint(keys[0]) == "SHA256:s5na5hZp9IkC+KhFz2q8VYlmbvcGZ8S2wgmgh5ncIdU"
    assert ss.unseal_with_keys(real_sealed, keys)["data"] == {"token": b64(REAL_PLAINTEXT)}


def test_real_kubeseal_value_as_json_which_kubeseal_writes_by_default(
    real_sealed: dict[str, Any], real_keys: list[rsa.RSAPrivateKey]
) -> None:
    (doc,) = ss.load_documents(json.dumps(real_sealed, indent=2), "sealed.json")
    assert ss.unseal_with_keys(doc, real_keys)["data"]["token"] == b64(REAL_PLAINTEXT)


def test_real_value_layout_and_exact_label(real_sealed: dict[str, Any], real_keys: list[rsa.RSAPrivateKey]) -> None:
    value = real_sealed["spec"]["encryptedData"]["token"]
    raw = base64.b64decode(value)
    assert raw[:2] == b"\x02\x00" and len(raw) == 2 + 512 + len(REAL_PLAINTEXT) + 16
    assert ss.open_value(value, b"foo/credentials", real_keys) == REAL_PLAINTEXT
    for wrong in (b"foo", b"", b"foocredentials", b"foo/other"):
        with pytest.raises(ss.NoKeyCouldDecrypt) as e:
            ss.open_value(value, wrong, real_keys)
        assert_no_leak(e.value, REAL_PLAINTEXT)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda o: o["metadata"].update(name="other"), "name 'credentials' in namespace 'foo'"),
        (lambda o: o["metadata"].update(namespace="bar"), "name 'credentials' in namespace 'foo'"),
        (
            lambda o: o["metadata"].update(annotations={ss.ANNOTATION_CLUSTER_WIDE: "true"}),
            "not for any namespace (cluster-wide)",
        ),
        (
            lambda o: o["metadata"].update(annotations={ss.ANNOTATION_NAMESPACE_WIDE: "true"}),
            "not for namespace 'foo' (namespace-wide)",
        ),
    ],
)
def test_real_value_moved_fails_saying_the_label_did_not_match(
    real_sealed: dict[str, Any], real_keys: list[rsa.RSAPrivateKey], edit: Any, says: str
) -> None:
    moved = copy.deepcopy(real_sealed)
    edit(moved)
    with pytest.raises(ss.LabelMismatch) as e:
        ss.unseal_with_keys(moved, real_keys, source="moved.yaml")
    assert "label did not match" in str(e.value) and says in str(e.value)
    assert str(e.value).startswith("moved.yaml: spec.encryptedData.token: ")
    assert_no_leak(e.value, REAL_PLAINTEXT)


def test_real_value_moved_with_its_template_still_fails(
    real_sealed: dict[str, Any], real_keys: list[rsa.RSAPrivateKey]
) -> None:
    """Renamed everywhere: nothing left says where it came from, so the error names both causes."""
    moved = copy.deepcopy(real_sealed)
    for md in (moved["metadata"], moved["spec"]["template"]["metadata"]):
        md["name"] = "other"
    with pytest.raises(ss.NoKeyCouldDecrypt) as e:
        ss.unseal_with_keys(moved, real_keys)
    assert not isinstance(e.value, ss.LabelMismatch | ss.WrongKey)
    assert "another name/namespace (the label did not match)" in str(e.value)
    assert_no_leak(e.value, REAL_PLAINTEXT)


def test_namespace_given_for_a_file_without_one(
    real_sealed: dict[str, Any], real_keys: list[rsa.RSAPrivateKey]
) -> None:
    """A file applied with `kubectl apply -n foo` names no namespace; the label still needs it."""
    bare = copy.deepcopy(real_sealed)
    del bare["metadata"]["namespace"]
    with pytest.raises(ss.NoKeyCouldDecrypt):
        ss.unseal_with_keys(bare, real_keys)
    opened = ss.unseal_with_keys(bare, real_keys, namespace="foo")
    assert opened["metadata"] == {"name": "credentials", "namespace": "foo"}
    with pytest.raises(ss.MalformedSealedSecret, match="'foo', but namespace 'bar'"):
        ss.unseal_with_keys(real_sealed, real_keys, namespace="bar")


def test_sealing_matches_kubeseal_output_layout(
    real_sealed: dict[str, Any], real_keys: list[rsa.RSAPrivateKey]
) -> None:
    """The input kubeseal was given, sealed here: the same object but for the (random) value."""
    cert = (PEER / "wingkwong-tls.crt.pem").read_bytes()
    src = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "credentials", "namespace": "foo", "creationTimestamp": None},
        "type": "Opaque",
        "data": {"token": b64(REAL_PLAINTEXT)},
    }
    out = ss.seal(src, cert, now=NOW)
    value = out["spec"]["encryptedData"]["token"]
    assert value.startswith("Ag") and len(base64.b64decode(value)) == 552
    expected = copy.deepcopy(real_sealed)
    expected["spec"]["encryptedData"]["token"] = value
    assert out == expected
    assert independent_open(value, real_keys[0], b"foo/credentials") == REAL_PLAINTEXT
    text = ss.to_yaml(out)
    assert text.startswith("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n")
    assert f"    token: {value}\n" in text and "creationTimestamp: null" in text
    assert ss.load_documents(text, "out.yaml") == [expected]


def test_exported_yaml_reads_back_as_strings_under_yaml_1_1(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    """kubectl reads YAML 1.1: `on`, `yes`, `no` and `0777` written plain would come back as bools and a
    number. Both directions are read back with PyYAML, a YAML 1.1 reader."""
    src = secret(namespace="no", data=None, stringData={"on": "yes"})
    src["metadata"]["labels"] = {"debug": "on"}
    src["metadata"]["annotations"] = {"mode": "0777"}
    sealed = ss.seal(src, cert1, "strict", now=NOW)
    text = ss.to_yaml(sealed)
    assert '\n    "on": ' in text
    back = yaml.safe_load(text)
    assert back == sealed
    assert list(back["spec"]["encryptedData"]) == ["on"]
    t_md = back["spec"]["template"]["metadata"]
    assert (t_md["namespace"], t_md["labels"], t_md["annotations"]) == ("no", {"debug": "on"}, {"mode": "0777"})

    opened = ss.unseal_with_keys(back, [vkeys["key1"]])  # what `sealer import sealedsecret` writes
    assert opened["data"] == {"on": b64(b"yes")}
    assert yaml.safe_load(ss.to_yaml(opened)) == opened


def test_certificates_are_read_without_their_extensions(real_keys: list[rsa.RSAPrivateKey]) -> None:
    cert_pem = (PEER / "wingkwong-tls.crt.pem").read_bytes()
    with pytest.raises(ValueError):  # the gotcha: KeyUsage=EncipherOnly without KeyAgreement
        _ = x509.load_pem_x509_certificate(cert_pem).extensions
    key = ss.load_certificate(cert_pem, now=NOW)
    assert key.public_numbers() == real_keys[0].public_key().public_numbers()
    test_cert = ss.load_certificate((PEER / "kubeseal_test-testCert.pem").read_bytes(), now=NOW)
    assert test_cert.key_size == 4096 and test_cert.public_numbers().e == 65537


def test_kubeseal_test_certificate_seals_until_it_expires() -> None:
    cert = (PEER / "kubeseal_test-testCert.pem").read_bytes()
    out = ss.seal(secret(), cert, "strict", now=datetime(2027, 6, 18, tzinfo=UTC))
    assert all(v.startswith("Ag") for v in out["spec"]["encryptedData"].values())
    with pytest.raises(ss.CertificateExpired, match="expired on 2027-06-18") as e:
        ss.seal(secret(), cert, "strict", now=datetime(2027, 6, 19, tzinfo=UTC), cert_source="cert.pem")
    assert str(e.value).startswith("cert.pem: ")


# --- self-made vectors ------------------------------------------------------------------------------------


def _place(label: str) -> dict[str, Any]:
    """SealedSecret metadata whose label is `label`."""
    if "/" in label:
        ns, name = label.split("/")
        return {"name": name, "namespace": ns}
    if label:
        return {"name": "anything", "namespace": label, "annotations": {ss.ANNOTATION_NAMESPACE_WIDE: "true"}}
    return {"name": "anything", "annotations": {ss.ANNOTATION_CLUSTER_WIDE: "true"}}


def test_every_selfmade_case_gives_its_expected_result(
    vectors: dict[str, Any], vkeys: dict[str, rsa.RSAPrivateKey]
) -> None:
    assert len(vectors["cases"]) == 9
    for case in vectors["cases"]:
        keys = [vkeys[k] for k in case["unseal_keys"]]
        label = case["unseal_label"].encode()
        obj = {
            "apiVersion": ss.API_VERSION,
            "kind": "SealedSecret",
            "metadata": _place(case["unseal_label"]),
            "spec": {"encryptedData": {"v": case["value_b64"]}},
        }
        want = case["expect_plaintext"]
        if want is None:
            with pytest.raises(ss.NoKeyCouldDecrypt):
                ss.open_value(case["value_b64"], label, keys)
            with pytest.raises(ss.NoKeyCouldDecrypt) as e:
                ss.unseal_with_keys(obj, keys)
            assert "label did not match" in str(e.value), case["description"]
        else:
            assert ss.open_value(case["value_b64"], label, keys) == want.encode(), case["description"]
            assert ss.unseal_with_keys(obj, keys)["data"] == {"v": b64(want.encode())}, case["description"]


def test_selfmade_moves_are_named_when_the_template_remembers(
    vectors: dict[str, Any], vkeys: dict[str, rsa.RSAPrivateKey]
) -> None:
    keys = list(vkeys.values())
    for case in vectors["cases"]:
        if case["expect_plaintext"] is not None:
            continue
        md = _place(case["unseal_label"])
        origin = _place(case["seal_label"])
        obj: dict[str, Any] = {
            "apiVersion": ss.API_VERSION,
            "kind": "SealedSecret",
            "metadata": md,
            "spec": {"encryptedData": {"v": case["value_b64"]}, "template": {"metadata": origin}},
        }
        if "annotations" in md and "annotations" not in origin:  # scope changed: the object's own place
            obj["spec"]["template"]["metadata"] = {k: v for k, v in md.items() if k != "annotations"}
            obj["metadata"] = {**md, "name": origin["name"], "namespace": origin["namespace"]}
        with pytest.raises(ss.LabelMismatch) as e:
            ss.unseal_with_keys(obj, keys)
        label = case["seal_label"]
        origin_place = ss.Place("myns", "mysecret", "strict") if "/" in label else ss.Place(label, "", "namespace-wide")
        assert f"it was sealed for {origin_place.describe()}, not for" in str(e.value), case["description"]


def test_selfmade_key_fingerprints(vectors: dict[str, Any], vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    for name, key in vkeys.items():
        assert ss.key_fingerprint(key) == vectors["keys"][name]["ssh_sha256_fingerprint"]


def test_selfmade_structural_negatives(vectors: dict[str, Any], vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    keys = list(vkeys.values())
    negatives = vectors["structural_negatives"]
    assert len(negatives) == 3
    for neg in negatives:
        expected = ss.TruncatedBlob if "ErrTooShort" in neg["description"] else ss.AlteredValue
        with pytest.raises(expected) as e:
            ss.open_value(neg["value_b64"], b"myns/mysecret", keys, where="v")
        assert_no_leak(e.value, b"supersecret")
    assert issubclass(ss.TruncatedBlob, InputError) and issubclass(ss.AlteredValue, UnsealError)


# --- sealing and round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ss.SCOPES)
def test_round_trip_every_scope(scope: ss.Scope, cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    sealed = ss.seal(secret(), cert1, scope, now=NOW)
    annotations = sealed["metadata"].get("annotations")
    assert annotations == (None if scope == "strict" else {f"sealedsecrets.bitnami.com/{scope}": "true"})
    assert sealed["spec"]["template"]["metadata"].get("annotations") == annotations
    assert sorted(sealed["spec"]["encryptedData"]) == ["empty", "password", "tls.crt", "user"]
    label = {"strict": b"myns/db", "namespace-wide": b"myns", "cluster-wide": b""}[scope]
    assert independent_open(sealed["spec"]["encryptedData"]["password"], vkeys["key1"], label) == b"hunter2-s3cret"
    opened = ss.unseal_with_keys(sealed, [vkeys["key2"], vkeys["key1"]])  # several keys: each is tried
    assert opened["data"] == {
        "empty": "",
        "password": b64(b"hunter2-s3cret"),
        "tls.crt": b64(b"\x00\xffbinary"),
        "user": b64(b"admin"),
    }
    assert opened["metadata"]["name"] == "db" and opened["metadata"]["namespace"] == "myns"
    # what comes out seals again to the same scope (the annotations carry it)
    again = ss.seal(opened, cert1, now=NOW)
    assert again["metadata"].get("annotations") == annotations
    assert ss.unseal_with_keys(again, [vkeys["key1"]])["data"] == opened["data"]


@pytest.mark.parametrize(
    ("scope", "rename_opens", "other_namespace_opens"),
    [("strict", False, False), ("namespace-wide", True, False), ("cluster-wide", True, True)],
)
def test_moving_values_per_scope(
    scope: ss.Scope,
    rename_opens: bool,
    other_namespace_opens: bool,
    cert1: bytes,
    vkeys: dict[str, rsa.RSAPrivateKey],
) -> None:
    keys = [vkeys["key1"]]
    sealed = ss.seal(secret(), cert1, scope, now=NOW)
    for change, opens in (({"name": "db2"}, rename_opens), ({"namespace": "otherns"}, other_namespace_opens)):
        moved = copy.deepcopy(sealed)
        moved["metadata"].update(change)
        if opens:
            assert ss.unseal_with_keys(moved, keys)["metadata"]["name"] == moved["metadata"]["name"]
            continue
        with pytest.raises(ss.LabelMismatch) as e:
            ss.unseal_with_keys(moved, keys)
        assert "label did not match" in str(e.value)
        assert_no_leak(e.value, b"hunter2-s3cret", b"admin", b"\x00\xffbinary")


def test_one_value_copied_into_another_sealed_secret(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    a = ss.seal(secret("a"), cert1, "strict", now=NOW)
    b = ss.seal(secret("b"), cert1, "strict", now=NOW)
    b["spec"]["encryptedData"]["password"] = a["spec"]["encryptedData"]["password"]
    with pytest.raises(ss.NoKeyCouldDecrypt) as e:
        ss.unseal_with_keys(b, [vkeys["key1"]])
    assert "spec.encryptedData.password" in str(e.value)
    assert "label did not match" in str(e.value) and "copied from another SealedSecret" in str(e.value)
    assert_no_leak(e.value, b"hunter2-s3cret")


def test_wrong_keys(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey], real_keys: list[rsa.RSAPrivateKey]) -> None:
    sealed = ss.seal(secret(), cert1, "strict", now=NOW)
    with pytest.raises(ss.WrongKey, match=r"sealed for a 2048-bit RSA key; the 1 key\(s\) given are 4096-bit") as e:
        ss.unseal_with_keys(sealed, real_keys)
    assert_no_leak(e.value, b"hunter2-s3cret")
    with pytest.raises(ss.NoKeyCouldDecrypt) as e2:  # same size, other key: not provably either cause
        ss.unseal_with_keys(sealed, [vkeys["key2"]])
    assert not isinstance(e2.value, ss.LabelMismatch | ss.WrongKey)
    assert "also failed" in str(e2.value)
    with pytest.raises(ss.ControllerKeyError):
        ss.unseal_with_keys(sealed, [])


def test_altered_and_truncated_values(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    sealed = ss.seal(secret(), cert1, "strict", now=NOW)
    raw = base64.b64decode(sealed["spec"]["encryptedData"]["password"])
    for bad, err in (
        (raw[:-1] + bytes([raw[-1] ^ 1]), ss.AlteredValue),
        (raw[:10], ss.TruncatedBlob),
        (raw[:1], ss.TruncatedBlob),
        (raw[: 2 + 256 + 15], ss.TruncatedBlob),
        (b"", ss.TruncatedBlob),
        (b"\x00\x00" + raw[2:], ss.MalformedSealedSecret),
    ):
        broken = copy.deepcopy(sealed)
        broken["spec"]["encryptedData"]["password"] = b64(bad)
        with pytest.raises(err) as e:
            ss.unseal_with_keys(broken, [vkeys["key1"]])
        assert "spec.encryptedData.password" in str(e.value)
        assert_no_leak(e.value, b"hunter2-s3cret", b"admin")
    flipped = bytearray(raw)
    flipped[100] ^= 0x40  # inside the RSA part: no key unwraps it
    with pytest.raises(ss.NoKeyCouldDecrypt):
        ss.open_value(b64(bytes(flipped)), b"myns/db", [vkeys["key1"]])


def test_seal_refuses_expired_and_non_rsa_certificates(vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    expired = make_cert(vkeys["key1"], datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ss.CertificateExpired, match="expired on 2020-01-01") as e:
        ss.seal(secret(), expired, "strict")
    assert isinstance(e.value, KeyFormatError)
    ss.seal(secret(), expired, "strict", now=datetime(2019, 6, 1))  # naive times are UTC
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = make_cert(ec_key, NOW - timedelta(days=1), NOW + timedelta(days=365))
    with pytest.raises(ss.CertificateNotRSA, match="an EC key, not RSA"):
        ss.seal(secret(), ec_cert, "strict", now=NOW)
    for junk in (b"", b"not a certificate", (PEER / "wingkwong-tls.key.pem").read_bytes()):
        with pytest.raises(ss.CertificateError, match="not a PEM certificate"):
            ss.load_certificate(junk)


def test_sealed_object_metadata_as_kubeseal_writes_it(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    src = secret(immutable=True)
    src["metadata"].update(
        uid="1234",
        resourceVersion="99",
        creationTimestamp="2024-01-01T00:00:00Z",
        ownerReferences=[{"kind": "X", "name": "y"}],
        labels={"app": "db"},
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"password":"hunter2-s3cret"}}',
            "team": "payments",
        },
    )
    src["stringData"]["tls.crt"] = "from stringData"  # stringData wins on a shared key
    out = ss.seal(src, cert1, now=NOW)
    assert out["metadata"] == {"creationTimestamp": None, "name": "db", "namespace": "myns"}
    assert out["spec"]["template"] == {
        "immutable": True,
        "metadata": {
            "annotations": {"team": "payments"},
            "creationTimestamp": None,
            "labels": {"app": "db"},
            "name": "db",
            "namespace": "myns",
        },
        "type": "Opaque",
    }
    assert "hunter2" not in ss.to_yaml(out)
    opened = ss.unseal_with_keys(out, [vkeys["key1"]])
    assert opened["data"]["tls.crt"] == b64(b"from stringData")
    assert opened["immutable"] is True and opened["metadata"]["labels"] == {"app": "db"}


def test_explicit_scope_rewrites_the_scope_annotations(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    src = secret()
    src["metadata"]["annotations"] = {ss.ANNOTATION_NAMESPACE_WIDE: "true"}
    assert ss.seal(src, cert1, now=NOW)["metadata"]["annotations"] == {ss.ANNOTATION_NAMESPACE_WIDE: "true"}
    strict = ss.seal(src, cert1, "strict", now=NOW)
    assert "annotations" not in strict["metadata"] and "annotations" not in strict["spec"]["template"]["metadata"]
    cw = ss.seal(src, cert1, "cluster-wide", now=NOW)
    assert cw["spec"]["template"]["metadata"]["annotations"] == {ss.ANNOTATION_CLUSTER_WIDE: "true"}
    both = copy.deepcopy(cw)  # both annotations set: cluster-wide wins, as in the controller
    both["metadata"]["annotations"][ss.ANNOTATION_NAMESPACE_WIDE] = "true"
    assert ss.unseal_with_keys(both, [vkeys["key1"]])["data"]["user"] == b64(b"admin")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(kind="ConfigMap"), "not a v1 Secret"),
        (lambda s: s["metadata"].pop("name"), "missing metadata.name"),
        (lambda s: s["metadata"].pop("namespace"), "has no metadata.namespace"),
        (lambda s: s.update(data={"k": "not base64!"}, stringData={}), r"data.k is not valid base64"),
        (lambda s: s.update(stringData={"port": 5432}), "stringData.port must be a string, not a number"),
        (lambda s: s.update(stringData={"a/b": "x"}), "a Secret key is"),
        (lambda s: s.update(data=None, stringData=None), "has no data or stringData"),
        (lambda s: s["metadata"].update(annotations={"x": True}), r"metadata.annotations.x must be a string"),
        (lambda s: s.update(metadata=["x"]), "metadata must be a mapping"),
    ],
)
def test_seal_input_errors(edit: Any, message: str, cert1: bytes) -> None:
    src = secret()
    edit(src)
    with pytest.raises(ss.InvalidSecret, match=message) as e:
        ss.seal(src, cert1, "strict", now=NOW, source="in.yaml")
    assert str(e.value).startswith("in.yaml: ")
    assert_no_leak(e.value, b"hunter2-s3cret", b"admin")


def test_seal_namespace_rules(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    src = secret(namespace=None)
    cw = ss.seal(src, cert1, "cluster-wide", now=NOW)  # cluster-wide needs no namespace
    assert "namespace" not in cw["metadata"]
    assert ss.unseal_with_keys(cw, [vkeys["key1"]])["metadata"] == {
        "annotations": {ss.ANNOTATION_CLUSTER_WIDE: "true"},
        "name": "db",
    }
    given = ss.seal(src, cert1, "strict", now=NOW, namespace="prod")
    assert given["metadata"]["namespace"] == "prod"
    with pytest.raises(ss.InvalidSecret, match="'myns', but namespace 'prod'"):
        ss.seal(secret(), cert1, "strict", now=NOW, namespace="prod")
    empty = ss.seal(secret(data=None, stringData=None), cert1, now=NOW, allow_empty=True)
    assert empty["spec"]["encryptedData"] == {}
    assert ss.unseal_with_keys(empty, [vkeys["key1"]])["data"] == {}


# --- reading SealedSecrets and keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda o: o.update(kind="Secret"), ss.MalformedSealedSecret, "not a SealedSecret"),
        (lambda o: o.pop("spec"), ss.MalformedSealedSecret, "spec must be a mapping"),
        (lambda o: o["spec"].update(encryptedData=["x"]), ss.MalformedSealedSecret, "encryptedData must be a mapping"),
        (lambda o: o["spec"]["encryptedData"].update(user="%%%"), ss.MalformedSealedSecret, "not standard base64"),
        (lambda o: o["spec"]["encryptedData"].update(user=7), ss.MalformedSealedSecret, "is not a string"),
        (lambda o: o["metadata"].pop("name"), ss.MalformedSealedSecret, "no metadata.name"),
        (lambda o: o["spec"].update(data="AAAA", encryptedData={}), ss.UnsupportedSealedSecret, "deprecated v1"),
        (lambda o: o["spec"].update(data="AAAA"), ss.MalformedSealedSecret, "both encryptedData"),
        (
            lambda o: o["spec"]["template"].update(data={"cfg": "pw={{ .password }}"}),
            ss.UnsupportedSealedSecret,
            r"spec.template.data.cfg is a Go template",
        ),
    ],
)
def test_malformed_sealed_secrets(
    edit: Any, error: type[SealerError], message: str, cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]
) -> None:
    sealed = ss.seal(secret(), cert1, "strict", now=NOW)
    edit(sealed)
    with pytest.raises(error, match=message) as e:
        ss.unseal_with_keys(sealed, [vkeys["key1"]], source="ss.yaml")
    assert str(e.value).startswith("ss.yaml: ")
    assert_no_leak(e.value, b"hunter2-s3cret", b"admin")


def test_template_data_literals_and_removals(cert1: bytes, vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    sealed = ss.seal(secret(), cert1, "strict", now=NOW)
    sealed["spec"]["template"]["data"] = {"mode": "plain text", "user": None}
    data = ss.unseal_with_keys(sealed, [vkeys["key1"]])["data"]
    assert data["mode"] == b64(b"plain text") and "user" not in data


def test_load_documents_reads_lists_and_multiple_documents() -> None:
    text = "---\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n---\n---\nkind: C\n"
    assert [d["kind"] for d in ss.load_documents(text, "f")] == ["A", "B", "C"]
    for bad in ("a: [", "- 1\n", "a: 1\na: 2\n"):
        with pytest.raises(ss.MalformedSealedSecret):
            ss.load_documents(bad, "f")


def _pem(key: Any, fmt: serialization.PrivateFormat = serialization.PrivateFormat.TraditionalOpenSSL) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())  # type: ignore[no-any-return]


def _key_secret(name: str, pem: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"}},
        "data": {"tls.crt": "", "tls.key": b64(pem)},
    }


def test_private_key_inputs(vkeys: dict[str, rsa.RSAPrivateKey], cert1: bytes) -> None:
    k1, k2 = vkeys["key1"], vkeys["key2"]
    fp = {ss.key_fingerprint(k1), ss.key_fingerprint(k2)}

    def fps(data: bytes) -> set[str]:
        return {ss.key_fingerprint(k) for k in ss.load_private_keys(data)}

    both_pem = _pem(k2) + cert1 + _pem(k1, serialization.PrivateFormat.PKCS8)
    assert fps(both_pem) == fp
    assert fps(b"Bag Attributes\n  localKeyID: 01\n" + _pem(k1)) == {ss.key_fingerprint(k1)}
    backup = {"apiVersion": "v1", "kind": "List", "items": [_key_secret("k2", _pem(k2)), _key_secret("k1", _pem(k1))]}
    assert fps(ss.to_yaml(backup).encode()) == fp
    assert fps(json.dumps(backup).encode()) == fp
    assert fps((ss.to_yaml(_key_secret("k1", _pem(k1))) + ss.to_yaml(_key_secret("k2", _pem(k2)))).encode()) == fp
    sealed = ss.seal(secret(), cert1, "strict", now=NOW)
    assert ss.unseal(sealed, ss.to_yaml(backup).encode())["data"]["user"] == b64(b"admin")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "holds no private key"),
        (b"hello", "neither a PEM private key nor a key Secret"),
        (b"kind: ConfigMap\n", "not a Secret holding tls.key"),
        (b"kind: Secret\nmetadata: {name: k}\ndata: {}\n", "Secret 'k' has no tls.key"),
        (b"kind: Secret\ndata: {tls.key: '%%%'}\n", "is not base64"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no PEM private key found"),
        (b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "cannot be read"),
    ],
)
def test_private_key_input_errors(data: bytes, message: str) -> None:
    with pytest.raises(ss.ControllerKeyError, match=message) as e:
        ss.load_private_keys(data, source="key.pem")
    assert str(e.value).startswith("key.pem: ")


def test_private_keys_that_are_not_usable(vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    with pytest.raises(ss.ControllerKeyError, match="an EC key; Sealed Secrets controller keys are RSA"):
        ss.load_private_keys(ec_pem)
    encrypted = vkeys["key1"].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(ss.ControllerKeyError, match="passphrase-protected"):
        ss.load_private_keys(encrypted)
    with pytest.raises(ss.ControllerKeyError, match="'k': the RSA PRIVATE KEY is passphrase-protected"):
        legacy = vkeys["key1"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        )
        ss.load_private_keys(ss.to_yaml(_key_secret("k", legacy)).encode())


def test_sealer_scope_names_map_both_ways() -> None:
    assert ss.FROM_SEALER_SCOPE == {"strict": "strict", "namespace": "namespace-wide", "env": "cluster-wide"}
    assert all(ss.TO_SEALER_SCOPE[v] == k for k, v in ss.FROM_SEALER_SCOPE.items())
    assert ss.encryption_label("ns", "n", "strict") == b"ns/n"
    assert ss.encryption_label("ns", "n", "namespace-wide") == b"ns"
    assert ss.encryption_label("ns", "n", "cluster-wide") == b""


def test_every_flipped_byte_fails_with_a_typed_error(vkeys: dict[str, rsa.RSAPrivateKey]) -> None:
    key = vkeys["key1"]
    raw = base64.b64decode(ss.seal_value(key.public_key(), b"pw", b"ns/n"))
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(SealerError) as e:
            ss.open_value(b64(bytes(bad)), b"ns/n", [key])
        assert isinstance(e.value, ss.NoKeyCouldDecrypt | ss.AlteredValue | ss.MalformedSealedSecret)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metadata=json_values,
    spec=json_values | st.fixed_dictionaries({"encryptedData": st.dictionaries(st.text(max_size=4), json_values)}),
    value=st.binary(max_size=300),
)
def test_fuzzed_sealed_secrets_never_crash(
    metadata: Any, spec: Any, value: bytes, vkeys: dict[str, rsa.RSAPrivateKey]
) -> None:
    obj = {"apiVersion": ss.API_VERSION, "kind": "SealedSecret", "metadata": metadata, "spec": spec}
    with contextlib.suppress(SealerError):
        ss.unseal_with_keys(obj, [vkeys["key1"]])
    with pytest.raises(SealerError):
        ss.open_value(b64(value), b"", [vkeys["key1"]])
