"""atheris harness: `sealer._document.load` and everything that reads a sealed file.

    .venv/bin/python fuzz/fuzz_document.py -max_total_time=60   (make fuzz runs it)

Inputs are free text, or the sealed sample of _common.py with a stretch replaced by fuzz bytes (to
reach the token and unseal paths). Only SealerErrors may escape, one line each, never a plaintext.
"""

from __future__ import annotations

import sys

import atheris
from _common import IDS, SEALED, SRC, check_message

from sealer import _locator as tokens
from sealer._document import load
from sealer._seal import seal_text
from sealer._unseal import UNCHECKED, unseal_file
from sealer.errors import SealerError


def attempt(fn) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except SealerError as e:
        check_message(e)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    else:
        at = fdp.ConsumeIntInRange(0, len(SEALED))
        cut = fdp.ConsumeIntInRange(0, 16)
        text = SEALED[:at] + fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()) + SEALED[at + cut :]
    try:
        sf = load(text, SRC)
    except SealerError as e:
        check_message(e)
    else:
        attempt(lambda: unseal_file(sf, IDS.get, env="prod", rules=UNCHECKED))
    attempt(lambda: tokens.locate(text, SRC))
    attempt(lambda: seal_text(text, SRC, env="prod", recipients=[k.recipient for k in IDS.values()], now=0))


if __name__ == "__main__":
    atheris.instrument_all()  # every loaded module; instrument_imports() left sealer uninstrumented
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
