"""What a leaf's value is: the typed plaintext that gets sealed, and the value once it is opened.

Sealing and unsealing must agree on one reading of a scalar, so it is written once, here:
`plaintext_of` turns a plaintext leaf into the (type, bytes) an envelope seals (Secret `data` is
base64-decoded; numbers, booleans and timestamps keep their text as written), `render_scalar` turns
an opened value back into one line of YAML for splicing, and `to_python` builds a document as Python
data with opened values in place, straight from the composed nodes. ruamel's constructor is imported
inside `to_python` only, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
from typing import Any

from .._format import scalar_text
from .._format.valuepath import Path, format_path
from .._yamlout import yaml_string
from ..errors import InputError
from .compose import _NULL, MAX_NODES, TYPE_OF_TAG, Leaf, _b64decode, _scalar_str


def plaintext_of(leaf: Leaf, source: str) -> tuple[str, bytes]:
    """The (type, bytes) that get sealed for a plaintext leaf.

    Numbers, booleans and timestamps keep their text exactly as written (`0777`, `0x1F`, `yes` under
    %YAML 1.1): the reader after unseal then sees what it saw before, whatever YAML version it speaks.
    """
    node = leaf.node
    vtype = TYPE_OF_TAG[str(node.tag)]
    if leaf.section == "data":
        return "b", _b64decode(node.value, leaf.path, source)
    if vtype == "b":
        if leaf.section == "stringData":
            raise InputError(f"{format_path(leaf.path)}: binary values belong under data, not stringData", file=source)
        return "b", _b64decode(node.value, leaf.path, source)
    if leaf.section == "stringData":
        return "s", str(node.value).encode()  # Kubernetes reads every stringData value as a string
    return vtype, str(node.value).encode()


def to_python(root: Any, opened: dict[int, tuple[str, bytes, str | None]], source: str) -> Any:
    """The document as Python data, straight from the composed nodes (no second parse), with
    unsealed values in place and the sealer: block left out. Aliases are expanded against a budget,
    so an alias bomb fails instead of exhausting memory."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.nodes import ScalarNode

    constructor = YAML(typ="safe", pure=True).constructor
    budget = [MAX_NODES]
    tags = {v: k for k, v in TYPE_OF_TAG.items()}

    def scalar(node: Any, path: Path) -> Any:
        try:
            return constructor.construct_object(node)
        except (YAMLError, ValueError, TypeError):
            raise InputError(
                f"{format_path(path)}: cannot read this {str(node.tag).rsplit(':', 1)[-1]} value as data",
                file=source,
                hint="use --format yaml",
            ) from None

    def build(node: Any, path: Path) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise InputError(f"more than {MAX_NODES} values once aliases are expanded", file=source)
        if id(node) in opened:
            vtype, data, section = opened[id(node)]
            if vtype == "b":
                return base64.b64encode(data).decode() if section == "data" else data
            if vtype == "s":
                return data.decode("utf-8")
            return scalar(ScalarNode(tags[vtype], data.decode("utf-8")), path)
        if node.id == "mapping":
            out: dict[Any, Any] = {}
            for k, v in node.value:
                if k.id != "scalar":
                    raise InputError(f"{format_path(path)}: complex mapping keys are not supported", file=source)
                if not path and _scalar_str(k) == "sealer":
                    continue
                out[scalar(k, path)] = build(v, (*path, str(k.value)))
            return out
        if node.id == "sequence":
            return [build(v, (*path, i)) for i, v in enumerate(node.value)]
        if str(node.tag) not in TYPE_OF_TAG and node.tag != _NULL:
            return str(node.value)  # a custom tag is never constructed: its text stands for it
        return scalar(node, path)

    return build(root, ())


def render_scalar(vtype: str, data: bytes, *, section: str | None) -> str:
    """A YAML scalar (one line) for an unsealed value of the given type."""
    if vtype == "b":
        b64 = base64.b64encode(data).decode()
        if section == "data":
            return yaml_string(b64)  # `1234` is base64 too; plain, a reader would take it for a number
        return f"!!binary {b64}"
    text = data.decode("utf-8")
    return scalar_text(vtype, text) if vtype in "iftd" else yaml_string(text)
