"""age v1 files: every C2SP/CCTV testkit vector, round trips, and cross-checks with the real `age` CLI.

The testkit is the authority (pyca's rule: test against published vectors, never only against our
own output); the CLI checks prove both directions interoperate. Passphrase prompts of the CLI are
answered through a pseudo-terminal, because `age` reads passphrases from the terminal only.
"""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import require_tool

from sealer._interop import age
from sealer._interop.age import (
    AgeArmorError,
    AgeError,
    AgeHeaderError,
    AgeHMACError,
    AgeNoMatchError,
    AgePayloadError,
    ScryptIdentity,
    ScryptRecipient,
    X25519AgeIdentity,
    X25519AgeRecipient,
)
from sealer._interop.age._format import marshal_stanza, parse_header
from sealer._keys import generate_identity, parse_identity
from sealer.errors import SealerError

VECTOR_DIR = Path(__file__).parent / "vectors"  # public peer test data, see vectors/README.md
TESTKIT = VECTOR_DIR / "age-testkit"
MIN_VECTORS = 124

# --- the testkit -----------------------------------------------------------------------------------

EXPECT_OF = {
    AgeNoMatchError: "no match",
    AgeHeaderError: "header failure",
    AgeHMACError: "HMAC failure",
    AgePayloadError: "payload failure",
    AgeArmorError: "armor failure",
}
KNOWN_KEYS = {"expect", "payload", "identity", "passphrase", "armored", "compressed", "file key", "comment"}


@dataclass
class Vector:
    name: str
    expect: str
    payload: str | None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    armored: bool = False
    body: bytes = b""


def _vector_names() -> list[str]:
    return sorted(p.name for p in TESTKIT.iterdir() if p.is_file() and not p.name.endswith(".md"))


def _load_vector(name: str) -> Vector:
    raw = (TESTKIT / name).read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    assert sep, f"{name}: no blank line after the vector's header"
    fields: dict[str, list[str]] = {}
    for line in head.decode("utf-8").split("\n"):
        key, _, value = line.partition(": ")
        assert key in KNOWN_KEYS, f"{name}: unknown testkit key {key!r}"
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return Vector(
        name=name,
        expect=fields["expect"][0],
        payload=fields.get("payload", [None])[0],
        identities=fields.get("identity", []),
        passphrases=fields.get("passphrase", []),
        armored=fields.get("armored") == ["yes"],
        body=body,
    )


VECTORS = _vector_names()
_TOO_FEW = "too-few-vectors"


@pytest.mark.parametrize("name", [*VECTORS, _TOO_FEW] if len(VECTORS) < MIN_VECTORS else VECTORS)
def test_testkit_vector(name: str) -> None:
    """Every vector of the folder gives its expected class; released bytes hash to `payload`.

    Payload hashes follow Go's streaming rule (authenticated chunks released before a later error),
    which `iter_decrypt` implements; `decrypt` must release nothing at all on any error.
    """
    if name == _TOO_FEW:
        pytest.fail(f"{TESTKIT} holds {len(VECTORS)} vectors, expected at least {MIN_VECTORS}")
    v = _load_vector(name)
    identities: list[age.IdentityLike] = [X25519AgeIdentity.parse(i) for i in v.identities]
    identities += [ScryptIdentity(p) for p in v.passphrases]

    released: list[bytes] = []
    got = "success"
    try:
        for chunk in age.iter_decrypt(v.body, identities, armored=v.armored):
            released.append(chunk)
    except AgeError as err:
        got = EXPECT_OF[type(err)]
    assert got == v.expect, f"{name}: expected {v.expect}, got {got}"
    if v.payload is not None:
        assert hashlib.sha256(b"".join(released)).hexdigest() == v.payload, f"{name}: payload hash"

    # The all-or-nothing API: the same verdict, and plaintext only on success.
    if v.expect == "success":
        assert age.decrypt(v.body, identities, armored=v.armored) == b"".join(released)
    else:
        with pytest.raises(AgeError) as info:
            age.decrypt(v.body, identities, armored=v.armored)
        assert EXPECT_OF[type(info.value)] == v.expect


def test_testkit_armor_is_detected_without_the_flag() -> None:
    """Callers need not say a file is armored: a leading BEGIN line is enough."""
    v = _load_vector("armor_x25519")
    assert age.is_armored(v.body)
    assert age.decrypt(v.body, [X25519AgeIdentity.parse(v.identities[0])]) == b"age"


# --- our own files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 47, 48, 49, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 2 * 64 * 1024])
@pytest.mark.parametrize("armored", [False, True])
def test_round_trip_x25519(size: int, armored: bool) -> None:
    identity = generate_identity()
    other = generate_identity()
    plaintext = os.urandom(size)
    data = age.encrypt(plaintext, [other.recipient, identity.recipient], armor=armored)
    assert age.is_armored(data) == armored
    assert age.decrypt(data, [identity]) == plaintext
    assert age.decrypt(data, [other]) == plaintext


def test_round_trip_accepts_recipient_text_and_age_objects() -> None:
    identity = X25519AgeIdentity.parse(generate_identity().encode())
    data = age.encrypt(b"x", [identity.recipient.encode()])
    assert age.decrypt(data, [identity]) == b"x"
    again = age.encrypt(b"y", [X25519AgeRecipient.parse(identity.recipient.encode())])
    assert age.decrypt(again, [identity]) == b"y"


def test_full_chunk_payload_has_no_empty_trailing_chunk() -> None:
    """A payload of exactly 64 KiB is one full final chunk (an empty chunk after it is invalid)."""
    identity = generate_identity()
    data = age.encrypt(bytes(64 * 1024), [identity.recipient])
    header_end = data.index(b"\n", data.index(b"\n---") + 1) + 1
    assert len(data) - header_end == 16 + 64 * 1024 + 16


@pytest.mark.parametrize("armored", [False, True])
def test_round_trip_scrypt(armored: bool) -> None:
    data = age.encrypt(b"secret", [ScryptRecipient("correct horse", work_factor=4)], armor=armored)
    assert age.decrypt(data, [ScryptIdentity("correct horse")]) == b"secret"
    with pytest.raises(AgeNoMatchError) as info:
        age.decrypt(data, [ScryptIdentity("wrong horse")])
    assert "horse" not in str(info.value)


def test_stanza_body_wraps_like_age() -> None:
    """A body whose base64 fills whole 64-column lines is followed by an empty final line."""
    body = bytes(48)
    marshalled = marshal_stanza(age.Stanza("test", ("a",), body)).decode()
    assert marshalled == "-> test a\n" + "A" * 64 + "\n\n"
    header = parse_header(b"age-encryption.org/v1\n" + marshalled.encode() + b"--- " + b"A" * 43 + b"\n")
    assert header.stanzas == [age.Stanza("test", ("a",), body)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 47, 48, 49, 96, 1000])
def test_armor_round_trip_and_shape(size: int) -> None:
    data = os.urandom(size)
    text = age.armor(data)
    lines = text.decode().split("\n")
    assert lines[0] == age.ARMOR_BEGIN and lines[-2] == age.ARMOR_END and lines[-1] == ""
    assert all(0 < len(line) <= 64 for line in lines[1:-2])
    assert all(len(line) == 64 for line in lines[1:-3])
    assert age.dearmor(text) == data
    assert age.dearmor(b"\n  \n" + text.replace(b"\n", b"\r\n") + b" \n") == data


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: b"x" + t,
        lambda t: t + b"x",
        lambda t: t.replace(b"=\n", b"\n"),
        lambda t: t.replace(b"\n-----END", b"\n\n-----END"),
        lambda t: t.replace(b"FILE-----\n", b"FILE-----\nKey: value\n\n", 1),
        lambda t: t[: t.index(b"-----END")],
    ],
)
def test_armor_refuses_malleable_variants(mutate: object) -> None:
    text = age.armor(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij")  # ends in '='
    assert b"=\n" in text
    with pytest.raises(AgeArmorError):
        age.dearmor(mutate(text))  # type: ignore[operator]


def test_scrypt_must_be_alone() -> None:
    with pytest.raises(AgeError):
        age.encrypt(b"x", [ScryptRecipient("pw", 4), generate_identity().recipient])


def test_scrypt_work_factor_is_capped_before_any_work() -> None:
    data = age.encrypt(b"x", [ScryptRecipient("pw", work_factor=12)])
    start = time.monotonic()
    with pytest.raises(AgeHeaderError, match="work factor too large"):
        age.decrypt(data, [ScryptIdentity("pw", max_work_factor=10)])
    assert time.monotonic() - start < 1
    with pytest.raises(AgeError):
        ScryptRecipient("pw", work_factor=23)


def test_errors_are_sealer_errors_without_secrets() -> None:
    identity = generate_identity()
    secret = identity.encode()
    data = age.encrypt(b"the plaintext", [generate_identity().recipient])
    with pytest.raises(AgeNoMatchError) as info:
        age.decrypt(data, [identity], source="x.age")
    assert isinstance(info.value, SealerError)
    assert str(info.value).startswith("x.age: ")
    assert secret not in str(info.value) and "plaintext" not in str(info.value)
    assert secret not in repr(X25519AgeIdentity.parse(secret))
    with pytest.raises(AgeNoMatchError, match="no identity"):
        age.decrypt(data, [])


def test_header_and_payload_tampering() -> None:
    identity = generate_identity()
    data = bytearray(age.encrypt(b"hello world", [identity.recipient]))
    mac_line = data.index(b"\n---") + 1
    flipped = bytearray(data)
    flipped[mac_line - 2] ^= 1  # last character of the stanza body: non-canonical or another key
    with pytest.raises((AgeHeaderError, AgeNoMatchError, AgeHMACError)):
        age.decrypt(bytes(flipped), [identity])
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(AgePayloadError):
        age.decrypt(bytes(flipped), [identity])
    with pytest.raises(AgePayloadError):
        age.decrypt(bytes(data[:-1]), [identity])
    with pytest.raises(AgePayloadError):
        age.decrypt(bytes(data) + b"\0", [identity])


def test_sops_mock_key_from_sops_sources() -> None:
    """The armored age file constant from sops's own tests opens with its identity."""
    sops_dir = VECTOR_DIR / "sops"
    identity = parse_identity((sops_dir / "age_mock_identity.txt").read_text().splitlines()[-1])
    assert age.decrypt((sops_dir / "age_mock_encrypted_key.age").read_bytes(), [identity]) == b"data"


# --- passphrase-protected identity files -----------------------------------------------------------


def test_identity_file_round_trip() -> None:
    identity = generate_identity()
    text = f"# created: now\n# public key: {identity.recipient}\n{identity.encode()}\n"
    data = age.encrypt_identity_file(text, "hunter2 hunter2", work_factor=4)
    assert identity.encode().encode() not in data
    assert age.decrypt_identity_file(data, "hunter2 hunter2") == text
    with pytest.raises(AgeNoMatchError, match="wrong passphrase"):
        age.decrypt_identity_file(data, "hunter3")
    with pytest.raises(AgeHeaderError, match="not a passphrase-protected"):
        age.decrypt_identity_file(text.encode(), "hunter2 hunter2")
    keyed = age.encrypt(text.encode(), [generate_identity().recipient])
    with pytest.raises(AgeNoMatchError, match="not to a passphrase"):
        age.decrypt_identity_file(keyed, "hunter2 hunter2")
    with pytest.raises(AgeError, match="empty"):
        age.encrypt_identity_file(text, "")


# --- the real age CLI ------------------------------------------------------------------------------


def _key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("armored", [False, True])
def test_age_cli_decrypts_our_x25519_files(tmp_path: Path, armored: bool) -> None:
    age_bin = require_tool("age")
    identity = generate_identity()
    key = _key_file(tmp_path, identity.encode())
    for size in (0, 5, 64 * 1024, 200_000):
        plaintext = os.urandom(size)
        data = age.encrypt(plaintext, [generate_identity().recipient, identity.recipient], armor=armored)
        out = subprocess.run([age_bin, "-d", "-i", str(key)], input=data, capture_output=True, check=True)
        assert out.stdout == plaintext


@pytest.mark.parametrize("armored", [False, True])
def test_we_decrypt_age_cli_x25519_files(tmp_path: Path, armored: bool) -> None:
    age_bin = require_tool("age")
    first, second = generate_identity(), generate_identity()
    args = [age_bin, "-e", "-r", str(first.recipient), "-r", str(second.recipient)] + (["-a"] if armored else [])
    for size in (0, 5, 64 * 1024, 200_000):
        plaintext = os.urandom(size)
        data = subprocess.run(args, input=plaintext, capture_output=True, check=True).stdout
        assert age.is_armored(data) == armored
        assert age.decrypt(data, [second]) == plaintext
        assert age.decrypt(data, [first]) == plaintext


def _run_with_terminal(argv: list[str], answers: list[str], timeout: float = 60) -> tuple[int, bytes]:
    """Run `argv` with a pseudo-terminal as its controlling terminal, typing one answer per
    passphrase prompt. age reads passphrases from the terminal only (no flag, no variable)."""
    import pty

    try:
        pid, fd = pty.fork()
    except OSError as err:  # pragma: no cover - containers without /dev/ptmx
        pytest.skip(f"no pseudo-terminal to answer age's passphrase prompt: {err}")
    if pid == 0:  # pragma: no cover - the child
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    output = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            output += data
            if answered < len(answers) and output.lower().count(b"passphrase") > answered:
                os.write(fd, answers[answered].encode() + b"\n")
                answered += 1
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.parametrize("armored", [False, True])
def test_age_cli_decrypts_our_scrypt_files(tmp_path: Path, armored: bool) -> None:
    age_bin = require_tool("age")
    encrypted = tmp_path / "secret.age"
    encrypted.write_bytes(age.encrypt(b"passphrase-protected", [ScryptRecipient("pw 123", 10)], armor=armored))
    out = tmp_path / "out.txt"
    code, transcript = _run_with_terminal([age_bin, "-d", "-o", str(out), str(encrypted)], ["pw 123"])
    assert code == 0, transcript
    assert out.read_bytes() == b"passphrase-protected"


def test_we_decrypt_age_cli_scrypt_files(tmp_path: Path) -> None:
    """`age -p` (work factor 18, the slow part of this file) protecting an identity file: we open
    it both as a plain scrypt file and as a protected identity file."""
    age_bin = require_tool("age")
    identity = generate_identity()
    source = tmp_path / "key.txt"
    source.write_text(identity.encode() + "\n")
    protected = tmp_path / "key.age"
    code, transcript = _run_with_terminal(
        [age_bin, "-p", "-a", "-o", str(protected), str(source)], ["pw 123", "pw 123"]
    )
    assert code == 0, transcript
    data = protected.read_bytes()
    assert b"\n-> scrypt " in age.dearmor(data)
    assert age.decrypt(data, [ScryptIdentity("pw 123")]) == source.read_bytes()
    assert age.decrypt_identity_file(data, "pw 123").strip() == identity.encode()


def test_age_cli_opens_our_protected_identity_file(tmp_path: Path) -> None:
    """`age -d -i key.age` asks for the identity file's passphrase: our protected files work there."""
    age_bin = require_tool("age")
    identity = generate_identity()
    protected = tmp_path / "key.age"
    protected.write_bytes(age.encrypt_identity_file(identity.encode() + "\n", "key pass", work_factor=10))
    encrypted = tmp_path / "msg.age"
    encrypted.write_bytes(age.encrypt(b"opened with a protected key", [identity.recipient]))
    out = tmp_path / "msg.txt"
    code, transcript = _run_with_terminal(
        [age_bin, "-d", "-i", str(protected), "-o", str(out), str(encrypted)], ["key pass"]
    )
    assert code == 0, transcript
    assert out.read_bytes() == b"opened with a protected key"


def test_other_key_kinds_are_passed_over() -> None:
    """Identities of kinds the age layer does not open (here, a passphrase for an X25519 file plus
    an object of no known kind) are not errors: the right key among them still opens the file."""
    identity = generate_identity()
    data = age.encrypt(b"x", [identity.recipient])
    assert age.decrypt(data, [object(), ScryptIdentity("pw"), identity]) == b"x"  # type: ignore[list-item]
    with pytest.raises(AgeNoMatchError, match="none of the identities"):
        age.decrypt(data, [object()])  # type: ignore[list-item]
