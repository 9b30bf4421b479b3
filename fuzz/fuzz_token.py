"""atheris harness: `sealer._format.parse_token` and `unseal` on arbitrary token text.

    .venv/bin/python fuzz/fuzz_token.py -max_total_time=60      (make fuzz runs it)

Only a SealerError may escape, with a one-line message; a token that parses must not open unless it
is a valid token for the context (we never seal one here, so opening at all is a failure).
"""

from __future__ import annotations

import base64
import sys

import atheris
from _common import CTX, IDS, KEY, check_message

from sealer import _envelope as envelope
from sealer import _format
from sealer.errors import SealerError


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:  # free text
        text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    else:
        # A well-formed header (type, seal time, the hints of CTX) so the input reaches HPKE and, with
        # two kids, the wrapped-key path; mode 3 leaves the hints to the fuzzer as well.
        vtype = fdp.PickValueInList(list(_format.TYPES)).encode()
        hints = fdp.ConsumeBytes(6) if mode == 3 else _format.hints(CTX)
        blob = vtype + fdp.ConsumeBytes(5).ljust(5, b"\0") + hints + fdp.ConsumeBytes(fdp.remaining_bytes())
        kids = KEY.kid if mode == 1 else f"{KEY.kid}+{'0' * 16}"
        text = f"ENC[sealer.v1,{kids},{base64.urlsafe_b64encode(blob).rstrip(b'=').decode()}]"
    try:
        token = _format.parse_token(text)
        opened = envelope.unseal(token, CTX, IDS.get, where="fuzz")
    except SealerError as e:
        check_message(e)
        return
    raise AssertionError(f"a token nobody sealed opened: {text!r} -> {opened!r}")


if __name__ == "__main__":
    atheris.instrument_all()  # every loaded module; instrument_imports() left sealer uninstrumented
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
