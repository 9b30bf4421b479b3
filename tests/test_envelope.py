"""The envelope: one value sealed to its place, with real HPKE.

Expectations come from docs/format.md, not from the code under test: kids and context hints are
recomputed here from the spec's formulas, and every tamper must end in a SealerError, never in data.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
from collections.abc import Callable, Sequence

import pytest

from sealer._envelope import seal, unseal
from sealer._format import Context, Token, mismatches, parse_token
from sealer._keys import Identity, Recipient, generate_identity
from sealer.errors import IdentityError, SealerError, TokenError, UnsealError

B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
HEX = "0123456789abcdef"
TOKEN_CHARS = B64URL + "[],.+"
WHERE = "secrets/db.yaml"
NOW = 1_764_028_800

PLAIN32 = b"correct horse battery staple 123"  # 32 bytes, as in the spec's worked example
CANARY = b"CANARY-9f3ac1-do-not-leak-hunter2"

BASE = Context(env="prod", scope="strict", namespace="payments", name="db", path=("stringData", "password"))

TOKEN_RE = re.compile(r"ENC\[sealer\.v1,([0-9a-f]{16}(?:\+[0-9a-f]{16})*),([A-Za-z0-9_-]+)\]")


# --- independent helpers (docs/format.md) ---------------------------------------------------------


def spec_kid(recipient: Recipient) -> str:
    return hashlib.sha256(recipient.encode().encode("ascii")).hexdigest()[:16]


def spec_path_bytes(path: Sequence[str | int]) -> bytes:
    out = b""
    for seg in path:
        if isinstance(seg, int):
            out += b"i" + seg.to_bytes(4, "big")
        else:
            raw = seg.encode()
            out += b"k" + len(raw).to_bytes(4, "big") + raw
    return out


def spec_hint(label: str, value: bytes, n: int = 1) -> bytes:
    return hashlib.sha256(b"sealer.v1 hint " + label.encode() + b"\x00" + value).digest()[:n]


def pick_other(label: str, original: str, candidates: Sequence[str]) -> str:
    """The first candidate whose spec hint differs from the original's (hints are 1 byte: they can
    collide, and then the error cannot name the part; the test wants a deterministic case)."""
    for c in candidates:
        if spec_hint(label, c.encode()) != spec_hint(label, original.encode()):
            return c
    raise AssertionError("no candidate with a different hint")


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def lookup(*ids: Identity) -> Callable[[str], Identity | None]:
    return {i.kid: i for i in ids}.get


def open_text(text: str, ctx: Context, identity_for: Callable[[str], Identity | None]) -> bytes:
    return unseal(parse_token(text), ctx, identity_for, where=WHERE)


def split_token(text: str) -> tuple[list[str], str]:
    m = TOKEN_RE.fullmatch(text)
    assert m, text
    return m.group(1).split("+"), m.group(2)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one() -> Identity:
    return generate_identity()


@pytest.fixture(scope="module")
def three() -> list[Identity]:
    return [generate_identity() for _ in range(3)]


@pytest.fixture(scope="module")
def outsider() -> Identity:
    return generate_identity()


# --- basics ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"x", PLAIN32, bytes(range(256)), "pässwörd 😀".encode(), b"\x00" * 1000, b"\xff\xfe\xfd"],
)
@pytest.mark.parametrize("n", [1, 3])
def test_round_trip(plaintext: bytes, n: int, one: Identity, three: list[Identity]) -> None:
    ids = [one] if n == 1 else three
    tok = seal("b", plaintext, BASE, [i.recipient for i in ids], sealed_at=NOW)
    assert open_text(tok, BASE, lookup(*ids)) == plaintext


def test_header_fields(one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    parsed = parse_token(tok)
    assert parsed.version == "sealer.v1"
    assert parsed.kids == (spec_kid(one.recipient),)
    assert parsed.vtype == "s"
    assert parsed.sealed_at == NOW
    blob = b64d(split_token(tok)[1])
    assert blob[0:1] == b"s"
    assert int.from_bytes(blob[1:6], "big") == NOW
    # hints, recomputed from the spec (§5)
    expected_hints = (
        spec_hint("env", b"prod")
        + spec_hint("scope", b"strict")
        + spec_hint("namespace", b"payments")
        + spec_hint("name", b"db")
        + spec_hint("path", spec_path_bytes(BASE.path), 2)
    )
    assert blob[6:12] == expected_hints
    # one recipient: payload = HPKE enc (32) + ciphertext + tag (16)
    assert len(blob) == 12 + 32 + len(PLAIN32) + 16


def test_sealing_is_randomised_and_both_open(one: Identity) -> None:
    a = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    b = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    assert a != b
    assert open_text(a, BASE, lookup(one)) == open_text(b, BASE, lookup(one)) == PLAIN32


def test_token_size_32_bytes_one_recipient(one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    print(f"32-byte secret, one X25519 recipient: token is {len(tok)} characters")
    assert len(tok) <= 160
    assert len(tok) == 155  # docs/format.md, "Sizes"


def test_no_recipients_is_an_identity_error() -> None:
    with pytest.raises(IdentityError):
        seal("s", PLAIN32, BASE, [], sealed_at=NOW)


# --- tamper matrix --------------------------------------------------------------------------------


def _alphabet_at(token: str, i: int) -> str:
    kids_start = len("ENC[sealer.v1,")
    blob_start = token.rindex(",") + 1
    if blob_start <= i < len(token) - 1:
        return B64URL
    if kids_start <= i < blob_start - 1 and token[i] != "+":
        return HEX
    return TOKEN_CHARS


def _replacements(alphabet: str, ch: str) -> list[str]:
    """A few different characters from the same alphabet: a neighbour, one far away, and the one that
    differs in the lowest bit (which for the last base64 character lands in the padding bits)."""
    idx = alphabet.index(ch) if ch in alphabet else 0
    n = len(alphabet)
    picks = [alphabet[(idx + 1) % n], alphabet[(idx + n // 2) % n], alphabet[(idx ^ 1) % n]]
    return sorted({c for c in picks if c != ch})


def _assert_never_opens(text: str, ctx: Context, identity_for: Callable[[str], Identity | None]) -> None:
    assert _opens(text, ctx, identity_for) is None, f"tampered token opened: {text}"


def _opens(text: str, ctx: Context, identity_for: Callable[[str], Identity | None]) -> bytes | None:
    """The plaintext if the token opened, None if it was refused with a SealerError."""
    try:
        return open_text(text, ctx, identity_for)
    except (TokenError, UnsealError, IdentityError):
        return None
    except SealerError as exc:  # a different SealerError is still a refusal, but not one we expect
        pytest.fail(f"unexpected SealerError subclass {type(exc).__name__}: {exc}")


def _stanza_bodies(blob: bytes, nkids: int) -> list[range]:
    """Byte ranges (in the blob) of each recipient's wrapped key, after its u16 length (§5)."""
    out, pos = [], 12
    for _ in range(nkids):
        n = int.from_bytes(blob[pos : pos + 2], "big")
        out.append(range(pos + 2, pos + 2 + n))
        pos += 2 + n
    return out


def _holders(n: int, one: Identity, three: list[Identity]) -> list[list[Identity]]:
    """The identities a reader holds: every identity alone, and all of them together."""
    if n == 1:
        return [[one]]
    return [[three[i]] for i in range(3)] + [list(three)]


@pytest.mark.parametrize("n", [1, 3])
def test_tamper_every_character(n: int, one: Identity, three: list[Identity]) -> None:
    ids = [one] if n == 1 else three
    tok = seal("s", PLAIN32, BASE, [i.recipient for i in ids], sealed_at=NOW)
    for held in _holders(n, one, three):
        identity_for = lookup(*held)
        assert open_text(tok, BASE, identity_for) == PLAIN32
        tried = 0
        for i, ch in enumerate(tok):
            for repl in _replacements(_alphabet_at(tok, i), ch):
                _assert_never_opens(tok[:i] + repl + tok[i + 1 :], BASE, identity_for)
                tried += 1
        assert tried >= 2 * len(tok)


@pytest.mark.parametrize("n", [1, 3])
def test_tamper_every_bit_of_the_blob(n: int, one: Identity, three: list[Identity]) -> None:
    ids = [one] if n == 1 else three
    tok = seal("s", PLAIN32, BASE, [i.recipient for i in ids], sealed_at=NOW)
    kids, blob_text = split_token(tok)
    blob = b64d(blob_text)
    prefix = f"ENC[sealer.v1,{'+'.join(kids)},"
    for held in _holders(n, one, three):
        identity_for = lookup(*held)
        for byte in range(len(blob)):
            for bit in range(8):
                mutated = bytearray(blob)
                mutated[byte] ^= 1 << bit
                _assert_never_opens(prefix + b64(bytes(mutated)) + "]", BASE, identity_for)


def test_tampering_another_recipients_wrapped_key_is_detected(three: list[Identity]) -> None:
    """The holder of key i must notice an edit to recipient j's wrapped key (§5: the body's associated
    data covers every stanza). Spelled out on its own because it once went unnoticed."""
    tok = seal("s", PLAIN32, BASE, [i.recipient for i in three], sealed_at=NOW)
    kids, blob_text = split_token(tok)
    blob = b64d(blob_text)
    prefix = f"ENC[sealer.v1,{'+'.join(kids)},"
    opened = []
    for holder in range(3):
        for j, stanza in enumerate(_stanza_bodies(blob, 3)):
            if j == holder:
                continue
            mutated = bytearray(blob)
            mutated[stanza[len(stanza) // 2]] ^= 0x01
            if _opens(prefix + b64(bytes(mutated)) + "]", BASE, lookup(three[holder])) is not None:
                opened.append((holder, j))
    assert opened == [], f"(holder, edited stanza) pairs that still opened: {opened}"


def test_tamper_truncated_or_extended_blob(one: Identity, three: list[Identity]) -> None:
    for ids in ([one], three):
        tok = seal("s", PLAIN32, BASE, [i.recipient for i in ids], sealed_at=NOW)
        kids, blob_text = split_token(tok)
        blob = b64d(blob_text)
        prefix = f"ENC[sealer.v1,{'+'.join(kids)},"
        for cut in range(1, len(blob)):
            _assert_never_opens(prefix + b64(blob[:cut]) + "]", BASE, lookup(*ids))
        for extra in (b"\x00", b"\x00" * 16, b"junk"):
            _assert_never_opens(prefix + b64(blob + extra) + "]", BASE, lookup(*ids))


def test_relabelled_kid_does_not_open(one: Identity, outsider: Identity) -> None:
    """Sealed to `one`, token edited to claim `outsider`'s kid: the holder of both keys gets no data."""
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    forged = tok.replace(one.kid, outsider.kid)
    with pytest.raises(UnsealError):
        open_text(forged, BASE, lookup(one, outsider))


def test_multi_recipient_reordered_or_dropped_kids_do_not_open(three: list[Identity]) -> None:
    tok = seal("s", PLAIN32, BASE, [i.recipient for i in three], sealed_at=NOW)
    kids, blob_text = split_token(tok)
    variants = [
        [kids[1], kids[0], kids[2]],
        list(reversed(kids)),
        kids[:2],
        kids[1:],
    ]
    for v in variants:
        with pytest.raises((UnsealError, TokenError)):
            open_text(f"ENC[sealer.v1,{'+'.join(v)},{blob_text}]", BASE, lookup(*three))


# --- context parts --------------------------------------------------------------------------------


def _moved(ctx: Context, **change: object) -> Context:
    fields = {
        "env": ctx.env,
        "scope": ctx.scope,
        "namespace": ctx.namespace,
        "name": ctx.name,
        "path": ctx.path,
    }
    fields.update(change)
    return Context(**fields)  # type: ignore[arg-type]


def _named_parts(message: str) -> set[str]:
    """The context parts an UnsealError names, read as whole words after 'different'."""
    m = re.search(r"different (.*?) \(", message)
    assert m, message
    return set(m.group(1).split(" and "))


OTHER_ENV = pick_other("env", "prod", ["staging", "dev", "qa", "test"])
OTHER_NS = pick_other("namespace", "payments", ["payments2", "billing", "default", "kube-system"])
OTHER_NAME = pick_other("name", "db", ["db2", "cache", "api", "web"])


def _other_path(path: tuple[str, ...]) -> tuple[str, ...]:
    for cand in (("stringData", "username"), ("stringData", "pass"), ("data", "password"), ("x",)):
        if spec_hint("path", spec_path_bytes(cand), 2) != spec_hint("path", spec_path_bytes(path), 2):
            return cand
    raise AssertionError("no path with a different hint")


@pytest.mark.parametrize(
    ("part", "change"),
    [
        ("path", {"path": _other_path(("stringData", "password"))}),
        ("namespace", {"namespace": OTHER_NS}),
        ("name", {"name": OTHER_NAME}),
        ("environment", {"env": OTHER_ENV}),
        ("scope", {"scope": "namespace"}),
    ],
)
@pytest.mark.parametrize("n", [1, 3])
def test_moving_a_value_fails_naming_the_part(
    part: str, change: dict[str, object], n: int, one: Identity, three: list[Identity]
) -> None:
    ids = [one] if n == 1 else three
    tok = seal("s", CANARY, BASE, [i.recipient for i in ids], sealed_at=NOW)
    elsewhere = _moved(BASE, **change)
    with pytest.raises(UnsealError) as info:
        open_text(tok, elsewhere, lookup(*ids))
    msg = str(info.value)
    assert re.search(rf"\b{part}\b", msg), msg
    assert part in _named_parts(msg)
    if part != "scope":  # moving strict -> namespace also unbinds the name: both may be named
        assert _named_parts(msg) == {part}
    assert WHERE in msg
    assert mismatches(parse_token(tok), elsewhere), "mismatches() must report the move too"


def test_moved_path_by_list_index(one: Identity) -> None:
    ctx = Context(env="prod", scope="env", namespace="", name="", path=("servers", 0, "token"))
    tok = seal("s", PLAIN32, ctx, [one.recipient], sealed_at=NOW)
    assert open_text(tok, ctx, lookup(one)) == PLAIN32
    with pytest.raises(UnsealError, match=r"\bpath\b"):
        open_text(tok, _moved(ctx, path=("servers", 1, "token")), lookup(one))


def test_scope_namespace_binds_namespace_not_name(one: Identity) -> None:
    ctx = _moved(BASE, scope="namespace")
    tok = seal("s", PLAIN32, ctx, [one.recipient], sealed_at=NOW)
    assert open_text(tok, _moved(ctx, name=OTHER_NAME), lookup(one)) == PLAIN32
    assert open_text(tok, _moved(ctx, name=""), lookup(one)) == PLAIN32
    with pytest.raises(UnsealError, match=r"\bnamespace\b"):
        open_text(tok, _moved(ctx, namespace=OTHER_NS), lookup(one))
    with pytest.raises(UnsealError, match=r"\benvironment\b"):
        open_text(tok, _moved(ctx, env=OTHER_ENV), lookup(one))


def test_scope_env_binds_neither_namespace_nor_name(one: Identity) -> None:
    ctx = _moved(BASE, scope="env")
    tok = seal("s", PLAIN32, ctx, [one.recipient], sealed_at=NOW)
    moved = _moved(ctx, namespace=OTHER_NS, name=OTHER_NAME)
    assert open_text(tok, moved, lookup(one)) == PLAIN32
    assert open_text(tok, _moved(ctx, namespace="", name=""), lookup(one)) == PLAIN32
    with pytest.raises(UnsealError, match=r"\benvironment\b"):
        open_text(tok, _moved(ctx, env=OTHER_ENV), lookup(one))
    with pytest.raises(UnsealError, match=r"\bpath\b"):
        open_text(tok, _moved(ctx, path=_other_path(ctx.path)), lookup(one))


def test_custom_scope_label_is_bound(one: Identity) -> None:
    ctx = _moved(BASE, scope="team-a")
    tok = seal("s", PLAIN32, ctx, [one.recipient], sealed_at=NOW)
    # a custom label binds like "env": namespace and name are free
    assert open_text(tok, _moved(ctx, namespace=OTHER_NS, name=OTHER_NAME), lookup(one)) == PLAIN32
    other = pick_other("scope", "team-a", ["team-b", "team-c", "ops", "env"])
    with pytest.raises(UnsealError, match=r"\bscope\b"):
        open_text(tok, _moved(ctx, scope=other), lookup(one))


# --- multi-recipient ------------------------------------------------------------------------------


def test_each_of_three_identities_opens_alone(three: list[Identity]) -> None:
    tok = seal("s", PLAIN32, BASE, [i.recipient for i in three], sealed_at=NOW)
    for ident in three:
        assert open_text(tok, BASE, lookup(ident)) == PLAIN32


def test_unrelated_identity_gets_identity_error_naming_kids(three: list[Identity], outsider: Identity) -> None:
    tok = seal("s", CANARY, BASE, [i.recipient for i in three], sealed_at=NOW)
    with pytest.raises(IdentityError) as info:
        open_text(tok, BASE, lookup(outsider))
    msg = str(info.value)
    for ident in three:
        assert spec_kid(ident.recipient) in msg
    assert outsider.kid not in msg


def test_no_identity_at_all_is_identity_error(one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    with pytest.raises(IdentityError, match=spec_kid(one.recipient)):
        open_text(tok, BASE, lambda kid: None)


def test_token_lists_kids_in_recipient_order(three: list[Identity]) -> None:
    recipients = [i.recipient for i in three]
    for order in (recipients, list(reversed(recipients)), [recipients[1], recipients[2], recipients[0]]):
        tok = seal("s", PLAIN32, BASE, order, sealed_at=NOW)
        kids, _ = split_token(tok)
        assert kids == [spec_kid(r) for r in order]
        assert parse_token(tok).kids == tuple(spec_kid(r) for r in order)


def test_multi_recipient_payload_layout(three: list[Identity]) -> None:
    """§5: per kid u16(len) || HPKE(K) (32 enc + 32 key + 16 tag), then the body (pt + 16)."""
    tok = seal("s", PLAIN32, BASE, [i.recipient for i in three], sealed_at=NOW)
    blob = b64d(split_token(tok)[1])
    payload = blob[12:]
    for _ in range(3):
        n = int.from_bytes(payload[:2], "big")
        assert n == 32 + 32 + 16
        payload = payload[2 + n :]
    assert len(payload) == len(PLAIN32) + 16


# --- malformed tokens -----------------------------------------------------------------------------


def test_unknown_version_is_reported_as_such(one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    for version in ("sealer.v9", "sealer.v2", "sealer.v10", "sealer.vNext"):
        text = tok.replace("sealer.v1", version, 1)
        with pytest.raises(TokenError) as info:
            parse_token(text)
        assert version in str(info.value)
        assert "unknown" in str(info.value)
    with pytest.raises(TokenError, match=r"sealer\.v9"):
        parse_token("ENC[sealer.v9,whatever a future format puts here]")


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: t[:-1], id="no-closing-bracket"),
        pytest.param(lambda t: t[:40], id="truncated-in-kid"),
        pytest.param(lambda t: t[: t.rindex(",") + 1] + "]", id="empty-blob"),
        pytest.param(lambda t: t[: t.rindex(",") + 1] + "AAAA]", id="blob-shorter-than-header"),
        pytest.param(
            lambda t: t[:-1] + "A" * (1 + (-(len(t) - t.rindex(",") - 2)) % 4) + "]", id="blob-length-1-mod-4"
        ),
        pytest.param(lambda t: t[:-1] + "==]", id="padding"),
        pytest.param(lambda t: t[:-10] + "+" + t[-9:], id="standard-base64-plus"),
        pytest.param(lambda t: t[:-10] + "/" + t[-9:], id="standard-base64-slash"),
        pytest.param(lambda t: t[:-10] + "!" + t[-9:], id="bad-base64-char"),
        pytest.param(lambda t: t[:-10] + " " + t[-9:], id="space-in-blob"),
        pytest.param(lambda t: t.replace("ENC[", "enc[", 1), id="lowercase-prefix"),
        pytest.param(lambda t: t.upper(), id="uppercase"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + " ", id="trailing-space"),
        pytest.param(lambda t: t + "]", id="extra-bracket"),
        pytest.param(lambda t: t.replace(",", ",,", 1), id="empty-kid"),
        pytest.param(lambda t: t.replace(",", ",0", 1), id="17-digit-kid"),
        pytest.param(lambda t: t[:14] + t[15:], id="15-digit-kid"),
    ],
)
def test_malformed_tokens_are_token_errors(edit: Callable[[str], str], one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    bad = edit(tok)
    assert bad != tok
    with pytest.raises(TokenError):
        open_text(bad, BASE, lookup(one))


def test_non_canonical_base64_is_token_error(one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    kids, blob_text = split_token(tok)
    blob = b64d(blob_text)
    assert len(blob) % 3 != 0, "need unused bits in the last character for this test"
    last = blob_text[-1]
    # same decoded bytes, different text: set an unused low bit of the last character
    other = B64URL[B64URL.index(last) | 1]
    assert other != last
    text = f"ENC[sealer.v1,{kids[0]},{blob_text[:-1]}{other}]"
    assert b64d(text[text.rindex(",") + 1 : -1]) == blob  # base64 itself accepts it...
    with pytest.raises(TokenError, match="non-canonical"):  # ...the format does not
        parse_token(text)


def test_duplicate_kid_is_token_error(one: Identity, three: list[Identity]) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    kids, blob_text = split_token(tok)
    with pytest.raises(TokenError):
        parse_token(f"ENC[sealer.v1,{kids[0]}+{kids[0]},{blob_text}]")
    tok3 = seal("s", PLAIN32, BASE, [i.recipient for i in three], sealed_at=NOW)
    kids3, blob3 = split_token(tok3)
    with pytest.raises(TokenError):
        parse_token(f"ENC[sealer.v1,{kids3[0]}+{kids3[1]}+{kids3[0]},{blob3}]")


def test_unknown_type_byte_is_token_error(one: Identity) -> None:
    tok = seal("s", PLAIN32, BASE, [one.recipient], sealed_at=NOW)
    kids, blob_text = split_token(tok)
    blob = bytearray(b64d(blob_text))
    blob[0] = ord("z")
    with pytest.raises(TokenError):
        parse_token(f"ENC[sealer.v1,{kids[0]},{b64(bytes(blob))}]")


# --- no plaintext in error messages ---------------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), *map(str, exc.args)]
    for attr in ("file", "hint"):
        value = getattr(exc, attr, None)
        if value:
            parts.append(str(value))
    return "\n".join(parts)


def _canary_fragments() -> list[str]:
    text = CANARY.decode()
    return [text, "9f3ac1", "hunter2", b64(CANARY), base64.b64encode(CANARY).decode(), CANARY.hex()]


def test_error_messages_never_contain_the_plaintext(one: Identity, three: list[Identity], outsider: Identity) -> None:
    failures: list[BaseException] = []

    def collect(fn: Callable[[], object]) -> None:
        try:
            fn()
        except SealerError as exc:
            failures.append(exc)
        else:  # pragma: no cover
            pytest.fail("expected a failure")

    for ids in ([one], three):
        identity_for = lookup(*ids)
        tok = seal("s", CANARY, BASE, [i.recipient for i in ids], sealed_at=NOW)
        kids, blob_text = split_token(tok)
        blob = b64d(blob_text)
        prefix = f"ENC[sealer.v1,{'+'.join(kids)},"
        # moved in every way
        for change in (
            {"env": OTHER_ENV},
            {"namespace": OTHER_NS},
            {"name": OTHER_NAME},
            {"scope": "namespace"},
            {"path": _other_path(BASE.path)},
        ):
            collect(lambda c=change: open_text(tok, _moved(BASE, **c), identity_for))
        # wrong key
        collect(lambda tok=tok: open_text(tok, BASE, lookup(outsider)))
        # a flipped payload bit (hints intact: fails in the AEAD) and a flipped header bit
        for pos in (len(blob) - 1, 12, 20, 3):
            mutated = bytearray(blob)
            mutated[pos] ^= 0x01
            collect(lambda m=bytes(mutated), p=prefix: open_text(p + b64(m) + "]", BASE, identity_for))
        # malformed
        collect(lambda tok=tok: open_text(tok[:-5], BASE, identity_for))
        collect(lambda tok=tok: open_text(tok.replace("sealer.v1", "sealer.v7"), BASE, identity_for))
    assert len(failures) >= 20
    for exc in failures:
        text = _all_text(exc)
        for frag in _canary_fragments():
            assert frag not in text, f"{type(exc).__name__} leaks the plaintext: {text}"


def test_token_type_is_a_dataclass_of_public_fields(one: Identity) -> None:
    """A parsed token carries no plaintext: its repr is safe to log."""
    tok = seal("s", CANARY, BASE, [one.recipient], sealed_at=NOW)
    parsed: Token = parse_token(tok)
    for frag in _canary_fragments():
        assert frag not in repr(parsed)
