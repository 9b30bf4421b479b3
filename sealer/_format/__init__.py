"""sealer's wire format, and nothing else: token grammar, context bytes, hints, value types,
value paths, key ids and Bech32 (docs/format.md). No YAML, no configuration, no I/O, so an
independent reader can check this package against the spec line by line.
"""

from .bech32 import decode as bech32_decode
from .bech32 import encode as bech32_encode
from .context import Context, context_bytes, hints, lp, mismatches
from .kid import kid_of
from .token import (
    EXPIRY_LEN,
    HEADER_LEN,
    PREFIX,
    TOKEN_RE,
    TYPES,
    VERSION,
    Token,
    b64,
    count_mentions,
    encode_token,
    find_tokens,
    is_token,
    is_well_formed,
    make_header,
    mentions_tokens,
    parse_token,
    token_kids,
)
from .valuepath import Path, Segment, encode_path, format_path, parse_path
from .values import problem as value_problem
from .values import scalar_text

__all__ = [
    "EXPIRY_LEN",
    "HEADER_LEN",
    "PREFIX",
    "TOKEN_RE",
    "TYPES",
    "VERSION",
    "Context",
    "Path",
    "Segment",
    "Token",
    "b64",
    "bech32_decode",
    "bech32_encode",
    "context_bytes",
    "count_mentions",
    "encode_path",
    "encode_token",
    "find_tokens",
    "format_path",
    "hints",
    "is_token",
    "is_well_formed",
    "kid_of",
    "lp",
    "make_header",
    "mentions_tokens",
    "mismatches",
    "parse_path",
    "parse_token",
    "scalar_text",
    "token_kids",
    "value_problem",
]
