"""A sealed YAML file: find the values to seal, splice tokens in, keep every other byte.

We parse with ruamel.yaml's composer only to learn *where* each scalar is (character offsets) and
what it resolves to; all edits are splices into the original text. That is what keeps comments,
order, quoting and indentation byte-identical, which a dump-after-load cannot promise. Nothing is
constructed from tags, so untrusted YAML cannot instantiate objects. The work is split by job:
`compose` (load a file, the document model, which values are selected), `values` (what a leaf's
value is, sealed or opened) and `splice` (edits to the text); this package re-exports all of it,
so callers import from `sealer._document` and never from a module inside it. ruamel is imported
only when a file is loaded or turned into data, never at import.
"""

from __future__ import annotations

from .._yamlout import quote_string, yaml_string  # re-exported: splicers quote with them
from .compose import (
    FORMAT_VERSION,
    MANIFEST_KEYS,
    MAX_NODES,
    SCOPES_SECRET,
    SECRET_SECTIONS,
    SIGNER_NAME,
    TYPE_OF_TAG,
    Document,
    Leaf,
    Meta,
    SealedFile,
    Selector,
    Signature,
    load,
    selects,
)
from .splice import Edit, apply_edits, line_end, meta_edit, newline_of, remove_meta, replace_scalar, scalar_end
from .values import plaintext_of, render_scalar, to_python

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_KEYS",
    "MAX_NODES",
    "SCOPES_SECRET",
    "SECRET_SECTIONS",
    "SIGNER_NAME",
    "TYPE_OF_TAG",
    "Document",
    "Edit",
    "Leaf",
    "Meta",
    "SealedFile",
    "Selector",
    "Signature",
    "apply_edits",
    "line_end",
    "load",
    "meta_edit",
    "newline_of",
    "plaintext_of",
    "quote_string",
    "remove_meta",
    "render_scalar",
    "replace_scalar",
    "scalar_end",
    "selects",
    "to_python",
    "yaml_string",
]
