"""Shared set-up of the atheris harnesses: one key, one context, a sealed sample file."""

from __future__ import annotations

import re

from sealer._format import Context
from sealer._keys import generate_identity
from sealer._seal import seal_text

KEY = generate_identity()
IDS = {KEY.kid: KEY}
CTX = Context(env="prod", scope="strict", namespace="shop", name="db", path=("stringData", "password"))
SRC = "deploy/prod/fuzz.yaml"
CANARY = "CANARY-atheris-71e0"

PLAIN = f"""\
# a Secret
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
stringData:
  password: "{CANARY}"
  tls.crt: '{CANARY}-2'
data:
  blob: Q0FOQVJZLWF0aGVyaXMtNzFlMA==
---
app:
  nested: {{a: {CANARY}-3, b: [1, 2.5, true]}}
  list:
    - {CANARY}-4
    - |
      {CANARY}-5
"""
SEALED = seal_text(PLAIN, SRC, env="prod", recipients=[KEY.recipient], now=1_764_028_800)[0]

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")


def check_message(err: Exception) -> None:
    text = str(err)
    if "CANARY" in text or "\n" in text:
        raise AssertionError(f"error message leaks or spans lines: {text!r}")
